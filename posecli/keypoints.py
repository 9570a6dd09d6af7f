"""2D keypoint files as input: a posecli result or a hand-made file, read for lifting.

A minimal hand-made keypoint file needs just ``input`` (fps, width, height), ``skeleton.layout``
(``h36m17`` or ``blazepose33``) and per frame ``keypoints_2d`` (null when nobody was seen) with
optional ``confidence``; see ``posecli/schemas/keypoints.schema.json``. Only the 2D part of a
posecli result is used.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli import skeleton
from posecli.errors import KeypointFileError


@dataclass
class Keypoints2D:
    """A 2D track read from a keypoint file. xy (N, K, 2) px (NaN where unseen), conf (N, K)."""
    xy: np.ndarray
    conf: np.ndarray
    valid: np.ndarray  # (N,) bool
    layout: str
    width: int
    height: int
    fps: float


def read_keypoints(path: str | Path) -> Keypoints2D:
    """Read a keypoint file (or a posecli result) as 2D input for the lifter."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        inp, layout, frames = doc["input"], doc["skeleton"]["layout"], doc["frames"]
        width, height, fps = int(inp["width"]), int(inp["height"]), float(inp["fps"])
    except FileNotFoundError:
        raise KeypointFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeypointFileError(f"{path}: not a JSON keypoint file ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise KeypointFileError(f"{path}: not a posecli keypoint file (missing or bad field {e})") from None
    if not frames:
        raise KeypointFileError(f"{path}: the file has zero frames")
    k = next((len(f["keypoints_2d"]) for f in frames if f.get("keypoints_2d")), None)
    if k is None:
        raise KeypointFileError(f"{path}: no frame has keypoints (no person anywhere)")
    n = len(frames)
    xy = np.full((n, k, 2), np.nan)
    conf = np.zeros((n, k))
    valid = np.zeros(n, bool)
    for i, f in enumerate(frames):
        if f.get("keypoints_2d") is None or f.get("flag") == skeleton.MISSING:
            continue
        try:
            pts = np.asarray(f["keypoints_2d"], dtype=float)
        except (TypeError, ValueError):
            raise KeypointFileError(f"{path}: frame {i} has keypoints that are not numbers") from None
        if pts.shape != (k, 2):
            raise KeypointFileError(f"{path}: frame {i} has keypoints of shape {pts.shape}, expected ({k}, 2)")
        if not np.isfinite(pts).all():  # json.loads accepts NaN and Infinity: refuse, never lift them
            raise KeypointFileError(f"{path}: frame {i} has keypoints that are not finite numbers")
        xy[i], valid[i] = pts, True
        conf[i] = f["confidence"] if f.get("confidence") is not None else 1.0
    if width <= 0 or height <= 0 or fps <= 0:
        raise KeypointFileError(f"{path}: width, height and fps must be positive")
    return Keypoints2D(xy, conf, valid, layout, width, height, fps)
