"""Read a posecli result JSON back into a :class:`LiftResult` (for ``posecli export``)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from posecli import skeleton, trajectory
from posecli.errors import PosecliError
from posecli.keypoints import MAX_FPS, MAX_SIZE, MIN_FPS, times_problem
from posecli.result import LiftResult


class ResultFileError(PosecliError):
    """The file is not a usable posecli result."""


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
    checked before use: a non-finite or impossible header number (fps, size, the world block)
    is a ResultFileError; a frame whose 2D, 3D or pelvis holds a NaN or infinity (files of
    older versions could) is read as ``missing``, like a frame without a person.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
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
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultFileError(f"{path}: not a JSON file ({e})") from None
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise ResultFileError(f"{path}: not a posecli result (missing or bad field {e})") from None
    if pose.shape != (len(frames), 17, 3) or kp.shape != (len(frames), 17, 2) or conf.shape != (len(frames), 17):
        raise ResultFileError(f"{path}: not a posecli result (frames without 17 joints)")
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS) or not (0 < width <= MAX_SIZE and 0 < height <= MAX_SIZE):
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
                      video=_video_fields(inp))


def _times(frames: list[dict]) -> np.ndarray | None:
    """(N,) per-frame times (presentation timestamps) when every frame has one, else None."""
    from posecli.keypoints import _times as times_of
    return times_of(frames)


def _video_fields(inp: dict) -> dict | None:
    """The video-reading fields of ``input`` (SAR, rotation, frames expected ...), kept as read."""
    keys = ("header_fps", "duration", "coded_size", "sample_aspect_ratio", "rotation", "timestamps",
            "frames_decoded", "frames_expected", "truncated")
    found = {k: inp[k] for k in keys if k in inp}
    return found or None
