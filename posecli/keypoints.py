"""posecli's JSON read back, in one place: a keypoint file (or a result) as 2D input for
lifting (:func:`read_keypoints`), and a whole result for ``posecli export``
(:func:`read_result`).

A minimal hand-made keypoint file needs just ``input`` (fps, width, height), ``skeleton.layout``
(``h36m17``, ``blazepose33`` or ``coco17``) and per frame ``keypoints_2d`` (null when nobody was seen) with
optional ``confidence``; see ``posecli/schemas/keypoints.schema.json``. Only the 2D part of a
posecli result is used, with BlazePose's world landmarks when the file has them (optional per
frame ``landmarks_world``, 33 x [x, y, z] metres, and ``landmarks_visibility``, 33 numbers).
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
    #: (N, 33, 3) BlazePose's world landmarks (metres, hip-centred, x right, y down, z away from
    #: the camera), NaN where a frame has none; None when no frame has them
    world: np.ndarray | None = None
    visibility: np.ndarray | None = None  # (N, 33) in [0, 1] with ``world``


class ResultFileError(KeypointFileError):
    """The file is not a usable posecli result."""


def _load(path: Path, error: type[KeypointFileError], what: str) -> dict:
    """The parsed JSON document of ``path``; ``error`` (one line) when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{path}: not a JSON {what}({e})") from None


def read_keypoints(path: str | Path) -> Keypoints2D:
    """Read a keypoint file (or a posecli result) as 2D input for the lifter."""
    path = Path(path)
    doc = _load(path, KeypointFileError, "keypoint file ")
    try:
        inp, layout, frames = doc["input"], doc["skeleton"]["layout"], doc["frames"]
        width, height, fps = int(inp["width"]), int(inp["height"]), float(inp["fps"])
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
    world, vis = _world(path, frames, valid)
    return Keypoints2D(xy, conf, valid, layout, width, height, fps, times, world, vis)


def _world(path: Path, frames: list[dict], valid: np.ndarray
           ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The optional per-frame ``landmarks_world`` (33 x [x, y, z]) and ``landmarks_visibility``
    (33) -> (N, 33, 3) NaN where absent, (N, 33) 0 where absent; (None, None) when no frame has
    them. A malformed entry is a KeypointFileError."""
    if not any(f.get("landmarks_world") is not None for f in frames):
        return None, None
    k = skeleton.BLAZEPOSE33.joints
    world = np.full((len(frames), k, 3), np.nan)
    vis = np.zeros((len(frames), k))
    for i, f in enumerate(frames):
        w = f.get("landmarks_world")
        if w is None or not valid[i]:
            continue
        if not (isinstance(w, list) and len(w) == k and all(
                isinstance(p, list) and len(p) == 3 for p in w)):
            raise KeypointFileError(f"{path}: frame {i} has malformed landmarks_world "
                                    f"(expected {k} [x, y, z] triples)")
        world[i] = [[v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan
                     for v in p] for p in w]
        v = f.get("landmarks_visibility")
        got = np.ones(k) if v is None else _numbers(v, k)
        if got is None:
            raise KeypointFileError(f"{path}: frame {i} has malformed landmarks_visibility "
                                    f"(expected {k} numbers)")
        vis[i] = np.clip(got, 0, 1)
    return world, vis


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


def _hold(a: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(N, ...) with rows where ``seen`` is False replaced by the nearest seen row."""
    idx = np.arange(len(a))
    s = idx[seen]
    near = np.searchsorted(s, idx).clip(0, len(s) - 1)
    prev = (near - 1).clip(0)
    pick = np.where(np.abs(s[prev] - idx) < np.abs(s[near] - idx), s[prev], s[near])
    return a[pick]


def read_result(path: str | Path) -> LiftResult:
    """A posecli result file -> LiftResult with its 3D, 2D and (if present) world placement.

    World joints are rebuilt as ``camera_to_world @ joints_3d + pelvis_world``. Numbers are
    checked before use: a non-finite or impossible header number (fps, size, frame times, the
    world block) is a ResultFileError; a frame whose 2D, 3D or pelvis holds a NaN or infinity
    (files of older versions could) is read as ``missing``, like a frame without a person.
    """
    import math

    from posecli import trajectory
    from posecli.result import LiftResult

    path = Path(path)
    doc = _load(path, ResultFileError, "file ")
    try:
        inp, frames = doc["input"], doc["frames"]
        if doc.get("format") != "posecli-result/1":
            raise KeyError("format")
        flags = np.array([f["flag"] for f in frames], dtype=object)
        nan17 = np.full((17, 3), np.nan)
        pose = np.array([f["joints_3d"] if f["joints_3d"] is not None else nan17 for f in frames], float)
        kp = np.array([f["keypoints_2d"] if f["keypoints_2d"] is not None else nan17[:, :2] for f in frames], float)
        conf = np.nan_to_num(np.array([f["confidence"] for f in frames], float), nan=0.0).clip(0, 1)
        world = doc.get("world")
        pelvis = np.array([f.get("pelvis_world") or [np.nan] * 3 for f in frames], float) if world else None
        fps, width, height = float(inp["fps"]), int(inp["width"]), int(inp["height"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ResultFileError(f"{path}: not a posecli result (missing or bad field {e})") from None
    if pose.shape != (len(frames), 17, 3) or kp.shape != (len(frames), 17, 2) or conf.shape != (len(frames), 17):
        raise ResultFileError(f"{path}: not a posecli result (frames without 17 joints)")
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS and 0 < width <= MAX_SIZE and 0 < height <= MAX_SIZE):
        raise ResultFileError(f"{path}: fps, width and height must be positive numbers (fps "
                              f"{MIN_FPS:g}-{MAX_FPS:g}, sizes up to {MAX_SIZE} px); got {fps}, {width}, {height}")
    times = _times(frames)
    if times is not None and (problem := times_problem(times)):
        raise ResultFileError(f"{path}: {problem}")
    finite = np.isfinite(pose).all((1, 2)) & np.isfinite(kp).all((1, 2))
    if pelvis is not None:
        finite &= np.isfinite(pelvis).all(1)
    flags[~finite] = skeleton.MISSING  # a NaN is no measurement: the frame is a gap
    seen = flags != skeleton.MISSING
    if not seen.any():
        raise ResultFileError(f"{path}: no frame has a person")
    pose, kp = _hold(pose, seen), _hold(kp, seen)
    try:
        lm_world, lm_vis = _world(path, frames, seen)
    except KeypointFileError as e:
        raise ResultFileError(str(e)) from None
    traj = None
    if world:
        try:
            rot = np.asarray(world["camera_to_world"], float)
            origin = np.asarray(world["origin_camera"], float)
            focal = float(world["focal_px"])
        except (KeyError, TypeError, ValueError) as e:
            raise ResultFileError(f"{path}: not a posecli result (missing or bad field {e})") from None
        if rot.shape != (3, 3) or origin.shape != (3,) or not (
                np.isfinite(rot).all() and np.isfinite(origin).all() and math.isfinite(focal)):
            raise ResultFileError(f"{path}: the world block holds a non-finite or malformed number")
        pelvis = _hold(pelvis, seen)
        contacts = np.array([f.get("foot_contact") or [False, False] for f in frames], bool)
        traj = trajectory.Trajectory(
            world=pose @ rot.T + pelvis[:, None], contacts=contacts, rotation=rot,
            origin=origin, pelvis_camera=pelvis @ rot + origin,
            focal=focal, root_motion=bool(world["root_motion"]))
    return LiftResult(source=str(inp["path"]), kind=str(inp["kind"]), fps=fps,
                      width=width, height=height, keypoints=kp, conf=conf,
                      flags=flags, pose3d=pose, lifter=doc.get("lifter") or {},
                      detector=doc.get("detector"), trajectory=traj, bones=doc.get("bones"),
                      quality=doc.get("quality"), times=times, timing=doc.get("timing"),
                      video=_video_fields(inp), landmarks_world=lm_world,
                      landmarks_visibility=lm_vis)


def _video_fields(inp: dict) -> dict | None:
    """The video-reading fields of ``input`` (SAR, rotation, frames expected ...), kept as read."""
    keys = ("header_fps", "duration", "coded_size", "sample_aspect_ratio", "rotation", "timestamps",
            "frames_decoded", "frames_expected", "truncated")
    found = {k: inp[k] for k in keys if k in inp}
    return found or None
