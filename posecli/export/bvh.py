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
from posecli.files import atomic_path
from posecli.result import LiftResult

X, Y, Z = np.eye(3)


@dataclass(frozen=True)
class Joint:
    name: str
    h36m: int | None      # H36M joint at this BVH joint (None: zero-length branch joint)
    parent: int           # index into JOINTS (-1 for the root)
    end: tuple | None     # End Site offset (metres, rest frame) for leaves
    order: str = "XZY"    # rotation channels, outermost first: local matrix R_a @ R_b @ R_c


# BVH joints in file order (depth first); parents come first.
JOINTS: tuple[Joint, ...] = (
    Joint("Hips", 0, -1, None, "YXZ"),
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
    Joint("LeftArm", 11, 13, None, "ZXY"),
    Joint("LeftForeArm", 12, 14, None, "YXZ"),
    Joint("LeftHand", 13, 15, (0.05, 0.0, 0.0), "YXZ"),
    Joint("RightShoulder", None, 9, None),
    Joint("RightArm", 14, 17, None, "ZXY"),
    Joint("RightForeArm", 15, 18, None, "YXZ"),
    Joint("RightHand", 16, 19, (-0.05, 0.0, 0.0), "YXZ"),
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


BENT = np.sin(np.radians(10.0))  # a knee or elbow bent less than this is "straight"


def hinge_axes(upper: np.ndarray, lower: np.ndarray, ref: np.ndarray, anatomical: bool) -> np.ndarray:
    """Per-frame hinge axis of a knee or elbow, continuous through a straight limb.

    The bend plane's normal ``upper x lower`` is exact while the limb is bent but vanishes and
    flips sign as it straightens, which would spin the limb 180 degrees about itself between
    two nearly equal poses. So the normal's sign is chosen once per run of bent frames: by
    the anatomical reference ``ref`` when it is reliable (``anatomical``: the knee folds
    backwards, so its axis follows the hip line; an over-extended knee becomes a negative
    bend, not a twist), else to continue the previous run (elbows: which way the forearm folds
    depends on the upper arm's twist; the first run uses ``ref``). While straight, the axis
    holds its last direction (pulled towards ``ref`` for knees).

    Args:
        upper, lower: (N, 3) bone vectors (thigh and shin, upper arm and forearm);
        ref: (N, 3) where the axis points for an ordinary bend (may vanish in places).
    Returns:
        (N, 3) unit axes.
    """
    c = np.cross(_unit(upper), _unit(lower))
    bent = np.linalg.norm(c, axis=-1) > BENT
    ref_u = _unit(ref)
    prev = ref_u[int(np.argmax(np.linalg.norm(ref, axis=-1)))]
    out = np.zeros_like(c)
    first, sign = True, 1.0
    for i in range(len(c)):
        if bent[i] and (i == 0 or not bent[i - 1]):  # a new bent run: its sign, once
            stop = i + int(np.argmin(bent[i:])) if not bent[i:].all() else len(c)
            towards = ref_u[i:stop] if anatomical or first else prev
            sign = 1.0 if (c[i:stop] * towards).sum() >= 0 else -1.0
            first = False
        hold = _unit(prev + 0.3 * ref_u[i]) if anatomical else prev
        ci = sign * c[i] if bent[i] else (c[i] if c[i] @ hold >= 0 else -c[i])
        out[i] = prev = _unit(ci + 0.15 * hold)
    return out


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
    forward = np.cross(_unit(shoulders), _unit(trunk_up))  # rest +Z
    knee = {h: hinge_axes(p[:, h + 1] - p[:, h], p[:, h + 2] - p[:, h + 1], hips, True)
            for h in (1, 4)}            # knee axis +X at rest: flexion is +X rotation
    # elbow axis (rest frame's +Y for either arm): the forearm folds towards the front
    elbow = {11: -hinge_axes(p[:, 12] - p[:, 11], p[:, 13] - p[:, 12],
                             np.cross(_unit(p[:, 12] - p[:, 11]), forward), False),
             14: hinge_axes(p[:, 15] - p[:, 14], p[:, 16] - p[:, 15],
                            np.cross(_unit(p[:, 15] - p[:, 14]), forward), False)}
    g = np.zeros((n, len(JOINTS), 3, 3))
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
        elif h in (1, 2, 4, 5):  # thighs and shins: swing -Y, twist from the knee's axis
            g[:, i] = _frame(-(p[:, h + 1] - p[:, h]), knee[1 if h in (1, 2) else 4], (1, 0))
        elif h in (11, 12):  # left arm: bone +X, elbow axis +Y
            g[:, i] = _frame(p[:, h + 1] - p[:, h], elbow[11], (0, 1))
        elif h in (14, 15):  # right arm: bone -X, elbow axis +Y
            g[:, i] = _frame(-(p[:, h + 1] - p[:, h]), elbow[14], (0, 1))
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


def _axes(order: str) -> tuple[int, int, int, float]:
    """"XZY" -> axis indices (0, 2, 1) and the parity (+1 for cyclic orders XYZ, YZX, ZXY)."""
    i, j, k = ("XYZ".index(c) for c in order)
    return i, j, k, (1.0 if (j - i) % 3 == 1 else -1.0)


def axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """(...,) radians about X (0), Y (1) or Z (2) -> (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    r = np.zeros(np.shape(angle) + (3, 3))
    a, b = (axis + 1) % 3, (axis + 2) % 3
    r[..., axis, axis] = 1.0
    r[..., a, a] = r[..., b, b] = c
    r[..., b, a], r[..., a, b] = s, -s
    return r


def rotation(angles: np.ndarray, order: str) -> np.ndarray:
    """(..., 3) radians, outermost first -> (..., 3, 3) R_a @ R_b @ R_c for ``order`` "abc"."""
    i, j, k, _ = _axes(order)
    return axis_rotation(i, angles[..., 0]) @ axis_rotation(j, angles[..., 1]) @ axis_rotation(k, angles[..., 2])


def euler(r: np.ndarray, order: str) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) radians with ``rotation(result, order) == r``; the middle angle
    in [-pi/2, pi/2]. At gimbal lock the outer angle is 0."""
    i, j, k, s = _axes(order)
    b = np.arcsin(np.clip(s * r[..., i, k], -1.0, 1.0))
    a = np.arctan2(-s * r[..., j, k], r[..., k, k])
    c = np.arctan2(-s * r[..., i, j], r[..., i, i])
    lock = np.cos(b) < 1e-6
    if np.any(lock):
        a = np.where(lock, 0.0, a)
        c = np.where(lock, _inner_angle(r, np.zeros_like(a), b, order), c)
    return np.stack([a, b, c], axis=-1)


def _inner_angle(r: np.ndarray, a: np.ndarray, b: np.ndarray, order: str) -> np.ndarray:
    """The innermost angle given the outer two: R_c = R_b^T R_a^T r."""
    i, j, k, _ = _axes(order)
    rc = np.swapaxes(axis_rotation(i, a) @ axis_rotation(j, b), -1, -2) @ r
    return np.arctan2(rc[..., (k + 2) % 3, (k + 1) % 3], rc[..., (k + 1) % 3, (k + 1) % 3])


def euler_continuous(r: np.ndarray, order: str) -> np.ndarray:
    """(N, 3, 3) -> (N, 3) radians for ``order``, continuous along N.

    Every rotation has two Euler triples, (a, b, c) and (a + pi, pi - b, c + pi), each with any
    2 pi shifts; each frame takes the one nearest the previous frame's, so a curve never jumps
    to another way of writing the same pose. Near gimbal lock (middle angle +-90 degrees) the
    outer angle is kept from the previous frame and the inner one takes the rest.
    """
    a = euler(r, order)
    alt = a + np.array([np.pi, 0.0, np.pi])
    alt[:, 1] = np.pi - a[:, 1]
    out = a.copy()
    two_pi = 2 * np.pi
    for f in range(1, len(a)):
        prev = out[f - 1]
        if np.cos(a[f, 1]) < 1e-3:  # near lock: only a +- c is well defined
            c = _inner_angle(r[f], prev[0], a[f, 1], order)
            cand = [np.array([prev[0], a[f, 1], c])]
        else:
            cand = [a[f], alt[f]]
        cand = [x + two_pi * np.round((prev - x) / two_pi) for x in cand]
        out[f] = min(cand, key=lambda x: float(((x - prev) ** 2).sum()))
    return out


def euler_angles(loc: np.ndarray) -> np.ndarray:
    """(N, J, 3, 3) local rotations -> (N, J, 3) radians, each joint in its own order, continuous."""
    return np.stack([euler_continuous(loc[:, i], j.order) for i, j in enumerate(JOINTS)], axis=1)


def local_from_angles(angles: np.ndarray) -> np.ndarray:
    """(N, J, 3) radians -> (N, J, 3, 3) local rotations, each joint in its own order."""
    return np.stack([rotation(angles[:, i], j.order) for i, j in enumerate(JOINTS)], axis=1)


def forward_kinematics(root: np.ndarray, angles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """BVH forward kinematics.

    Args:
        root: (N, 3) root positions; angles: (N, J, 3) radians per BVH joint, in its order;
        offsets: (J, 3) rest offsets.
    Returns:
        (N, J, 3) joint positions (same units as root / offsets).
    """
    loc = local_from_angles(angles)
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


def curve_jumps(angles: np.ndarray, offsets: np.ndarray, orders: list[str] | None = None,
                limit_deg: float = 40.0) -> dict:
    """How an animator's graph editor sees the rotation curves: jumps between frames.

    Args:
        angles: (N, J, 3) radians as written; offsets: (J, 3); orders: each joint's channel
            order (default this writer's).
        limit_deg: a channel step above this is a jump.
    Returns:
        ``channel_jumps``: channel steps above the limit; ``spurious``: those where the joint's
        local rotation turned less than the limit (the same pose written another way);
        ``twist_flips``: frames where a joint's local rotation turned more than the limit while
        the bones it carries moved less than 10 degrees (a limb spun about itself);
        ``max_step_deg``: the largest channel step.
    """
    step = np.degrees(np.abs(np.diff(angles, axis=0)))               # (N-1, J, 3)
    orders = orders or [j.order for j in JOINTS]
    loc = np.stack([rotation(angles[:, i], o) for i, o in enumerate(orders)], axis=1)
    rel = np.swapaxes(loc[:-1], -1, -2) @ loc[1:]
    turn = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))
    kids = {i: [c for c, k in enumerate(JOINTS) if k.parent == i and np.linalg.norm(offsets[c]) > 1e-9]
            for i in range(len(JOINTS))}
    moved = np.zeros_like(turn)
    for i, j in enumerate(JOINTS):
        dirs = [offsets[c] for c in kids[i]] + ([np.asarray(j.end, float)] if j.end else [])
        for d in dirs:  # the bone in the parent's frame: local rotation @ rest direction
            v = _unit(loc[:, i] @ _unit(d))
            moved[:, i] = np.maximum(moved[:, i], np.degrees(np.arccos(np.clip(
                (v[:-1] * v[1:]).sum(-1), -1, 1))))
    big = step > limit_deg
    return {"channel_jumps": int(big.sum()),
            "spurious": int((big & (turn < limit_deg)[..., None]).sum()),
            "twist_flips": int(((turn > limit_deg) & (moved < 10.0)).sum()),
            "max_step_deg": round(float(step.max()), 2) if step.size else 0.0}


def world_joints(result: LiftResult) -> np.ndarray:
    """The (N, 17, 3) world joints (metres, Y up) a BVH of ``result`` reproduces.

    The result's estimated world placement when it has one; otherwise the root-relative camera
    pose turned to Y up (x, -y, -z). Made rigid (one length per bone) with the pelvis at
    mid-hips if it is not already, since a BVH skeleton has fixed offsets.
    """
    from posecli import trajectory

    if result.trajectory is not None:
        w = np.asarray(result.trajectory.world, float)
    else:
        w = np.asarray(result.pose3d, float) * np.array([1.0, -1.0, -1.0])
    lengths = skeleton.symmetric_bone_lengths(w)
    if np.abs(skeleton.bone_lengths(w) - lengths).max() > 1e-6 or np.abs(
            w[:, 0] - (w[:, 1] + w[:, 4]) / 2).max() > 1e-6:  # not rigid, or hips not symmetric
        w = skeleton.fix_bone_lengths(trajectory.symmetric_hips(w), lengths)
    return w


def solve(world: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 17, 3) rigid world joints -> (root (N, 3), angles (N, J, 3) radians, offsets (J, 3))."""
    lengths = skeleton.symmetric_bone_lengths(world)
    angles = euler_angles(local_rotations(global_rotations(world)))
    return world[:, 0].copy(), angles, rest_offsets(lengths)


def to_text(root: np.ndarray, angles: np.ndarray, offsets: np.ndarray, fps: float,
            scale: float = 1.0) -> str:
    """The BVH file. root (N, 3) and offsets in metres (times ``scale`` on output); angles
    (N, J, 3) radians, each joint's in its channel order."""
    lines = ["HIERARCHY"]
    children: dict[int, list[int]] = {}
    for i, j in enumerate(JOINTS):
        children.setdefault(j.parent, []).append(i)

    def emit(i: int, depth: int) -> None:
        j, ind = JOINTS[i], "  " * depth
        head = "ROOT" if j.parent < 0 else "JOINT"
        lines.append(f"{ind}{head} {j.name}")
        lines.append(f"{ind}{{")
        o = offsets[i] * scale
        lines.append(f"{ind}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        rot = " ".join(f"{c}rotation" for c in j.order)
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


def write(result: LiftResult, path: str | Path, scale: float = 1.0) -> None:
    """Write ``result`` as BVH, atomically. ``scale``: 1 = metres, 100 = centimetres."""
    world = world_joints(result)
    root, angles, offsets = solve(world)
    text = to_text(root, angles, offsets, result.fps, scale)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
