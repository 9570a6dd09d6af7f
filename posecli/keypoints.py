"""2D keypoint files as input: a posecli result or a hand-made file, read for lifting.

A minimal hand-made keypoint file needs just ``input`` (fps, width, height), ``skeleton.layout``
(``h36m17``, ``blazepose33`` or ``coco17``) and per frame ``keypoints_2d`` (null when nobody was seen) with
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

# numbers a keypoint or result file may hold (beyond them a file is a mistake, and would fail
# late: fps 1e-9 asked for a 27.9 TiB resampling grid)
MIN_FPS, MAX_FPS = 1.0, 1000.0    # time-lapse .. high-speed phone modes (960 fps)
MAX_SIZE = 65536                  # pixels on a side


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
    times: np.ndarray | None = None  # (N,) s when every frame gives its ``time``


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
    except OverflowError:
        raise KeypointFileError(f"{path}: width and height must be numbers of pixels") from None
    if not isinstance(frames, list):
        raise KeypointFileError(f"{path}: 'frames' must be a list, not {type(frames).__name__}")
    if not frames:
        raise KeypointFileError(f"{path}: the file has zero frames")
    if not (np.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS and 0 < width <= MAX_SIZE and 0 < height <= MAX_SIZE):
        raise KeypointFileError(f"{path}: width, height and fps must be positive numbers (fps "
                                f"{MIN_FPS:g}-{MAX_FPS:g}, sizes up to {MAX_SIZE} px); got {width}, {height}, {fps}")
    for i, f in enumerate(frames):
        if not isinstance(f, dict):
            raise KeypointFileError(f"{path}: frame {i} is {type(f).__name__}, not an object")
    k = next((len(f["keypoints_2d"]) for f in frames if isinstance(f.get("keypoints_2d"), list)
              and f["keypoints_2d"]), None)
    if k is None:
        raise KeypointFileError(f"{path}: no frame has keypoints (no person anywhere)")
    known = {"h36m17": 17, **{n: skeleton.LAYOUTS[n].joints for n in skeleton.TO_H36M}}
    expected_k = known.get(layout)
    if expected_k is None:
        raise KeypointFileError(f"{path}: unsupported layout {layout!r} ({', '.join(known)})")
    if k != expected_k:
        raise KeypointFileError(f"{path}: layout {layout} has {expected_k} keypoints, the file has {k}")
    n = len(frames)
    xy = np.full((n, k, 2), np.nan)
    conf = np.zeros((n, k))
    valid = np.zeros(n, bool)
    for i, f in enumerate(frames):
        if f.get("keypoints_2d") is None or f.get("flag") == skeleton.MISSING:
            continue
        pts = _points(f["keypoints_2d"], k)
        if pts is None:
            raise KeypointFileError(f"{path}: frame {i} has malformed keypoints_2d (expected {k} [x, y] pairs)")
        c = 1.0 if f.get("confidence") is None else _numbers(f["confidence"], k)
        if c is None:
            raise KeypointFileError(f"{path}: frame {i} has malformed confidence (expected {k} numbers)")
        xy[i], conf[i], valid[i] = pts, c, True
    times = _times(frames)
    if times is not None and (problem := times_problem(times)):
        raise KeypointFileError(f"{path}: {problem}")
    return Keypoints2D(xy, conf, valid, layout, width, height, fps, times)


def times_problem(times: np.ndarray) -> str | None:
    """Why (N,) frame times in seconds cannot be a clip's, or None: on average they must run at
    MIN_FPS..MAX_FPS (a frame ``time`` in milliseconds, or one wild value, fails here)."""
    if len(times) < 2:
        return None
    span = float(times[-1] - times[0])
    rate = (len(times) - 1) / span if span > 0 else np.inf
    if not MIN_FPS <= rate <= MAX_FPS:
        return (f"frame times span {span:g} s for {len(times)} frames ({rate:.3g} frames per second "
                f"on average); a frame's time is in seconds, at {MIN_FPS:g}-{MAX_FPS:g} fps")
    return None


def _points(value, k: int) -> np.ndarray | None:
    """A frame's keypoints -> (k, 2) floats, NaN for a null or non-numeric joint; None if malformed."""
    if not isinstance(value, list) or len(value) != k:
        return None
    out = np.full((k, 2), np.nan)
    for j, p in enumerate(value):
        if p is None:
            continue  # an unseen joint: a gap, filled later
        if not isinstance(p, list) or len(p) != 2:
            return None
        out[j] = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in p]
    return out


def _numbers(value, k: int) -> np.ndarray | None:
    """A list of k numbers (null -> 0) as floats, or None when it is not one."""
    if not isinstance(value, list) or len(value) != k:
        return None
    return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0
                     for v in value], dtype=float)


def _times(frames: list[dict]) -> np.ndarray | None:
    """(N,) per-frame ``time`` when every frame has a finite, non-decreasing one; else None."""
    t = [f.get("time") for f in frames]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in t):
        return None
    arr = np.asarray(t, dtype=float)
    if not np.isfinite(arr).all() or (len(arr) > 1 and (np.diff(arr) < 0).any()):
        return None
    return arr
