"""Locate shipped model files and verify them against ``weights/manifest.json``.

The manifest maps a file name to its sha256 and provenance::

    {"files": {"pose_landmark_full.tflite": {"sha256": "...", "licence": "Apache-2.0", ...}}}

Files are looked up in, in order: an explicit path, ``$POSECLI_WEIGHTS``, the ``weights/``
folder of a source checkout, and the user cache (:func:`user_cache`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from posecli.errors import WeightsError  # re-exported: posecli.weights.WeightsError

REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
LIFTER = "lifter.pt"  # the shipped lifter checkpoint
FUSION = "fusion.npz"  # the shipped fusion of the lifter and BlazePose's world landmarks


def user_cache() -> Path:
    """The user cache folder for downloads and exports, read from the environment at each call.

    ``$POSECLI_CACHE``, else ``$XDG_CACHE_HOME/posecli``, else ``~/.cache/posecli``. An empty or
    relative ``XDG_CACHE_HOME`` is ignored, as the XDG base directory specification requires.
    The folder is not created here.
    """
    own = os.environ.get("POSECLI_CACHE")
    if own:
        return Path(own)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "posecli"


def search_dirs() -> list[Path]:
    env = os.environ.get("POSECLI_WEIGHTS")
    return ([Path(env)] if env else []) + [REPO_WEIGHTS, user_cache()]


def load_manifest() -> dict:
    """The merged ``files`` entries of every manifest found on the search path."""
    files: dict = {}
    for d in reversed(search_dirs()):
        m = d / "manifest.json"
        if m.is_file():
            files.update(json.loads(m.read_text())["files"])
    return files


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find(name: str) -> Path:
    """Path of the model file called ``name`` on the search path, or WeightsError."""
    for d in search_dirs():
        if (d / name).is_file():
            return d / name
    raise WeightsError(f"model file {name!r} not found in {', '.join(map(str, search_dirs()))}")


def read_verified(name_or_path: str | Path, expected: str | None = None) -> tuple[Path, bytes, str]:
    """Resolve a model file, read it once and check its sha256.

    A bare name is looked up with :func:`find` and checked against the manifest. A path is
    checked against ``expected`` when given, else against the manifest entry of its file
    name when there is one, else accepted as the user's own file.

    Returns (path, file contents, sha256 hex digest).
    """
    p = Path(name_or_path)
    path = p if (p.parent != Path(".") or p.is_file()) else find(str(p))
    if not path.is_file():
        raise WeightsError(f"model file {path} not found")
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if expected is None:
        expected = load_manifest().get(path.name, {}).get("sha256")
    if expected is not None and got != expected:
        raise WeightsError(
            f"{path}: checksum mismatch (sha256 {got[:12]}..., expected {expected[:12]}...); "
            "the file is corrupt or not the one shipped: re-download or re-clone it")
    return path, data, got


def verified(name_or_path: str | Path, expected: str | None = None) -> Path:
    """Path of a model file whose sha256 matches (see :func:`read_verified`)."""
    return read_verified(name_or_path, expected)[0]
