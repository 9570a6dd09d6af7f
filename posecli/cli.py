"""The ``posecli`` command line."""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
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
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
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


def _formats(items: list[str]) -> list[str]:
    """Repeatable / comma-separated --format values, checked against the writers."""
    from posecli.export import WRITERS
    formats = list(dict.fromkeys(f.strip() for item in items for f in item.split(",") if f.strip()))
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise CliError(f"unknown output format {unknown[0]!r}; choose from {', '.join(sorted(WRITERS))}")
    return formats


def _person(value: str) -> str | int:
    """--person: "auto", "all" or a track id (a positive integer)."""
    v = value.strip().lower()
    if v in ("auto", "all"):
        return v
    if v.isdigit() and int(v) > 0:
        return int(v)
    raise CliError(f"--person {value!r}: use auto, all or a track id (see `posecli tracks`)")


def _pose_model(detector: str, onnx: Path | None, checkpoint: Path | None) -> Path | None:
    """The HRNet model file from --pose-model / --pose-checkpoint (default: the MMPose model-zoo
    checkpoint, downloaded once into the user cache); None for BlazePose. Checked before any
    work: a missing file or an impossible download is one line."""
    from posecli.detect2d import available_detectors

    if detector not in available_detectors():
        raise CliError(f"unknown detector {detector!r}; available: {', '.join(available_detectors())}")
    if onnx is not None and checkpoint is not None:
        raise CliError("give --pose-model (ONNX) or --pose-checkpoint (MMPose .pth), not both")
    given = onnx or checkpoint
    if detector != "hrnet":
        if given is not None:
            raise CliError(f"--pose-model and --pose-checkpoint are for --detector hrnet, not {detector}")
        return None
    if onnx is not None and onnx.suffix.lower() != ".onnx":
        raise CliError(f"--pose-model {onnx}: expected an .onnx file (an MMPose .pth goes to --pose-checkpoint)")
    if checkpoint is not None and checkpoint.suffix.lower() == ".onnx":
        raise CliError(f"--pose-checkpoint {checkpoint}: an ONNX file goes to --pose-model")
    if given is not None:
        if not given.is_file():
            raise CliError(f"{given}: pose model file not found")
        return given.resolve()
    from posecli.detect2d.hrnet import default_checkpoint
    return default_checkpoint()


POSE_MODEL_HELP = "--detector hrnet: an HRNet-w32 COCO 256x192 ONNX file (onnxruntime)."
POSE_CHECKPOINT_HELP = ("--detector hrnet: an MMPose HRNet-w32 COCO 256x192 checkpoint (.pth, run "
                        "with torch). Default: the MMPose model zoo's, downloaded once.")


def _threads(threads: int | None, jobs: int, engine: str) -> int:
    """Threads per clip: given, or the cores shared out so that jobs x threads fits them."""
    if threads is not None:
        return max(1, threads)
    cores = os.cpu_count() or 1
    if engine == "ray":
        return 1  # one CPU per Ray task: the cluster's scheduler packs tasks onto cores
    return max(1, min(4, cores // max(1, jobs)))


def _fusion(value: str) -> tuple[str, str]:
    """--fusion on|off|FILE -> (the pipeline's fusion setting, the file's sha256); the file is
    loaded (and verified) now, so a bad one fails before any work."""
    if value == "off":
        return "off", ""
    from posecli.lifter import fusion as fusion_mod
    name = "default" if value in ("on", "default") else str(Path(value).resolve())
    if name != "default" and not Path(name).is_file():
        raise CliError(f"--fusion must be on, off or a fusion file; {value!r} is none of them")
    return name, fusion_mod.resolve(name).info["sha256"]


@app.command()
def lift(
    inputs: List[str] = typer.Argument(..., help="Videos (mp4/mov/avi/mkv/webm), 2D keypoint JSON files, "
                                                 "folders of them, or globs (quote them: 'clips/**/*.mp4')."),
    out_dir: Path = typer.Option(Path("."), "--out", "-o", help="Output folder (created if needed); "
                                                               "outputs mirror the input tree."),
    formats: List[str] = typer.Option(["json"], "--format", "-f",
                                      help="Output format(s), repeatable or comma-separated."),
    detector: str = typer.Option("blazepose-full", help="2D detector: blazepose-lite|full|heavy or hrnet "
                                                        "(see `posecli info`)."),
    pose_model: Optional[Path] = typer.Option(None, help=POSE_MODEL_HELP),
    pose_checkpoint: Optional[Path] = typer.Option(None, help=POSE_CHECKPOINT_HELP),
    weights: Optional[Path] = typer.Option(None, help="Lifter checkpoint (default: shipped weights/lifter.pt)."),
    backend: str = typer.Option("torch", help="Lifter runtime: torch or onnx."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="Flip test-time augmentation."),
    rigid: bool = typer.Option(True, "--rigid/--no-rigid",
                               help="One set of bone lengths for the whole clip (median, left = right)."),
    stride: Optional[int] = typer.Option(None, help="Frames between window starts, 1..T (default: half a window, T // 2)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads per clip (default: the cores shared out "
                                                     "over --jobs, at most 4; 1 per Ray task)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Search folders' subfolders too."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo clips whose outputs are already complete."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Clips processed in parallel processes."),
    engine: str = typer.Option("local", help="local (this machine) or ray (pip install 'posecli\\[ray]')."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster address (default: $RAY_ADDRESS, "
                                                         "else a local Ray instance)."),
    summary: Optional[Path] = typer.Option(None, help="Write a machine-readable batch summary (JSON) here."),
    log: Optional[Path] = typer.Option(None, help="Append one line per clip (and start / end) to this file."),
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
    fusion: str = typer.Option("on", help="Combine the lifter's 3D with BlazePose's own 3D (its "
                               "world landmarks) by the shipped learned fusion: on, off (the pure "
                               "MixSTE lifter), or a fusion file. Inputs without world landmarks "
                               "(HRNet, keypoint files without them) use the pure lifter."),
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
        if threads is not None and threads < 1:
            raise CliError(f"--threads must be at least 1, got {threads}")
        who = _person(person)
        pose_file = _pose_model(detector, pose_model, pose_checkpoint)
        import torch
        if engine not in ("local", "ray"):
            raise CliError(f"unknown engine {engine!r} (local or ray)")
        if engine == "ray" and importlib.util.find_spec("ray") is None:
            raise CliError("--engine ray needs Ray: pip install 'posecli[ray]'")
        fmts = _formats(formats)
        if not fmts:
            raise CliError("--format is empty; choose at least one output format")
        clips = batch.discover(inputs, recursive=recursive, exclude=out_dir)
        _check_writable(out_dir)
        n_threads = _threads(threads, jobs, engine)
        torch.set_num_threads(n_threads)
        from posecli.lifter import load_lifter
        lifter = load_lifter(weights, backend=backend, flip=flip, stride=stride, threads=n_threads)
        fusion_name, fusion_sha = _fusion(fusion)
    except PosecliError as e:
        _fail(str(e))
    settings = batch.Settings(formats=tuple(fmts), detector=detector,
                              pose_model=str(pose_file) if pose_file else None,
                              weights=str(weights.resolve()) if weights else None,
                              weights_sha256=lifter.info["sha256"],
                              backend=backend, flip=flip, stride=lifter.stride, rigid=rigid,
                              threads=n_threads, overwrite=overwrite, focal=focal, root_motion=root_motion,
                              plausible=plausible, bvh_scale=bvh_scale, person=who, max_people=max_people,
                              allow_truncated=not fail_truncated, fusion=fusion_name,
                              fusion_sha256=fusion_sha)
    from posecli.cli_batch import run_batch
    code = run_batch(clips, out_dir, settings, engine=engine, jobs=jobs, ray_address=ray_address,
                     lifter=lifter, summary_path=summary, log_path=log, quiet=quiet, out=out, err=err)
    if code:
        raise typer.Exit(code)


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
    pose_model: Optional[Path] = typer.Option(None, help=POSE_MODEL_HELP),
    pose_checkpoint: Optional[Path] = typer.Option(None, help=POSE_CHECKPOINT_HELP),
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
        pose_file = _pose_model(detector, pose_model, pose_checkpoint)
        _check_writable(out_dir)
        with _progress(quiet) as progress:
            info, _, found, _ = pipeline.track_video(video, detector, threads, progress, max_people,
                                                     pose_file)
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
    from posecli.detect2d.hrnet import CHECKPOINT_NAME, CHECKPOINT_SHA256_PREFIX
    from posecli.download import digest_mismatch
    from posecli.weights import user_cache
    hr = user_cache() / CHECKPOINT_NAME
    files.add_row(CHECKPOINT_NAME, ("[green]ok[/]" if digest_mismatch(sha256(hr), None, CHECKPOINT_SHA256_PREFIX) is None
                                    else "[red]checksum mismatch[/]") if hr.is_file()
                  else "[dim]not downloaded (--detector hrnet fetches it)[/]",
                  CHECKPOINT_SHA256_PREFIX + "...", str(hr.parent) if hr.is_file() else "")
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
