"""The ``posecli live`` command (registered on the app by ``posecli.cli``)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from posecli import cli_options as opt
from posecli.cli_common import CliError, ReadableCommand, check_writable, fail
from posecli.cli_options import DETECTION, LIFTING
from posecli.errors import PosecliError
from posecli.live import DEFAULT_BACKLOG, DEFAULT_DELAY, DEFAULT_TIMEOUT
from posecli.options import LiftOptions

STREAM, OUTPUT = "Stream", "Files at the end"  # the other panels: as `posecli lift`'s


def live(
    source: str = typer.Argument(..., metavar="SOURCE", show_default=False,
                                 help="'-' (a stream on standard input, e.g. MPEG-TS), a camera "
                                      "(/dev/video0 or an index), or a URL ffmpeg reads "
                                      "(rtsp://, srt://, udp://, http://; a file plays in real time)."),
    output: str = typer.Option("-", "--output", "-o", metavar="FILE|-", rich_help_panel=STREAM,
                               help="Where the JSON lines go, one per frame ('-': standard output)."),
    udp: Optional[str] = typer.Option(None, metavar="HOST:PORT", rich_help_panel=STREAM,
                                      help="Also send each line as one UDP datagram."),
    delay: float = typer.Option(DEFAULT_DELAY, metavar="SECONDS", rich_help_panel=STREAM,
                                help="Look-ahead: a frame is lifted and sent once this much of the "
                                     "stream after it has arrived (more: more accurate, later)."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, metavar="SECONDS", rich_help_panel=STREAM,
                                  help="End with an error when no frame arrives for this long."),
    backlog: float = typer.Option(DEFAULT_BACKLOG, metavar="SECONDS", rich_help_panel=STREAM,
                                  help="Drop a frame (counted) rather than let it wait longer than "
                                       "this for the detector."),
    detector: str = opt.detector(),
    pose_model: Optional[Path] = opt.pose_model(),
    pose_checkpoint: Optional[Path] = opt.pose_checkpoint(),
    person: str = typer.Option("auto", metavar="auto|ID", rich_help_panel=DETECTION,
                               help="Who to follow: auto (the person in view longest) or a track id."),
    max_people: int = opt.max_people(),
    weights: Optional[Path] = opt.weights(),
    backend: str = opt.backend(),
    flip: bool = opt.flip(),
    rigid: bool = opt.rigid("One set of bone lengths (the last 10 s's median, left = right)."),
    plausible: bool = opt.plausible(),
    root_motion: bool = opt.root_motion(),
    focal: Optional[float] = opt.focal(),
    fusion: str = opt.fusion(),
    foot_lock: bool = opt.foot_lock(),
    camera_motion: bool = opt.camera_motion(),
    threads: int = typer.Option(2, metavar="N", rich_help_panel=LIFTING,
                                help="CPU threads, shared by the detector and the lifter (which run at once)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", metavar="DIR", rich_help_panel=OUTPUT,
                                           help="At the end, write the usual files here (with -f)."),
    formats: List[str] = typer.Option([], "--format", "-f", metavar="NAMES", rich_help_panel=OUTPUT,
                                      help="At the end, write these formats (json, bvh, html, glb, trc, csv; not mp4) into --out "
                                           "(default json when --out is given)."),
    name: str = typer.Option("live", metavar="STEM", rich_help_panel=OUTPUT,
                             help="File name of the files at the end: <out>/<name>.json ..."),
    bvh_scale: float = opt.bvh_scale(OUTPUT),
) -> None:
    """Lift a camera or a network stream as it arrives: one JSON line per frame, a bounded delay.

    Each line is a frame of the JSON result (index, time, flag, keypoints_2d, confidence,
    joints_3d, pelvis_world, foot_contact) plus delay_ms and dropped. Exit status: 0 at the end
    of the stream, 1 when it stalls longer than --timeout (or fails), 130 on Ctrl-C (everything
    written so far is kept).
    """
    from posecli.cli import _formats, _pose_model
    from posecli.cli_common import err
    from posecli.live.run import LiveConfig, parse_udp, run

    try:
        if person.strip().lower() == "all":
            raise CliError("--person all is not for live: it follows one person (auto or a track id)")
        options = LiftOptions(
            detector=detector, pose_model=_pose_model(detector, pose_model, pose_checkpoint),
            person=person, max_people=max_people, weights=weights.resolve() if weights else None,
            backend=backend, flip=flip, rigid=rigid, plausible=plausible, root_motion=root_motion,
            focal=focal, fusion=fusion, foot_lock=foot_lock, camera_motion=camera_motion,
            bvh_scale=bvh_scale, threads=threads)
        fmts = tuple(_formats(formats)) if formats else (("json",) if out_dir else ())
        config = LiveConfig(source=source, output=output, udp=parse_udp(udp) if udp else None,
                            delay=delay, timeout=timeout, backlog=backlog,
                            out_dir=out_dir or Path("."), formats=fmts, name=name)
        if fmts:
            check_writable(config.out_dir)  # before the stream starts, not at its end
        code = run(config, options, report=lambda line: err.print(line, highlight=False,
                                                                   soft_wrap=True, markup=False))
    except KeyboardInterrupt:
        err.print("interrupted before the stream started", highlight=False)
        raise typer.Exit(130)
    except PosecliError as e:
        fail(str(e))
    except Exception as e:  # a bug: still one line (POSECLI_DEBUG=1 shows the traceback)
        import os
        if os.environ.get("POSECLI_DEBUG"):
            raise
        fail(f"{source}: unexpected {type(e).__name__}: {e} (a bug; POSECLI_DEBUG=1 shows the traceback)")
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``live`` to the command line."""
    app.command(cls=ReadableCommand, no_args_is_help=True)(live)
