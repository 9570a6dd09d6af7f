"""The ``posecli`` command line."""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from posecli.errors import NoPersonError, OutputError, PosecliError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn an ordinary video of a person into 3D human motion.")
err = Console(stderr=True)
out = Console()


class CliError(PosecliError):
    """An expected failure found by the CLI itself: printed as one line, exit status 1."""


def _fail(msg: str) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


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


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise OutputError(f"cannot write to output directory {directory}: {e.strerror or e}") from None


def _inputs(path: Path) -> list[Path]:
    from posecli.video import VIDEO_SUFFIXES
    if not path.exists():
        raise CliError(f"{path}: no such file or directory")
    if path.is_dir():
        items = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES + (".json",))
        if not items:
            raise CliError(f"{path}: the folder holds no video ({', '.join(VIDEO_SUFFIXES)}) or keypoint file")
        return items
    return [path]


def _output_stems(inputs: list[Path]) -> dict[Path, str]:
    """Output file stem per input: its stem, or its full name where stems collide in a batch
    (clip.mp4 and clip.mov -> clip.mp4.json, clip.mov.json), so no output overwrites another."""
    stems = [p.stem for p in inputs]
    return {p: p.name if stems.count(p.stem) > 1 else p.stem for p in inputs}


def _person(value: str) -> str | int:
    """--person: "auto", "all" or a track id (a positive integer)."""
    v = value.strip().lower()
    if v in ("auto", "all"):
        return v
    if v.isdigit() and int(v) > 0:
        return int(v)
    raise CliError(f"--person {value!r}: use auto, all or a track id (see `posecli tracks`)")


def _refuse_overwriting_inputs(targets: list[Path], inputs: list[Path]) -> None:
    """Never write over an input file (e.g. lifting a result into its own folder)."""
    sources = {p.resolve() for p in inputs}
    for t in targets:
        if t.resolve() in sources:
            raise OutputError(f"{t}: writing it would overwrite an input; choose another --out folder")


def _lift_one(path: Path, out_dir: Path, formats: list[str], detector: str, lifter, threads: int,
              quiet: bool, rigid: bool, stem: str, inputs: list[Path], fail_truncated: bool = False,
              options: dict | None = None, writer_options: dict | None = None,
              person: str | int = "auto", max_people: int = 5) -> list[Path]:
    from posecli.export import output_path, write_all
    from posecli.pipeline import lift, truncation_message

    _refuse_overwriting_inputs([output_path(stem, out_dir, f) for f in formats], inputs)
    with _progress(quiet) as progress:
        if person == "all" and path.suffix.lower() != ".json":  # one file per person: <stem>.person<id><ext>
            from posecli.pipeline import lift_video_all
            results = lift_video_all(path, detector, lifter, threads, progress, rigid, max_people,
                                     allow_truncated=not fail_truncated, **(options or {}))
        else:
            results = [lift(path, detector=detector, lifter=lifter, rigid=rigid, threads=threads, progress=progress,
                            person="auto" if person == "all" else person, max_people=max_people,
                            allow_truncated=not fail_truncated, **(options or {}))]
    if results and results[0].video and results[0].video.get("truncated"):
        err.print(f"[bold yellow]warning:[/] {truncation_message(str(path), results[0].video)}",
                  highlight=False, soft_wrap=True)
    paths = []
    for result in results:
        who = (result.detector or {}).get("person") if person == "all" else None
        suffix = f".person{who['track_id']}" if who else ""
        paths += write_all(result, out_dir, formats, writer_options, suffix=suffix, stem=stem)
        if result.quality is not None:
            from posecli.quality import one_line
            out.print(one_line(result.quality), highlight=False, soft_wrap=True)
    return paths


def _one_line(path: Path, e: BaseException) -> str:
    """An error as one line that names the input file."""
    msg = " ".join(str(e).split()) or type(e).__name__
    if not isinstance(e, PosecliError):
        msg = f"unexpected {type(e).__name__}: {msg} (a bug; POSECLI_DEBUG=1 shows the traceback)"
    return msg if str(path) in msg else f"{path}: {msg}"


def _formats(formats: list[str]) -> list[str]:
    from posecli.export import WRITERS
    formats = [f.strip() for item in formats for f in item.split(",") if f.strip()]
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise CliError(f"unknown output format {unknown[0]!r}; choose from {', '.join(sorted(WRITERS))}")
    return formats


@app.command()
def lift(
    input: Path = typer.Argument(..., help="A video (mp4/mov/avi/mkv/webm), a 2D keypoint JSON file, "
                                           "or a folder of them (batch)."),
    out_dir: Path = typer.Option(Path("."), "--out", "-o", help="Output folder (created if needed)."),
    formats: List[str] = typer.Option(["json"], "--format", "-f",
                                      help="Output format(s), repeatable or comma-separated."),
    detector: str = typer.Option("blazepose-full", help="2D detector (see `posecli info`)."),
    weights: Optional[Path] = typer.Option(None, help="Lifter checkpoint (default: shipped weights/lifter.pt)."),
    backend: str = typer.Option("torch", help="Lifter runtime: torch or onnx."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="Flip test-time augmentation."),
    rigid: bool = typer.Option(True, "--rigid/--no-rigid",
                               help="One set of bone lengths for the whole clip (median, left = right)."),
    stride: Optional[int] = typer.Option(None, help="Frames between window starts, 1..T (default: half a window, T // 2)."),
    threads: int = typer.Option(min(4, os.cpu_count() or 1), help="CPU threads (torch, onnxruntime, detector)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    fail_truncated: bool = typer.Option(False, "--fail-truncated",
                                        help="Treat a video that ends before its container says "
                                             "(truncated file) as an error, not a warning."),
    focal: Optional[float] = typer.Option(None, help="Camera focal length in pixels for the root "
                                                     "trajectory (default: the longer image side)."),
    root_motion: bool = typer.Option(True, "--root-motion/--no-root-motion",
                                     help="Move the pelvis along the estimated path (or keep it in place)."),
    plausible: bool = typer.Option(True, "--plausible-bones/--raw-bones",
                                   help="Clamp shin/thigh and forearm/upper-arm ratios to anthropometric ranges."),
    bvh_scale: float = typer.Option(1.0, help="BVH lengths: 1 = metres, 100 = centimetres."),
    person: str = typer.Option("auto", help="Who to lift: auto (the person seen most, then "
                               "largest and most central), all (one file per person, "
                               "<name>.person<id>.json), or a track id."),
    max_people: int = typer.Option(5, min=1, help="People followed at once (cost grows with it)."),
) -> None:
    """Lift a video (or a 2D keypoint file) to 3D poses; write one file per format into --out."""
    options = {"focal": focal, "root_motion": root_motion, "plausible": plausible}
    writer_options = {"bvh": {"scale": bvh_scale}}
    flat_memory()
    try:
        # options first, before any work (--stride is checked against the window when loaded)
        if threads < 1:
            raise CliError(f"--threads must be at least 1, got {threads}")
        formats = _formats(formats)
        if not formats:
            raise CliError("--format is empty; choose at least one output format")
        import torch
        torch.set_num_threads(threads)
        from posecli.lifter import load_lifter
        who = _person(person)
        inputs = _inputs(input)
        _check_writable(out_dir)
        lifter = load_lifter(weights, backend=backend, flip=flip, stride=stride, threads=threads)
    except PosecliError as e:
        _fail(str(e))
    stems = _output_stems(inputs)
    failed, written = [], []
    for path in inputs:
        if len(inputs) > 1:
            err.print(f"[bold]{path.name}[/]")
        try:
            for p in _lift_one(path, out_dir, formats, detector, lifter, threads, quiet, rigid,
                               stems[path], inputs, fail_truncated, options, writer_options, who,
                               max_people):
                out.print(f"wrote {p}", highlight=False)
                written.append(p)
        except KeyboardInterrupt:
            kept = f"kept {len(written)} finished output(s) in {out_dir}" if written else "nothing was written"
            err.print(f"[bold red]error:[/] interrupted during {path.name}; {kept}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(130)
        except Exception as e:  # noqa: BLE001 - one clip's failure must not stop a batch
            if os.environ.get("POSECLI_DEBUG") and not isinstance(e, PosecliError):
                raise
            if len(inputs) == 1:
                _fail(_one_line(path, e))
            err.print(f"[bold red]error:[/] {_one_line(path, e)}", highlight=False, soft_wrap=True)
            failed.append(path)
    if failed:
        _fail(f"{len(failed)} of {len(inputs)} inputs failed: {', '.join(p.name for p in failed)}")


@app.command()
def export(
    result: Path = typer.Argument(..., help="A posecli result JSON (from `posecli lift`)."),
    formats: List[str] = typer.Option(["bvh"], "--format", "-f",
                                      help="Output format(s), repeatable or comma-separated."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: beside the JSON)."),
    video: Optional[Path] = typer.Option(None, help="The source video's path, if it has moved (for mp4)."),
    bvh_scale: float = typer.Option(1.0, help="BVH lengths: 1 = metres, 100 = centimetres."),
) -> None:
    """Convert an existing result JSON to other formats (bvh, mp4) without lifting again."""
    from posecli.export import output_path, write_all
    from posecli.export.result_reader import read_result
    try:
        formats = _formats(formats)
        res = read_result(result)
        dest = out_dir or result.parent
        _check_writable(dest)
        if "json" in formats and output_path(res, dest, "json").resolve() == result.resolve():
            formats.remove("json")  # never overwrite the input with itself
        opts = {"bvh": {"scale": bvh_scale}}
        if video is not None:
            res.source = str(video)  # the moved video: read from there, outputs named after it
        if "mp4" in formats and video is None and res.kind == "video" and not Path(res.source).is_file():
            raise CliError(f"{res.source}: the source video recorded in {result.name} is not there; "
                           f"give its new path with --video")
        for p in write_all(res, dest, formats, opts):
            out.print(f"wrote {p}", highlight=False)
    except PosecliError as e:
        _fail(str(e))


@app.command()
def tracks(
    video: Path = typer.Argument(..., help="A video."),
    out_dir: Path = typer.Option(Path("."), "--out", "-o", help="Folder for the thumbnails."),
    detector: str = typer.Option("blazepose-full", help="2D detector (see `posecli info`)."),
    max_people: int = typer.Option(5, min=1, help="People followed at once."),
    threads: int = typer.Option(min(4, os.cpu_count() or 1), help="CPU threads."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """List the people tracked in a video (for `lift --person N`), one thumbnail image each."""
    try:
        import cv2

        from posecli import pipeline
        from posecli.detect2d.tracks import best_frame, choose_person, thumbnail
        from posecli.video import iter_frames
        _check_writable(out_dir)
        with _progress(quiet) as progress:
            info, _, found, _ = pipeline.track_video(video, detector, threads, progress, max_people)
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
        _fail(str(e))
    table = Table(title=f"{video.name}: {len(found)} people ({info.num_frames} frames)")
    for col in ("id", "first", "last", "frames", "height px", "thumbnail"):
        table.add_column(col)
    for t in found:
        s = t.summary(info.width, info.height)
        mark = " (auto)" if t.id == auto else ""
        table.add_row(f"{t.id}{mark}", str(s["first_frame"]), str(s["last_frame"]), str(s["frames"]),
                      str(s["height_px"]), str(thumbs.get(t.id, "")))
    out.print(table)


@app.command()
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
    out.print(files)


def _register_optional() -> None:
    """Commands whose modules may be absent in a trimmed install."""
    try:
        from posecli.cli_research import register
    except ImportError:
        return
    register(app)


_register_optional()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
