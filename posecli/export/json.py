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


def frame_records(result: LiftResult) -> Iterator[dict]:
    """One JSON record per frame, produced lazily. Missing frames carry null keypoints and joints."""
    flags = result.flags
    times = result.frame_times()
    traj = result.trajectory
    for i in range(result.num_frames):
        missing = flags[i] == skeleton.MISSING
        frame = {
            "index": i,
            "time": round(float(times[i]), 6),  # the frame's presentation time
            "flag": str(flags[i]),
            "keypoints_2d": None if missing else np.round(result.keypoints[i], 2).tolist(),
            "confidence": np.round(result.conf[i], 3).tolist(),
            "joints_3d": None if missing else np.round(result.pose3d[i], 5).tolist(),
        }
        out = [] if missing else outside_frame(result.keypoints[i], result.width, result.height)
        if out:
            frame["outside"] = out
        if result.landmarks_world is not None:  # BlazePose's own 3D, for lifting again
            w = result.landmarks_world[i]
            seen = not missing and bool(np.isfinite(w).all())
            frame["landmarks_world"] = np.round(w, 4).tolist() if seen else None
            if result.landmarks_visibility is not None:
                frame["landmarks_visibility"] = (
                    np.round(result.landmarks_visibility[i], 3).tolist() if seen else None)
        if traj is not None:  # world placement (estimated): see the top-level "world" block
            frame["pelvis_world"] = None if missing else np.round(traj.world[i, 0], 5).tolist()
            frame["foot_contact"] = None if missing else [bool(c) for c in traj.contacts[i]]
        yield frame


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
