"""Resume records: what a finished clip records, and whether a clip's outputs are complete.

The record is the JSON result's ``provenance`` block (or, when no JSON is written, a hidden
sidecar): the input's identity and the output-shaping options
(:meth:`posecli.options.LiftOptions.record`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from posecli.batch.inputs import Clip
from posecli.options import LiftOptions

HEAD_BYTES = 1 << 20  # the input's identity hashes its first MiB: cheap, and catches re-encodes
RECORD_FORMAT = "json"  # the output whose ``provenance`` block proves a clip is complete


def file_identity(path: Path) -> dict:
    """{size (bytes), mtime_ns, sha256_head (hex sha256 of the first MiB)} of an input file."""
    st = Path(path).stat()
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_head": head}


def provenance(clip: Clip, options: LiftOptions) -> dict:
    """The block the record file carries: the input's identity and the settings used."""
    return {"input_file": file_identity(clip.path), "settings": options.record()}


def record_format(options: LiftOptions) -> str | None:
    return RECORD_FORMAT if RECORD_FORMAT in options.formats and not options.per_person else None


def is_complete(clip: Clip, out_root: Path, options: LiftOptions) -> bool:
    """True when every output exists and the record file proves it came from this very input
    (size, mtime, sha256 of the first MiB) with these options."""
    record = record_path(clip, out_root, options)
    try:
        doc = json.loads(record.read_text())
        outputs = doc.get("outputs") or [str(clip.output(out_root, f)) for f in options.formats]
        return doc.get("provenance") == provenance(clip, options) and all(Path(o).is_file() for o in outputs)
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def record_path(clip: Clip, out_root: Path, options: LiftOptions) -> Path:
    """The file whose provenance proves a clip complete: its JSON result, else the sidecar."""
    return clip.output(out_root, RECORD_FORMAT) if record_format(options) else sidecar(clip, out_root)


def sidecar(clip: Clip, out_root: Path) -> Path:
    """Where the provenance goes when no JSON result is written (other formats only)."""
    return Path(out_root) / clip.rel.parent / f".{clip.rel.stem}.posecli.json"


def recorded_frames(clip: Clip, out_root: Path, options: LiftOptions) -> int | None:
    path = record_path(clip, out_root, options)
    try:
        doc = json.loads(path.read_text())
        return doc["input"]["num_frames"] if "input" in doc else doc.get("num_frames")
    except (OSError, ValueError, KeyError, TypeError):
        return None
