"""Read a posecli result JSON back into a :class:`LiftResult` (for ``posecli export``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from posecli import skeleton, trajectory
from posecli.errors import PosecliError
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

    World joints are rebuilt as ``camera_to_world @ joints_3d + pelvis_world``.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        inp, frames = doc["input"], doc["frames"]
        if doc.get("format") != "posecli-result/1":
            raise KeyError("format")
        flags = np.array([f["flag"] for f in frames], dtype=object)
        seen = flags != skeleton.MISSING
        if not seen.any():
            raise ResultFileError(f"{path}: no frame has a person")
        nan17 = np.full((17, 3), np.nan)
        pose = np.array([f["joints_3d"] if f["joints_3d"] is not None else nan17 for f in frames], float)
        kp = np.array([f["keypoints_2d"] if f["keypoints_2d"] is not None else nan17[:, :2] for f in frames], float)
        conf = np.array([f["confidence"] for f in frames], float)
    except FileNotFoundError:
        raise ResultFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultFileError(f"{path}: not a JSON file ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise ResultFileError(f"{path}: not a posecli result (missing or bad field {e})") from None
    pose, kp = _hold(pose, seen), _hold(kp, seen)
    try:
        from posecli.keypoints import _world
        lm_world, lm_vis = _world(path, frames, seen)
    except PosecliError as e:
        raise ResultFileError(str(e)) from None
    traj = None
    world = doc.get("world")
    if world:
        rot = np.asarray(world["camera_to_world"], float)
        pelvis = _hold(np.array([f.get("pelvis_world") or [np.nan] * 3 for f in frames], float), seen)
        contacts = np.array([f.get("foot_contact") or [False, False] for f in frames], bool)
        traj = trajectory.Trajectory(
            world=pose @ rot.T + pelvis[:, None], contacts=contacts, rotation=rot,
            origin=np.asarray(world["origin_camera"], float),
            pelvis_camera=pelvis @ rot + np.asarray(world["origin_camera"], float),
            focal=float(world["focal_px"]), root_motion=bool(world["root_motion"]))
    return LiftResult(source=str(inp["path"]), kind=str(inp["kind"]), fps=float(inp["fps"]),
                      width=int(inp["width"]), height=int(inp["height"]), keypoints=kp, conf=conf,
                      flags=flags, pose3d=pose, lifter=doc.get("lifter") or {},
                      detector=doc.get("detector"), trajectory=traj, bones=doc.get("bones"),
                      quality=doc.get("quality"), times=_times(frames), timing=doc.get("timing"),
                      video=_video_fields(inp), landmarks_world=lm_world,
                      landmarks_visibility=lm_vis)


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
