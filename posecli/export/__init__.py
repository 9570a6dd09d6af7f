"""Writers, one per output format, chosen by name. Each takes a LiftResult, never a model."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from posecli.errors import OutputError, UsageError
from posecli.result import LiftResult


def _json_writer(result: LiftResult, path: Path) -> None:
    from posecli.export.json import write
    write(result, path)


def _bvh_writer(result: LiftResult, path: Path, **options) -> None:
    from posecli.export.bvh import write
    write(result, path, **options)


def _mp4_writer(result: LiftResult, path: Path, **options) -> None:
    from posecli.export.mp4 import write
    write(result, path, **options)


def _lazy(module: str) -> Callable[..., None]:
    """The ``write(result, path, **options)`` of ``posecli.export.<module>``, imported when called."""
    def writer(result: LiftResult, path: Path, **options) -> None:
        from importlib import import_module
        import_module(f"posecli.export.{module}").write(result, path, **options)
    return writer


# name -> (file suffix, writer(result, path, **options))
WRITERS: dict[str, tuple[str, Callable[..., None]]] = {
    "json": (".json", _json_writer),
    "bvh": (".bvh", _bvh_writer),
    "mp4": (".mp4", _mp4_writer),
    "html": (".html", _lazy("html")),
    "glb": (".glb", _lazy("glb")),
    "trc": (".trc", _lazy("trc")),
    "csv": (".csv", _lazy("csv")),
}


def output_path(result: LiftResult | str, out_dir: Path, fmt: str, suffix: str = "") -> Path:
    """``out_dir/<stem><suffix>.<format>``: stem a string or the result's source stem;
    ``suffix`` tells people apart (".person2")."""
    stem = result if isinstance(result, str) else Path(result.source).stem
    return Path(out_dir) / (stem + suffix + WRITERS[fmt][0])


def write_all(result: LiftResult, out_dir: str | Path, formats: list[str],
              options: dict[str, dict] | None = None, suffix: str = "",
              stem: str | None = None) -> list[Path]:
    """Write ``result`` in every named format into ``out_dir``; returns the paths written.

    options: per format, keyword arguments for its writer (e.g. ``{"bvh": {"scale": 100}}``).
    suffix: added to the file stem (one file per person: ".person<id>").
    stem: the files' stem (default: the result's source's).
    """
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise UsageError(f"unknown output format {unknown[0]!r}; choose from {', '.join(sorted(WRITERS))}")
    paths = []
    for fmt in formats:
        path = output_path(stem if stem is not None else result, Path(out_dir), fmt, suffix)
        if Path(result.source).exists() and path.resolve() == Path(result.source).resolve():
            raise OutputError(f"{path}: writing it would overwrite the input; choose another --out folder")
        try:
            WRITERS[fmt][1](result, path, **(options or {}).get(fmt, {}))
        except OSError as e:  # full disk, folder removed mid-run ...: the writer left nothing behind
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        paths.append(path)
    return paths
