"""The ``posecli`` command line."""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from posecli.errors import OutputError, PosecliError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Turn an ordinary video of a person into 3D human motion.")
err = Console(stderr=True)
out = Console()


class CliError(PosecliError):
    """An expected failure found by the CLI itself: printed as one line, exit status 1."""


def _fail(msg: str) -> None:
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


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


def _threads(threads: int | None, jobs: int, engine: str) -> int:
    """Threads per clip: given, or the cores shared out so that jobs x threads fits them."""
    if threads is not None:
        return max(1, threads)
    cores = os.cpu_count() or 1
    if engine == "ray":
        return 1  # one CPU per Ray task: the cluster's scheduler packs tasks onto cores
    return max(1, min(4, cores // max(1, jobs)))


@app.command()
def lift(
    inputs: List[str] = typer.Argument(..., help="Videos (mp4/mov/avi/mkv/webm), 2D keypoint JSON files, "
                                                 "folders of them, or globs (quote them: 'clips/**/*.mp4')."),
    out_dir: Path = typer.Option(Path("."), "--out", "-o", help="Output folder (created if needed); "
                                                               "outputs mirror the input tree."),
    formats: List[str] = typer.Option(["json"], "--format", "-f",
                                      help="Output format(s), repeatable or comma-separated."),
    detector: str = typer.Option("blazepose-full", help="2D detector (see `posecli info`)."),
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
) -> None:
    """Lift videos (or 2D keypoint files) to 3D poses; write one file per format into --out.

    Clips whose outputs are complete (same input file, same settings) are skipped, so a batch
    that was interrupted resumes where it stopped. Exit status: 0 all done, 1 any clip failed,
    130 interrupted.
    """
    from posecli import batch

    try:
        import torch
        if engine not in ("local", "ray"):
            raise CliError(f"unknown engine {engine!r} (local or ray)")
        if engine == "ray" and importlib.util.find_spec("ray") is None:
            raise CliError("--engine ray needs Ray: pip install 'posecli[ray]'")
        fmts = _formats(formats)
        clips = batch.discover(inputs, recursive=recursive, exclude=out_dir)
        _check_writable(out_dir)
        n_threads = _threads(threads, jobs, engine)
        torch.set_num_threads(n_threads)
        from posecli.lifter import load_lifter
        lifter = load_lifter(weights, backend=backend, flip=flip, stride=stride, threads=n_threads)
    except PosecliError as e:
        _fail(str(e))
    settings = batch.Settings(formats=tuple(fmts), detector=detector, weights=str(weights.resolve()) if weights else None,
                              weights_sha256=lifter.info["sha256"],
                              backend=backend, flip=flip, stride=lifter.stride, rigid=rigid,
                              threads=n_threads, overwrite=overwrite)
    from posecli.cli_batch import run_batch
    code = run_batch(clips, out_dir, settings, engine=engine, jobs=jobs, ray_address=ray_address,
                     lifter=lifter, summary_path=summary, log_path=log, quiet=quiet, out=out, err=err)
    if code:
        raise typer.Exit(code)


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
