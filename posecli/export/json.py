"""JSON: posecli's own result format (schema: ``posecli/schemas/result.schema.json``).

The same file can be read back as 2D input (``posecli lift result.json``; the reader is
:mod:`posecli.keypoints`).
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np

from posecli import skeleton
from posecli.files import atomic_path
from posecli.result import LiftResult

FORMAT = "posecli-result/1"
AXES_2D = "pixels; x right, y down, origin at the top-left corner of the frame"
AXES_3D = ("metres; camera frame, x right, y down, z forward (away from the camera); "
           "root-relative: the pelvis is at the origin in every frame")


def outside_frame(xy: np.ndarray, width: int, height: int) -> list[int]:
    """Indices of the joints of one frame, (J, 2) pixels, that lie outside the picture."""
    x, y = xy[:, 0], xy[:, 1]
    return np.flatnonzero((x < 0) | (x > width) | (y < 0) | (y > height)).tolist()


def frame_record(index: int, time: float, flag: str, keypoints: np.ndarray, conf: np.ndarray,
                 pose3d: np.ndarray, width: int, height: int, pelvis_world: np.ndarray | None = None,
                 contact: np.ndarray | None = None, placed: bool = True,
                 extra: dict | None = None) -> dict:
    """The JSON record of one frame (``posecli lift``'s ``frames[i]``, ``posecli live``'s line).

    keypoints (17, 2) px, conf (17,), pose3d (17, 3) m; pelvis_world (3,) m and contact (2,)
    bool when ``placed`` (a world placement exists); ``extra``: more fields, before the
    placement. Missing frames carry null keypoints, joints and placement.
    """
    missing = flag == skeleton.MISSING
    frame = {
        "index": int(index),
        "time": round(float(time), 6),  # the frame's presentation time
        "flag": str(flag),
        "keypoints_2d": None if missing else np.round(keypoints, 2).tolist(),
        "confidence": np.round(conf, 3).tolist(),
        "joints_3d": None if missing else np.round(pose3d, 5).tolist(),
    }
    out = [] if missing else outside_frame(keypoints, width, height)
    if out:
        frame["outside"] = out
    frame.update(extra or {})
    if placed:  # world placement (estimated): see the top-level "world" block
        frame["pelvis_world"] = None if missing else np.round(pelvis_world, 5).tolist()
        frame["foot_contact"] = None if missing else [bool(c) for c in contact]
    return frame


def frame_records(result: LiftResult) -> Iterator[dict]:
    """One JSON record per frame, produced lazily. Missing frames carry null keypoints and joints."""
    times = result.frame_times()
    traj = result.trajectory
    for i in range(result.num_frames):
        extra = None
        if result.landmarks_world is not None:  # BlazePose's own 3D, for lifting again
            w = result.landmarks_world[i]
            seen = result.flags[i] != skeleton.MISSING and bool(np.isfinite(w).all())
            extra = {"landmarks_world": np.round(w, 4).tolist() if seen else None}
            if result.landmarks_visibility is not None:
                extra["landmarks_visibility"] = (
                    np.round(result.landmarks_visibility[i], 3).tolist() if seen else None)
        yield frame_record(i, times[i], result.flags[i], result.keypoints[i], result.conf[i],
                           result.pose3d[i], result.width, result.height,
                           None if traj is None else traj.world[i, 0],
                           None if traj is None else traj.contacts[i], placed=traj is not None,
                           extra=extra)


def to_dict(result: LiftResult, frames: bool = True) -> dict:
    """The JSON document for a result (``frames=False``: with an empty ``frames`` list, last)."""
    flags = result.flags
    traj = result.trajectory
    counts = {f: int((flags == f).sum()) for f in (skeleton.DETECTED, skeleton.INTERPOLATED, skeleton.MISSING)}
    inp = {"path": result.source, "kind": result.kind, "fps": round(result.fps, 6),
           "width": result.width, "height": result.height, "num_frames": result.num_frames}
    doc = {
        "format": FORMAT,
        "posecli_version": result.version,
        "input": {**inp, **(result.video or {})},
        "timing": result.timing,
        "detector": result.detector,
        "lifter": result.lifter,
        "skeleton": {"layout": "h36m17", "joints": list(skeleton.JOINTS),
                     "parents": list(skeleton.PARENTS)},
        "units": {"keypoints_2d": "pixels", "joints_3d": "metres", "time": "seconds",
                  "pelvis_world": "metres"},
        "axes": {"keypoints_2d": AXES_2D, "joints_3d": AXES_3D},
        "world": traj.info() if traj is not None else None,
        "bones": result.bones,
        "quality": result.quality,
        "summary": counts,
    }
    if result.provenance is not None:
        doc["provenance"] = result.provenance
    doc["frames"] = list(frame_records(result)) if frames else []  # last: write() streams them
    return doc


def write(result: LiftResult, path: str | Path) -> None:
    """Write ``result`` as JSON, atomically, one frame record at a time (memory stays flat).

    Strict JSON (``allow_nan=False``): a NaN or Infinity is a bug upstream, never a token here.
    """
    dump = lambda obj: json.dumps(obj, separators=(",", ":"), allow_nan=False)  # noqa: E731
    head = dump(to_dict(result, frames=False))
    if not head.endswith('"frames":[]}'):  # to_dict puts the frames last
        raise RuntimeError("the frames must be the last key of the result document")
    with atomic_path(path) as tmp, tmp.open("w") as f:
        f.write(head[:-2])
        for i, rec in enumerate(frame_records(result)):
            f.write(("," if i else "") + dump(rec))
        f.write("]}")


def schema(name: str = "result") -> dict:
    """The JSON Schema of the result (``"result"``) or keypoint-input (``"keypoints"``) format."""
    text = resources.files("posecli").joinpath(f"schemas/{name}.schema.json").read_text()
    return json.loads(text)
