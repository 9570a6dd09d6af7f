"""Writers, one per output format, chosen by name. Each takes a LiftResult, never a model."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from posecli.result import LiftResult


def _json_writer(result: LiftResult, path: Path) -> None:
    from posecli.export.json import write
    write(result, path)


# name -> (file suffix, writer(result, path))
WRITERS: dict[str, tuple[str, Callable[[LiftResult, Path], None]]] = {
    "json": (".json", _json_writer),
}


def output_path(result: LiftResult | str, out_dir: Path, fmt: str) -> Path:
    """out_dir / (stem + the format's suffix); stem: a string, or the result's source stem."""
    stem = result if isinstance(result, str) else Path(result.source).stem
    return Path(out_dir) / (stem + WRITERS[fmt][0])


def write_all(result: LiftResult, out_dir: str | Path, formats: list[str],
              stem: str | None = None) -> list[Path]:
    """Write ``result`` in every named format into ``out_dir``; returns the paths written.

    stem: the output file name before the suffix (default: the input's stem).
    """
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise ValueError(f"unknown output format(s) {unknown}; choose from {sorted(WRITERS)}")
    paths = []
    for fmt in formats:
        path = output_path(stem or result, Path(out_dir), fmt)
        if Path(result.source).exists() and path.resolve() == Path(result.source).resolve():
            raise ValueError(f"{path}: the output would overwrite its input; choose another folder")
        WRITERS[fmt][1](result, path)
        paths.append(path)
    return paths


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Nothing half-written is left behind: on any error the temporary file is removed.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results get the usual mode
        os.replace(tmp, path)
    except OSError as e:
        if e.filename:  # already names a file
            raise
        # e.g. "No space left on device": say which output could not be written
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
