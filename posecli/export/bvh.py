"""BVH: a skeleton in the Human3.6M hierarchy with per-frame local rotations, for animation
software (Blender, Maya, MotionBuilder, Unity; checked with Blender's own importer).

Conventions (also in the README):
- axes: Y up, X = the person's left in the rest pose, Z = the direction the rest pose faces
  (towards the camera); the posecli world frame (:mod:`posecli.trajectory`): floor at Y = 0;
- units: metres times ``scale`` (default 1: metres; ``--bvh-scale 100`` writes centimetres);
- rest pose: a T-pose facing +Z, legs down -Y, arms along +-X;
- every joint has ``CHANNELS 3 Zrotation Xrotation Yrotation`` (the root adds X/Y/Zposition
  first): intrinsic Z then X then Y, i.e. the local rotation matrix is Rz @ Rx @ Ry, degrees;
- the root's OFFSET is 0 0 0 and its position channels carry the world pelvis (the estimated
  trajectory, or a fixed point with ``--no-root-motion``);
- four zero-length joints, ``Spine`` (at the pelvis), ``Neck``, ``LeftShoulder`` and
  ``RightShoulder`` (at the thorax, the clavicles' roots as in Mixamo rigs), let the lower
  back, the neck and each clavicle turn on their own, so forward kinematics reproduces every
  exported joint exactly.

Rotations: every joint's global rotation maps a rest frame to the current one, both built
from the bone to its child (swing) and a twist reference: the hip line for the pelvis and the
lower back, the shoulder line for the upper back, thorax, neck and head, the trunk axis for
the clavicles, the knee's (elbow's)
bending plane for the leg (arm), falling back to the hip line (the trunk axis) when the limb is
straight. Euler angles are unwrapped frame to frame (the equivalent solution nearest to the
previous frame), so no 180-degree flips.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli import skeleton
from posecli.errors import PosecliError
from posecli.files import atomic_path
from posecli.result import LiftResult

ORDER = "ZXY"  # channel order written for every joint; matrix = Rz @ Rx @ Ry

X, Y, Z = np.eye(3)


@dataclass(frozen=True)
class Joint:
    name: str
    h36m: int | None      # H36M joint at this BVH joint (None: zero-length branch joint)
    parent: int           # index into JOINTS (-1 for the root)
    end: tuple | None     # End Site offset (metres, rest frame) for leaves


# BVH joints in file order (depth first); parents come first.
JOINTS: tuple[Joint, ...] = (
    Joint("Hips", 0, -1, None),
    Joint("RightUpLeg", 1, 0, None),
    Joint("RightLeg", 2, 1, None),
    Joint("RightFoot", 3, 2, (0.0, 0.0, 0.1)),
    Joint("LeftUpLeg", 4, 0, None),
    Joint("LeftLeg", 5, 4, None),
    Joint("LeftFoot", 6, 5, (0.0, 0.0, 0.1)),
    Joint("Spine", None, 0, None),
    Joint("Spine1", 7, 7, None),
    Joint("Spine2", 8, 8, None),
    Joint("Neck", None, 9, None),
    Joint("Head", 9, 10, None),
    Joint("HeadTop", 10, 11, (0.0, 0.05, 0.0)),
    Joint("LeftShoulder", None, 9, None),
    Joint("LeftArm", 11, 13, None),
    Joint("LeftForeArm", 12, 14, None),
    Joint("LeftHand", 13, 15, (0.05, 0.0, 0.0)),
    Joint("RightShoulder", None, 9, None),
    Joint("RightArm", 14, 17, None),
    Joint("RightForeArm", 15, 18, None),
    Joint("RightHand", 16, 19, (-0.05, 0.0, 0.0)),
)
H36M_TO_BVH = {j.h36m: i for i, j in enumerate(JOINTS) if j.h36m is not None}

# Rest direction of each H36M bone (child joint -> unit vector from its parent).
_REST_DIR = {1: -X, 2: -Y, 3: -Y, 4: X, 5: -Y, 6: -Y, 7: Y, 8: Y, 9: Y, 10: Y,
             11: X, 12: X, 13: X, 14: -X, 15: -X, 16: -X}


def rest_offsets(lengths: np.ndarray) -> np.ndarray:
    """(16,) bone lengths (metres, bone j ends at H36M joint j) -> (len(JOINTS), 3) OFFSETs."""
    off = np.zeros((len(JOINTS), 3))
    for i, j in enumerate(JOINTS):
        if j.h36m not in (None, 0):
            off[i] = _REST_DIR[j.h36m] * lengths[j.h36m - 1]
    return off


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frame(primary: np.ndarray, secondary: np.ndarray, order: tuple[int, int]) -> np.ndarray:
    """(..., 3) x2 -> (..., 3, 3) orthonormal basis, columns = axes; ``primary`` is exact and
    becomes axis order[0], the part of ``secondary`` orthogonal to it axis order[1]."""
    a = _unit(primary)
    b = _unit(secondary - (secondary * a).sum(-1, keepdims=True) * a)
    axes = [None, None, None]
    axes[order[0]], axes[order[1]] = a, b
    k = 3 - order[0] - order[1]
    # right-handed: x = y cross z, y = z cross x, z = x cross y
    axes[k] = np.cross(axes[(k + 1) % 3], axes[(k + 2) % 3])
    return np.stack(axes, axis=-1)


def global_rotations(p: np.ndarray) -> np.ndarray:
    """World joints -> per-frame global rotation of every BVH joint.

    Args:
        p: (N, 17, 3) world metres, rigid skeleton with pelvis = mid-hips
           (:func:`posecli.trajectory.symmetric_hips`).
    Returns:
        (N, len(JOINTS), 3, 3) rotations from the rest pose (columns: rotated rest axes).
    """
    n = len(p)
    hips = p[:, 4] - p[:, 1]            # right hip -> left hip: rest +X
    shoulders = p[:, 11] - p[:, 14]     # rest +X
    trunk_up = p[:, 9] - p[:, 8]        # thorax -> skull base: rest +Y
    g = np.zeros((n, len(JOINTS), 3, 3))

    def limb(a: int, b: int, c: int, fallback: np.ndarray) -> np.ndarray:
        """Bending-plane normal of a -> b -> c, blended with a fallback where straight."""
        return np.cross(_unit(p[:, b] - p[:, a]), _unit(p[:, c] - p[:, b])) + 0.1 * _unit(fallback)

    for i, j in enumerate(JOINTS):
        h = j.h36m
        if j.name == "Hips":
            g[:, i] = _frame(hips, p[:, 7] - p[:, 0], (0, 1))
        elif j.name == "Spine":
            g[:, i] = _frame(p[:, 7] - p[:, 0], hips, (1, 0))
        elif j.name == "Spine1":
            g[:, i] = _frame(p[:, 8] - p[:, 7], shoulders, (1, 0))
        elif j.name == "Spine2":
            g[:, i] = _frame(shoulders, trunk_up, (0, 1))
        elif j.name == "LeftShoulder":  # clavicle thorax -> left shoulder: rest +X
            g[:, i] = _frame(p[:, 11] - p[:, 8], trunk_up, (0, 1))
        elif j.name == "RightShoulder":  # rest -X
            g[:, i] = _frame(-(p[:, 14] - p[:, 8]), trunk_up, (0, 1))
        elif j.name == "Neck":
            g[:, i] = _frame(trunk_up, shoulders, (1, 0))
        elif j.name == "Head":
            g[:, i] = _frame(p[:, 10] - p[:, 9], shoulders, (1, 0))
        elif h in (1, 2, 4, 5):  # thighs and shins: swing -Y, twist from the knee's plane
            hip = 1 if h in (1, 2) else 4
            hinge = limb(hip, hip + 1, hip + 2, hips)
            g[:, i] = _frame(-(p[:, h + 1] - p[:, h]), hinge, (1, 0))
        elif h in (11, 12):  # left arm: swing +X, elbow plane normal is -Y at rest
            hinge = limb(11, 12, 13, -trunk_up)
            g[:, i] = _frame(p[:, h + 1] - p[:, h], -hinge, (0, 1))
        elif h in (14, 15):  # right arm: swing -X, elbow plane normal +Y at rest
            hinge = limb(14, 15, 16, trunk_up)
            g[:, i] = _frame(-(p[:, h + 1] - p[:, h]), hinge, (0, 1))
        else:  # leaves (feet, hands, head top): no child bone, no rotation of their own
            g[:, i] = g[:, j.parent]
    return g


def local_rotations(g: np.ndarray) -> np.ndarray:
    """(N, J, 3, 3) global -> local rotations (parent^T @ own; the root's is its global)."""
    loc = g.copy()
    for i, j in enumerate(JOINTS):
        if j.parent >= 0:
            loc[:, i] = np.swapaxes(g[:, j.parent], -1, -2) @ g[:, i]
    return loc


def euler_zxy(r: np.ndarray) -> np.ndarray:
    """(N, ..., 3, 3) rotation matrices -> (N, ..., 3) angles (z, x, y) in radians with
    ``r == Rz(z) @ Rx(x) @ Ry(y)``, continuous along N (each frame takes the equivalent
    solution, including 2 pi shifts, nearest to the previous frame)."""
    sx = np.clip(r[..., 2, 1], -1.0, 1.0)
    x = np.arcsin(sx)
    z = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    y = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    lock = np.cos(x) < 1e-6  # gimbal lock: only z + y (or z - y) is defined; put it all in z
    y = np.where(lock, 0.0, y)
    z = np.where(lock, np.arctan2(r[..., 1, 0], r[..., 0, 0]), z)
    a = np.stack([z, x, y], axis=-1)
    alt = np.stack([z + np.pi, np.pi - x, y + np.pi], axis=-1)  # the same rotation
    out = a.copy()
    two_pi = 2 * np.pi
    for i in range(1, len(a)):
        prev = out[i - 1]
        c1 = a[i] + two_pi * np.round((prev - a[i]) / two_pi)
        c2 = alt[i] + two_pi * np.round((prev - alt[i]) / two_pi)
        better = np.abs(c2 - prev).sum(-1, keepdims=True) < np.abs(c1 - prev).sum(-1, keepdims=True)
        out[i] = np.where(better, c2, c1)
    return out


def rotation_zxy(a: np.ndarray) -> np.ndarray:
    """(..., 3) angles (z, x, y) radians -> (..., 3, 3) Rz @ Rx @ Ry."""
    z, x, y = np.moveaxis(a, -1, 0)
    o, l = np.zeros_like(z), np.ones_like(z)
    rz = np.stack([np.cos(z), -np.sin(z), o, np.sin(z), np.cos(z), o, o, o, l], -1).reshape(z.shape + (3, 3))
    rx = np.stack([l, o, o, o, np.cos(x), -np.sin(x), o, np.sin(x), np.cos(x)], -1).reshape(z.shape + (3, 3))
    ry = np.stack([np.cos(y), o, np.sin(y), o, l, o, -np.sin(y), o, np.cos(y)], -1).reshape(z.shape + (3, 3))
    return rz @ rx @ ry


def forward_kinematics(root: np.ndarray, angles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """BVH forward kinematics.

    Args:
        root: (N, 3) root positions; angles: (N, J, 3) (z, x, y) radians per BVH joint;
        offsets: (J, 3) rest offsets.
    Returns:
        (N, J, 3) joint positions (same units as root / offsets).
    """
    loc = rotation_zxy(angles)
    n = len(root)
    g = np.zeros((n, len(JOINTS), 3, 3))
    pos = np.zeros((n, len(JOINTS), 3))
    for i, j in enumerate(JOINTS):
        if j.parent < 0:
            g[:, i], pos[:, i] = loc[:, i], root
        else:
            g[:, i] = g[:, j.parent] @ loc[:, i]
            pos[:, i] = pos[:, j.parent] + g[:, j.parent] @ offsets[i]
    return pos


def solve_rotations(world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 17, 3) rigid world joints -> (root (N, 3), local rotations (N, J, 3, 3), offsets (J, 3)):
    the skeleton's motion as matrices, shared by the BVH (as Euler angles) and the glTF writer."""
    lengths = skeleton.symmetric_bone_lengths(world)
    return world[:, 0].copy(), local_rotations(global_rotations(world)), rest_offsets(lengths)


def solve(world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 17, 3) rigid world joints -> (root (N, 3), angles (N, J, 3) radians, offsets (J, 3))."""
    root, local, offsets = solve_rotations(world)
    return root, euler_zxy(local), offsets


def to_text(root: np.ndarray, angles: np.ndarray, offsets: np.ndarray, fps: float,
            scale: float = 1.0) -> str:
    """The BVH file. root (N, 3) and offsets in metres (times ``scale`` on output); angles
    (N, J, 3) radians, (z, x, y)."""
    lines = ["HIERARCHY"]
    children: dict[int, list[int]] = {}
    for i, j in enumerate(JOINTS):
        children.setdefault(j.parent, []).append(i)
    rot = "Zrotation Xrotation Yrotation"

    def emit(i: int, depth: int) -> None:
        j, ind = JOINTS[i], "  " * depth
        head = "ROOT" if j.parent < 0 else "JOINT"
        lines.append(f"{ind}{head} {j.name}")
        lines.append(f"{ind}{{")
        o = offsets[i] * scale
        lines.append(f"{ind}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        lines.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition {rot}" if j.parent < 0
                     else f"{ind}  CHANNELS 3 {rot}")
        for c in children.get(i, []):
            emit(c, depth + 1)
        if j.end is not None:
            e = np.asarray(j.end) * scale
            lines.extend([f"{ind}  End Site", f"{ind}  {{",
                          f"{ind}    OFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}", f"{ind}  }}"])
        lines.append(f"{ind}}}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {len(root)}", f"Frame Time: {1.0 / fps!r}"]
    deg = np.degrees(angles)
    for f in range(len(root)):
        vals = list(root[f] * scale) + list(deg[f].ravel())
        lines.append(" ".join(f"{v:.6f}" for v in vals))
    return "\n".join(lines) + "\n"


def fixed_rate(result: LiftResult, world: np.ndarray) -> tuple[np.ndarray, float]:
    """(world joints (M, 17, 3), frame rate) for a file with one frame time: the frames as
    they are for an evenly spaced clip, else resampled (linearly, made rigid again) to a uniform
    grid over the clip's frame times (:func:`posecli.timing.export_grid`)."""
    from posecli import timing
    times = result.frame_times()
    fps, grid = timing.export_grid(times, result.fps)
    if grid is None:
        return world, fps
    world = timing.resample(times, world, grid)
    return skeleton.fix_bone_lengths(world, skeleton.symmetric_bone_lengths(world)), fps


def write(result: LiftResult, path: str | Path, scale: float = 1.0) -> None:
    """Write ``result`` as BVH, atomically. ``scale``: 1 = metres, 100 = centimetres.
    A clip whose frames are not evenly spaced is resampled to its median rate (:func:`fixed_rate`)."""
    world, fps = fixed_rate(result, result.world_joints())
    root, angles, offsets = solve(world)
    if not all(np.isfinite(a).all() for a in (root, angles, offsets)) or not np.isfinite(scale):
        raise PosecliError(f"{path}: the motion holds a non-finite number; nothing written")
    text = to_text(root, angles, offsets, fps, scale)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
