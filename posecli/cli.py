"""The ``posecli`` command line."""
from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from posecli.cli_common import (CliError, ReadableCommand, check_file_writable, check_writable, err,
                                fail, out)
from posecli import cli_options as opt
from posecli.cli_options import (DETECTION, DETECTOR_HELP, FLAG, LIFTING, OUTPUT,
                                 POSE_CHECKPOINT_HELP, POSE_MODEL_HELP)
from posecli.errors import NoPersonError, PosecliError
from posecli.options import MAX_BVH_SCALE, MAX_THREADS, LiftOptions, check_output, count, positive_number, writer_options

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn an ordinary video of a person into 3D human motion.")

# --help panels of `posecli lift` (FLAG: the metavar of on/off flags, no "<bool>" in --help)
INPUT, BATCHES = "Input", "Batches and cluster"


@contextmanager
def _progress(quiet: bool) -> Iterator:
    """A progress callback for the pipeline: one rich bar per stage, with frames per second."""
    if quiet:
        yield None
        return
    columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, rate="")
            task = bar.tasks[tasks[stage]]
            total = max(total or 0, done) or None
            speed = task.speed
            bar.update(tasks[stage], completed=done, total=total,
                       rate=f"{speed:6.1f} frames/s" if speed else "")
        yield update


def flat_memory() -> None:
    """Keep peak memory flat over long clips (glibc only; a no-op elsewhere).

    glibc raises its mmap threshold after each large free, so the lifter's repeated ~30 MB
    activations end up on a fragmenting heap: peak RSS grew 446 -> 488 MB from 2,000 to 10,000
    frames. A fixed 4 MiB threshold returns large blocks to the system: 320 -> 330 MB, at the
    same lifting speed (128 KiB was as flat but doubled the lifting time).
    """
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD: 4 MiB (128 KiB cost 2x lifting time)
    except (OSError, AttributeError):
        pass


def _formats(items: list[str]) -> list[str]:
    """Repeatable / comma-separated --format values, checked against the writers."""
    from posecli.export import WRITERS
    formats = list(dict.fromkeys(f.strip() for item in items for f in item.split(",") if f.strip()))
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise CliError(f"unknown output format {unknown[0]!r}; choose from {', '.join(sorted(WRITERS))}")
    if not formats:
        raise CliError("--format is empty; choose at least one output format")
    return formats


def _pose_model(detector: str, onnx: Path | None, checkpoint: Path | None) -> Path | None:
    """The detector's model file from --pose-model / --pose-checkpoint, or its default (perhaps
    downloaded once); None for a detector that takes none. Checked before any work: a missing
    file or an impossible download is one line."""
    from posecli.detect2d.table import detector_entry

    try:
        return detector_entry(detector).resolve_model(onnx, checkpoint)
    except ValueError as e:
        raise CliError(str(e)) from None


def _threads(threads: int | None, jobs: int, engine: str) -> int:
    """Threads per clip: given, or the cores shared out so that jobs x threads fits them."""
    if threads is not None:
        return max(1, threads)
    cores = os.cpu_count() or 1
    if engine == "ray":
        return 1  # one CPU per Ray task: the cluster's scheduler packs tasks onto cores
    return max(1, min(4, cores // max(1, jobs)))


@app.command(cls=ReadableCommand, no_args_is_help=True)
def lift(
    inputs: List[str] = typer.Argument(..., metavar="INPUTS", show_default=False,
                                       help="Videos (mp4/mov/avi/mkv/webm), 2D keypoint JSON files, "
                                            "folders of them, or globs (quote them: 'clips/**/*.mp4').",
                                       rich_help_panel=INPUT),
    recursive: bool = typer.Option(False, "--recursive", "-r", metavar=FLAG, rich_help_panel=INPUT,
                                   help="Search folders' subfolders too."),
    fail_truncated: bool = typer.Option(False, "--fail-truncated", metavar=FLAG, rich_help_panel=INPUT,
                                        help="Treat a video that ends before its container says "
                                             "(truncated file) as an error, not a warning."),
    detector: str = opt.detector(),
    pose_model: Optional[Path] = opt.pose_model(),
    pose_checkpoint: Optional[Path] = opt.pose_checkpoint(),
    person: str = typer.Option(LiftOptions.person, metavar="auto|all|ID", rich_help_panel=DETECTION,
                               help="Who to lift: auto (the person seen most, then largest and most "
                                    "central), all (one file per person, <name>.person<id>.json), "
                                    "or a track id."),
    max_people: int = opt.max_people(),
    weights: Optional[Path] = opt.weights(),
    backend: str = opt.backend(),
    flip: bool = opt.flip(),
    stride: Optional[int] = typer.Option(None, metavar="N", rich_help_panel=LIFTING,
                                         help="Frames between window starts, 1..T (default: half a window)."),
    rigid: bool = opt.rigid(),
    plausible: bool = opt.plausible(),
    root_motion: bool = opt.root_motion(),
    focal: Optional[float] = opt.focal(),
    fusion: str = opt.fusion(),
    foot_lock: bool = opt.foot_lock(),
    camera_motion: bool = opt.camera_motion(),
    out_dir: Path = typer.Option(Path("."), "--out", "-o", metavar="DIR", rich_help_panel=OUTPUT,
                                 help="Output folder (created if needed); outputs mirror the input tree."),
    formats: List[str] = typer.Option(list(LiftOptions.formats), "--format", "-f", metavar="NAMES",
                                      rich_help_panel=OUTPUT,
                                      help="Output format(s), repeatable or comma-separated."),
    bvh_scale: float = opt.bvh_scale(),
    bvh_names: str = typer.Option(LiftOptions.bvh_names, metavar="plain|mixamo", rich_help_panel=OUTPUT,
                                  help="BVH joint names: plain (Hips, Spine, ...) or mixamo (mixamorig:Hips, ...)."),
    fps: Optional[float] = typer.Option(None, metavar="RATE", rich_help_panel=OUTPUT,
                                        help="Resample the BVH to this frame rate (default: the video's own)."),
    overwrite: bool = typer.Option(False, "--overwrite", metavar=FLAG, rich_help_panel=OUTPUT,
                                   help="Redo clips whose outputs are already complete."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar=FLAG, rich_help_panel=OUTPUT,
                               help="No progress bars."),
    jobs: int = typer.Option(1, "--jobs", "-j", metavar="N", rich_help_panel=BATCHES,
                             help="Clips processed in parallel processes."),
    threads: Optional[int] = typer.Option(None, metavar="N", rich_help_panel=BATCHES,
                                          help="CPU threads per clip (default: the cores shared out over "
                                               "--jobs, at most 4; 1 per Ray task)."),
    engine: str = typer.Option("local", metavar="local|ray", rich_help_panel=BATCHES,
                               help="This machine, or a Ray cluster (pip install 'posecli\\[ray]')."),
    ray_address: Optional[str] = typer.Option(None, metavar="ADDRESS", rich_help_panel=BATCHES,
                                              help="Ray cluster address (default: $RAY_ADDRESS, else a "
                                                   "local Ray instance)."),
    summary: Optional[Path] = typer.Option(None, metavar="FILE", rich_help_panel=BATCHES,
                                           help="Write a machine-readable batch summary (JSON) here."),
    log: Optional[Path] = typer.Option(None, metavar="FILE", rich_help_panel=BATCHES,
                                       help="Append one line per clip (and start / end) to this file."),
) -> None:
    """Lift videos (or 2D keypoint files) to 3D poses; write one file per format into --out.

    Clips whose outputs are complete (same input file, same settings) are skipped, so a batch
    that was interrupted resumes where it stopped. Exit status: 0 all done, 1 any clip failed,
    130 interrupted.
    """
    from posecli import batch

    flat_memory()
    try:
        # options first, before any work (--stride is checked against the window when loaded)
        if threads is not None:
            count("--threads", threads, 1, MAX_THREADS)
        count("--jobs", jobs, 1, MAX_THREADS)
        if engine not in ("local", "ray"):
            raise CliError(f"unknown engine {engine!r} (local or ray)")
        if engine == "ray" and importlib.util.find_spec("ray") is None:
            raise CliError("--engine ray needs Ray: pip install 'posecli[ray]'")
        options = LiftOptions(
            detector=detector, pose_model=_pose_model(detector, pose_model, pose_checkpoint),
            person=person, max_people=max_people,
            weights=weights.resolve() if weights else None, backend=backend, flip=flip,
            stride=stride, rigid=rigid, plausible=plausible, root_motion=root_motion, focal=focal,
            allow_truncated=not fail_truncated, fusion=fusion, foot_lock=foot_lock,
            camera_motion=camera_motion, formats=tuple(_formats(formats)), bvh_scale=bvh_scale,
            bvh_names=bvh_names, fps=fps, threads=_threads(threads, jobs, engine),
            overwrite=overwrite)
        for option, path in (("--log", log), ("--summary", summary)):
            if path is not None:
                check_file_writable(path, option)
        clips = batch.discover(inputs, recursive=recursive, exclude=out_dir)
        # load the lifter here: bad weights or --stride fail before any clip (and before the
        # output folder is made); the stride recorded is the one used
        models = batch.worker_models(options)
        models.fusion  # a bad fusion file fails here too
        options = options.replace(stride=models.lifter.stride)
        batch.worker_models(options, models.lifter)
        check_writable(out_dir)
    except PosecliError as e:
        fail(str(e))
    from posecli.cli_batch import run_batch
    code = run_batch(clips, out_dir, options, engine=engine, jobs=jobs, ray_address=ray_address,
                     summary_path=summary, log_path=log, quiet=quiet, out=out, err=err)
    if code:
        raise typer.Exit(code)


@app.command(cls=ReadableCommand)
def export(
    result: Path = typer.Argument(..., metavar="RESULT.json", help="A posecli result JSON (from `posecli lift`)."),
    formats: List[str] = typer.Option(["bvh"], "--format", "-f", metavar="NAMES",
                                      help="Output format(s), repeatable or comma-separated."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", metavar="DIR",
                                           help="Output folder (default: beside the JSON)."),
    video: Optional[Path] = typer.Option(None, metavar="FILE",
                                         help="The source video's path, if it has moved (for mp4)."),
    bvh_scale: float = typer.Option(LiftOptions.bvh_scale, metavar="S",
                                    help="BVH lengths: 1 = metres, 100 = centimetres."),
    bvh_names: str = typer.Option(LiftOptions.bvh_names, metavar="plain|mixamo",
                                  help="BVH joint names: plain (Hips, Spine, ...) or mixamo (mixamorig:Hips, ...)."),
    fps: Optional[float] = typer.Option(None, metavar="RATE",
                                        help="Resample the BVH to this frame rate (default: the video's own)."),
) -> None:
    """Convert an existing result JSON to other formats (bvh, mp4, html, glb, trc, csv) without
    lifting again. Outputs are named after the result (clip.json -> clip.bvh, clip.mp4)."""
    from posecli import timing
    from posecli.export import output_path, write_all
    from posecli.keypoints import read_result
    try:
        formats = _formats(formats)
        positive_number("--bvh-scale", bvh_scale, MAX_BVH_SCALE)
        res = read_result(result)
        check_output(bvh_scale, bvh_names, fps)
        if video is not None:
            _check_video_matches(video, res, result)
        elif "mp4" in formats and res.kind == "video" and not Path(res.source).is_file():
            raise CliError(f"{res.source}: the source video recorded in {result.name} is not there; "
                           f"give its new path with --video")
        dest = out_dir or result.parent
        check_writable(dest)
        if "json" in formats and output_path(result.stem, dest, "json").resolve() == result.resolve():
            formats.remove("json")  # never overwrite the input with itself
        for fmt in formats:
            path = output_path(result.stem, dest, fmt).resolve()
            if path in {result.resolve(), Path(res.source).resolve()} | (
                    {video.resolve()} if video is not None else set()):
                raise CliError(f"{path}: writing it would overwrite an input; choose another --out folder")
        opts = {**writer_options(bvh_scale, bvh_names, fps),
                "mp4": {"video": str(video)} if video is not None else {}}
        # the MP4 first: it reads the video, and a video that turns out wrong leaves nothing
        formats.sort(key=lambda f: f != "mp4")
        for p in write_all(res, dest, formats, opts, stem=result.stem):
            out.print(f"wrote {p}", highlight=False)
        note = timing.lift_plan(res.frame_times())["exports"]  # unevenly timed: resampled
        if note and {"bvh", "mp4"} & set(formats):
            out.print(f"note: {note}", highlight=False, soft_wrap=True)
    except PosecliError as e:
        fail(str(e))


def _check_video_matches(video: Path, res, result: Path) -> None:
    """Before any work: ``--video`` exists and is as long as the clip ``res`` was lifted from
    (its recorded container duration, else the frames' time span); CliError otherwise. The
    MP4 writer then checks the exact frame count while it reads the video."""
    from posecli.video import probe
    if not video.is_file():
        raise CliError(f"{video}: no such file")
    info = probe(video)
    span = float(res.frame_times()[-1]) + 1 / res.fps
    want = (res.video or {}).get("duration") or span
    if info.duration is not None and abs(info.duration - want) > max(0.5, 0.05 * want):
        about = f" (about {info.num_frames} frames)" if info.num_frames else ""
        raise CliError(f"{video}: {info.duration:g} s of video{about}, but {result.name} holds "
                       f"{res.num_frames} frames over {want:.3g} s; give the video it was lifted from")


@app.command(cls=ReadableCommand)
def view(
    results: List[Path] = typer.Argument(..., metavar="RESULT.json",
                                         help="posecli result JSON file(s); several (e.g. the people "
                                              "of one clip) share one page."),
    no_open: bool = typer.Option(False, "--no-open", metavar=FLAG,
                                 help="Only write the page and print its path."),
) -> None:
    """Open a result in the browser: writes the offline 3D viewer page (as `-f html`) to a
    temporary file and opens it."""
    import tempfile
    import webbrowser

    from posecli.export.html import write
    from posecli.keypoints import read_result
    try:
        people = [read_result(r) for r in results]
        fd, name = tempfile.mkstemp(prefix=f"posecli-{results[0].stem}-", suffix=".html")
        os.close(fd)
        write(people[0], Path(name), people=people)
    except PosecliError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write the page: {e.strerror or e}")
    out.print(f"wrote {name}", highlight=False)
    if not no_open and not webbrowser.open(Path(name).resolve().as_uri()):
        err.print(f"could not start a browser; open {name} yourself", highlight=False)


@app.command(cls=ReadableCommand)
def tracks(
    video: Path = typer.Argument(..., metavar="VIDEO", help="A video."),
    out_dir: Path = typer.Option(Path("."), "--out", "-o", metavar="DIR", help="Folder for the thumbnails."),
    detector: str = typer.Option(LiftOptions.detector, metavar="NAME", help="2D detector (see `posecli info`)."),
    pose_model: Optional[Path] = typer.Option(None, metavar="FILE.onnx", help=POSE_MODEL_HELP),
    pose_checkpoint: Optional[Path] = typer.Option(None, metavar="FILE.pth", help=POSE_CHECKPOINT_HELP),
    max_people: int = typer.Option(LiftOptions.max_people, metavar="N", help="People followed at once."),
    threads: int = typer.Option(min(4, os.cpu_count() or 1), metavar="N", help="CPU threads."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar=FLAG, help="No progress bars."),
) -> None:
    """List the people tracked in a video (for `lift --person N`), one thumbnail image each."""
    try:
        import cv2

        from posecli import pipeline
        from posecli.detect2d.tracks import best_frame, choose_person, thumbnail
        from posecli.video import iter_frames
        options = LiftOptions(detector=detector, pose_model=_pose_model(detector, pose_model, pose_checkpoint),
                              max_people=max_people, threads=threads)
        check_writable(out_dir)
        with _progress(quiet) as progress:
            info, _, found, _ = pipeline.track_video(video, options, progress)
        if not found:
            raise NoPersonError(f"{video}: no person was found")
        auto = choose_person(found, info.width, info.height).id
        want = {best_frame(t): [] for t in found}
        for t in found:
            want[best_frame(t)].append(t)
        thumbs = {}
        for i, frame in enumerate(iter_frames(video, info)):
            for t in want.get(i, []):
                p = out_dir / f"{video.stem}.track{t.id}.jpg"
                img = thumbnail(frame, t.xy[i], t.conf[i])
                if not cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                    raise CliError(f"{p}: could not write the thumbnail")
                thumbs[t.id] = p
    except PosecliError as e:
        fail(str(e))
    people = "1 person" if len(found) == 1 else f"{len(found)} people"
    table = Table(title=f"{video.name}: {people} ({info.num_frames} frames)")
    for col in ("id", "first", "last", "frames", "height px", "thumbnail"):
        table.add_column(col)
    for t in found:
        s = t.summary(info.width, info.height)
        mark = " (auto)" if t.id == auto else ""
        table.add_row(f"{t.id}{mark}", str(s["first_frame"]), str(s["last_frame"]), str(s["frames"]),
                      str(s["height_px"]), str(thumbs.get(t.id, "")))
    out.print(table)


@app.command(cls=ReadableCommand)
def info() -> None:
    """Versions, available detectors, and the model files found with their checksums."""
    import importlib.metadata as md
    import platform

    from posecli import __version__
    from posecli.weights import load_manifest, search_dirs, sha256

    table = Table(title=f"posecli {__version__}", show_header=False)
    table.add_row("python", platform.python_version())
    table.add_row("machine", f"{platform.machine()}, {os.cpu_count()} CPUs")
    for pkg in ("torch", "numpy", "opencv-python-headless", "ai-edge-litert", "onnxruntime", "imageio-ffmpeg"):
        try:
            table.add_row(pkg, md.version(pkg))
        except md.PackageNotFoundError:
            table.add_row(pkg, "[dim]not installed[/]")
    try:
        from posecli.detect2d import available_detectors
        table.add_row("detectors", ", ".join(available_detectors()))
    except ImportError as e:
        table.add_row("detectors", f"[red]unavailable ({e})[/]")
    out.print(table)

    files = Table(title="model files", show_lines=False)
    for col in ("file", "status", "sha256", "location"):
        files.add_column(col)
    for name, entry in sorted(load_manifest().items()):
        where = next((d / name for d in search_dirs() if (d / name).is_file()), None)
        if where is None:
            files.add_row(name, "[yellow]not found[/]", entry["sha256"][:16], "")
            continue
        ok = sha256(where) == entry["sha256"]
        files.add_row(name, "[green]ok[/]" if ok else "[red]checksum mismatch[/]", entry["sha256"][:16], str(where.parent))
    from posecli.detect2d.table import DETECTORS
    for entry in DETECTORS.values():  # detector models that are not shipped files
        if entry.model_row is not None:
            files.add_row(*entry.model_row())
    out.print(files)


def _register_optional() -> None:
    """Commands whose modules may be absent in a trimmed install."""
    try:
        from posecli.cli_research import register
    except ImportError:
        return
    register(app)


_register_optional()
from posecli.cli_live import register as _register_live  # noqa: E402 (after the commands above)

_register_live(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
