"""Finding a batch's inputs: files, folders and globs -> :class:`Clip` s with mirrored paths."""
from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from posecli.errors import UsageError
from posecli.video import VIDEO_SUFFIXES

INPUT_SUFFIXES = (*VIDEO_SUFFIXES, ".json")
_PERSON = re.compile(r"\.person\d+$")  # <stem>.person<id>.<format>: one output set per person


@dataclass(frozen=True)
class Clip:
    """One input and where its outputs go: ``rel`` is its path relative to the input root."""
    path: Path
    rel: Path

    @property
    def name(self) -> str:
        return self.rel.as_posix()

    def output(self, out_root: Path, fmt: str) -> Path:
        """The output file of format ``fmt`` under ``out_root``, mirroring the input tree."""
        from posecli.export import output_path
        return output_path(self.rel.stem, Path(out_root) / self.rel.parent, fmt)


def _is_input(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in INPUT_SUFFIXES and not p.name.startswith(".")


def _glob_root(pattern: str) -> Path:
    """The folder before the first wildcard of a glob: the root the outputs mirror from."""
    parts = Path(pattern).parts
    fixed = [p for p in parts[:next(i for i, p in enumerate(parts) if glob.has_magic(p))]]
    return Path(*fixed) if fixed else Path(".")


def discover(items: Iterable[str | Path], recursive: bool = False,
             exclude: Path | None = None) -> list[Clip]:
    """Files, folders and globs -> clips in a stable order, each with its mirrored path.

    A file maps to its own name; a folder's files (``recursive``: its whole tree) map to their
    path below the folder; a glob's matches map to their path below the glob's fixed prefix.
    ``exclude`` (the output folder), when it lies inside a searched folder, is not searched,
    so earlier outputs are not taken as inputs.
    Raises UsageError for a path that does not exist, a folder or glob with no input, or two
    inputs that would write the same output.
    """
    exclude = exclude.resolve() if exclude is not None else None
    clips: list[Clip] = []
    for item in items:
        text = str(item)
        path = Path(text)
        if not path.exists() and glob.has_magic(text):
            root = _glob_root(text)
            found = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
            found = [p for p in found if _is_input(p)]
            if not found:
                raise UsageError(f"{text}: the pattern matches no video or keypoint file")
            clips += [Clip(p, p.relative_to(root)) for p in found]
        elif path.is_dir():
            # only an output folder *below* this one is skipped (``-o .`` above it skips nothing)
            skip = exclude if exclude is not None and path.resolve() in exclude.parents else None
            walk = path.rglob("*") if recursive else path.iterdir()
            found = sorted(p for p in walk if _is_input(p) and not _inside(p, skip))
            if not found:
                raise UsageError(f"{path}: the folder holds no video ({', '.join(INPUT_SUFFIXES[:-1])}) "
                                 "or keypoint file" + ("" if recursive else " (--recursive searches subfolders)"))
            clips += [Clip(p, p.relative_to(path)) for p in found]
        elif path.exists():
            clips.append(Clip(path, Path(path.name)))
        else:
            raise UsageError(f"{path}: no such file or directory")
    own = _own_outputs(clips)
    clips = [c for c in clips if c.path not in own]
    _check_collisions(clips)
    return clips


def _own_outputs(clips: list[Clip]) -> set[Path]:
    """The inputs that are posecli's outputs of another input of the same batch, so a batch
    re-run in place (``cd clips; posecli lift .``) never lifts its own results.

    A file ``<stem>.<fmt>`` or ``<stem>.person<id>.<fmt>`` beside an input ``<stem>.*`` is that
    input's output when a resume record proves it: its own ``provenance`` (a result JSON) or
    the input's hidden record (``.<stem>.posecli.json``, written when no JSON is) names the
    input's size and first-MiB checksum. A result lifted elsewhere stays a valid input.
    """
    from posecli.batch.records import file_identity

    by_stem: dict[tuple[Path, str], list[Clip]] = {}
    for c in clips:
        by_stem.setdefault((c.path.parent, c.path.stem), []).append(c)
    own: set[Path] = set()
    identities: dict[Path, tuple] = {}

    def made_from(record: Path, source: Path) -> bool:
        if source not in identities:
            i = file_identity(source)
            identities[source] = (i["size"], i["sha256_head"])
        try:
            made = json.loads(record.read_text())["provenance"]["input_file"]
            return (made["size"], made["sha256_head"]) == identities[source]
        except (OSError, ValueError, KeyError, TypeError):
            return False

    for c in clips:
        stem = _PERSON.sub("", c.path.stem)
        for source in by_stem.get((c.path.parent, stem), []):
            if source is c:
                continue
            record = c.path if c.path.suffix.lower() == ".json" else \
                c.path.parent / f".{source.path.stem}.posecli.json"
            if made_from(record, source.path):
                own.add(c.path)
                break
    return own


def _inside(p: Path, folder: Path | None) -> bool:
    return folder is not None and folder in p.resolve().parents


def _check_collisions(clips: list[Clip]) -> None:
    seen: dict[Path, Clip] = {}
    for c in clips:
        key = c.rel.with_suffix("")
        if key in seen:
            raise UsageError(f"{seen[key].path} and {c.path} would write the same outputs "
                             f"({key}.*); give them different names or folders")
        seen[key] = c
