"""CSV: one row per frame with joint angles in degrees and the world joint positions, for
spreadsheets and analysis scripts.

Columns (also in the README): ``frame`` (the JSON's index, from 0), ``time`` (s, the frame's
presentation time), ``flag`` (detected / interpolated / missing), then the angles of
:data:`ANGLES` (``<name>_deg``), then ``<joint>_x_m, <joint>_y_m, <joint>_z_m`` for the 17 joints
in the world frame (metres, Y up, floor at Y = 0). A ``missing`` frame has empty cells after its
flag, never zeros.

Angles (degrees), from the world joints:
- ``knee_flexion``: 180 minus the angle at the knee between thigh and shank; 0 = straight leg.
- ``elbow_flexion``: the same at the elbow; 0 = straight arm.
- ``hip_flexion``: the thigh's angle from the trunk's downward axis in the body's sagittal plane
  (trunk axis pelvis -> thorax, plane normal = the hip line); positive with the knee in front,
  negative behind (extension); 0 standing, 90 thigh horizontal to the front.
- ``shoulder_elevation``: the angle between the upper arm and the trunk's downward axis
  (thorax -> pelvis), in any plane: 0 arm hanging, 90 horizontal, 180 overhead.
- ``trunk_lean``: the angle of the trunk axis (pelvis -> thorax) from the world vertical;
  ``trunk_lean_forward``: its part in the body's facing direction (positive bending forward).
``_r`` / ``_l``: the person's right / left side.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from posecli import skeleton
from posecli.files import atomic_path
from posecli.result import LiftResult

# H36M joint indices
PELVIS, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = 0, 1, 2, 3, 4, 5, 6
THORAX, L_SHOULDER, L_ELBOW, L_WRIST, R_SHOULDER, R_ELBOW, R_WRIST = 8, 11, 12, 13, 14, 15, 16

ANGLES = ("knee_flexion_r", "knee_flexion_l", "hip_flexion_r", "hip_flexion_l",
          "elbow_flexion_r", "elbow_flexion_l", "shoulder_elevation_r", "shoulder_elevation_l",
          "trunk_lean", "trunk_lean_forward")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between (..., 3) vectors (atan2: exact near 0 and 180, where arccos is not)."""
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), (a * b).sum(-1)))


def flexion(p: np.ndarray, a: int, b: int, c: int) -> np.ndarray:
    """(N,) degrees: 180 minus the angle at joint b of a -> b -> c; 0 when straight."""
    return 180.0 - _angle(p[:, a] - p[:, b], p[:, c] - p[:, b])


def joint_angles(p: np.ndarray) -> np.ndarray:
    """(N, 17, 3) world joints, metres, Y up -> (N, len(ANGLES)) degrees (definitions above)."""
    up = _unit(p[:, THORAX] - p[:, PELVIS])
    left = p[:, L_HIP] - p[:, R_HIP]
    forward = _unit(np.cross(left, up))  # left x up: the facing direction (BVH rest: X x Y = Z)

    def hip(h: int) -> np.ndarray:
        thigh = p[:, h + 1] - p[:, h]
        return np.degrees(np.arctan2((thigh * forward).sum(-1), -(thigh * up).sum(-1)))

    vertical = np.array([0.0, 1.0, 0.0])
    flat_forward = _unit(forward - forward[:, 1:2] * vertical)
    lean = _angle(up, vertical)
    lean_fwd = np.degrees(np.arctan2((up * flat_forward).sum(-1), up[:, 1]))
    cols = [flexion(p, R_HIP, R_KNEE, R_ANKLE), flexion(p, L_HIP, L_KNEE, L_ANKLE),
            hip(R_HIP), hip(L_HIP),
            flexion(p, R_SHOULDER, R_ELBOW, R_WRIST), flexion(p, L_SHOULDER, L_ELBOW, L_WRIST),
            _angle(p[:, R_ELBOW] - p[:, R_SHOULDER], -up), _angle(p[:, L_ELBOW] - p[:, L_SHOULDER], -up),
            lean, lean_fwd]
    return np.stack(cols, axis=-1)


def header() -> list[str]:
    """The column names."""
    pos = [f"{j}_{a}_m" for j in skeleton.JOINTS for a in "xyz"]
    return ["frame", "time", "flag"] + [f"{a}_deg" for a in ANGLES] + pos


def to_text(world: np.ndarray, times: np.ndarray, flags: np.ndarray) -> str:
    """The CSV file: world (N, 17, 3) metres Y up, times (N,) s, flags (N,) strings."""
    angles = joint_angles(world)
    buf = io.StringIO()
    buf.write(",".join(header()) + "\n")
    empty = "," * (angles.shape[1] + world.shape[1] * 3 - 1)
    for i in range(len(world)):
        buf.write(f"{i},{times[i]:.6f},{flags[i]},")
        if flags[i] == skeleton.MISSING:
            buf.write(empty + "\n")
            continue
        buf.write(",".join(f"{v:.2f}" for v in angles[i]) + ",")
        buf.write(",".join(f"{v:.5f}" for v in world[i].ravel()) + "\n")
    return buf.getvalue()


def write(result: LiftResult, path: str | Path) -> None:
    """Write ``result`` as CSV (angles and world joints per frame), atomically."""
    text = to_text(result.world_joints(), result.frame_times(), np.asarray(result.flags))
    with atomic_path(path) as tmp:
        tmp.write_text(text)
