"""BVH: a Mixamo-style skeleton driven by the lifted Human3.6M joints, with per-frame local
rotations, for animation software (Blender, Maya, MotionBuilder, Unity; checked with Blender's
own importer) and retargeting.

Conventions (also in the README):
- axes: Y up, X = the person's left in the rest pose, Z = the direction the rest pose faces
  (towards the camera); the posecli world frame (:mod:`posecli.trajectory`): floor at Y = 0;
- units: metres times ``scale`` (default 1: metres; ``--bvh-scale 100`` writes centimetres);
- rest pose: a T-pose facing +Z standing on the floor (the soles at Y = 0), legs down -Y, arms
  along +-X, feet forward +Z;
- joints and names as Mixamo's rig (``names="mixamo"`` adds its ``mixamorig:`` prefix):
  ``Hips`` (pelvis); ``Spine``, ``Spine1`` (the H36M spine joint), ``Spine2`` spread up the
  trunk; ``Neck`` at the neck base (thorax), ``Head`` at the skull base, ``HeadTop_End``;
  ``LeftShoulder`` (the clavicle, from the neck base), ``LeftArm``, ``LeftForeArm``,
  ``LeftHand``; ``LeftUpLeg``, ``LeftLeg``, ``LeftFoot``, ``LeftToeBase`` (ball of the foot);
  the same on the right; end sites on toes, hands and head top;
- each joint's ``CHANNELS`` name its own rotation order (:data:`JOINTS`), outermost first: the
  local matrix is R_a @ R_b @ R_c for "abc", degrees. The middle angle (limited to +-90) is the
  one a joint turns least, so curves stay away from gimbal lock; a knee's or elbow's bend is
  one channel (knee X, elbow Y);
- the root's OFFSET is its rest height (hips above the floor in the T-pose); its position
  channels carry the world pelvis (absolute, as importers read them).

Rotations: every joint's global rotation maps a rest frame to the current one, built from the
bone to its child (swing) and a twist reference: the hip line and shoulder line blended up the
spine, the shoulder line (or the ears) for neck and head, the trunk axis for the clavicles, the
knee's (elbow's) axis for the leg (arm), kept continuous through a straight limb. Feet point
along the knee's plane, flat on the floor while in contact; with BlazePose's world landmarks
(``LiftResult.landmarks_world``) feet follow heel and toe, hands the wrist, index, pinky and
thumb, and the head turns with the ears. Each frame's Euler triple is the one nearest the
previous frame's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli import footlock, skeleton
from posecli.errors import PosecliError
from posecli.files import atomic_path
from posecli.result import LiftResult

X, Y, Z = np.eye(3)

SPINE_AT = 0.4    # Spine: this far from the pelvis to the H36M spine joint (Mixamo: ~20 % of
SPINE2_AT = 0.5   # hips -> neck); Spine2: this far from the spine joint to the thorax (~70 %)
# The foot in the rest pose, relative to the leg (thigh + shank) length: ankle -> ball of the
# foot forwards (a 1.75 m person: 0.145 m), ball -> toe tip; heights above the floor (metres).
FOOT_FORWARD, TOE_FORWARD = 0.17, 0.07
ANKLE_HEIGHT, BALL_HEIGHT = 0.09, 0.03   # ANKLE_HEIGHT as posecli.trajectory's
NAME_PREFIXES = {"plain": "", "mixamo": "mixamorig:"}
LANDMARK_SMOOTH_S = 0.04  # Gaussian sigma (s) over BlazePose's world landmarks
LANDMARK_TRUST_S = 0.1    # ... and over how far each is followed


@dataclass(frozen=True)
class Joint:
    name: str
    h36m: int | None      # H36M joint at this BVH joint (None: a joint of the rig only)
    parent: int           # index into JOINTS (-1 for the root)
    leaf: bool = False    # has an End Site
    order: str = "XZY"    # rotation channels, outermost first: local matrix R_a @ R_b @ R_c


# BVH joints in file order (depth first); parents come first.
JOINTS: tuple[Joint, ...] = (
    Joint("Hips", 0, -1, order="YXZ"),
    Joint("Spine", None, 0),
    Joint("Spine1", 7, 1),
    Joint("Spine2", None, 2),
    Joint("Neck", 8, 3),
    Joint("Head", 9, 4),
    Joint("HeadTop_End", 10, 5, leaf=True),
    Joint("LeftShoulder", None, 3),
    Joint("LeftArm", 11, 7, order="ZXY"),
    Joint("LeftForeArm", 12, 8, order="YXZ"),
    Joint("LeftHand", 13, 9, leaf=True),
    Joint("RightShoulder", None, 3),
    Joint("RightArm", 14, 11, order="ZXY"),
    Joint("RightForeArm", 15, 12, order="YXZ"),
    Joint("RightHand", 16, 13, leaf=True),
    Joint("LeftUpLeg", 4, 0),
    Joint("LeftLeg", 5, 15),
    Joint("LeftFoot", 6, 16),
    Joint("LeftToeBase", None, 17, leaf=True),
    Joint("RightUpLeg", 1, 0),
    Joint("RightLeg", 2, 19),
    Joint("RightFoot", 3, 20),
    Joint("RightToeBase", None, 21, leaf=True),
)
INDEX = {j.name: i for i, j in enumerate(JOINTS)}
H36M_TO_BVH = {j.h36m: i for i, j in enumerate(JOINTS) if j.h36m is not None}

# Rest direction of each H36M bone (child joint -> unit vector from its parent).
_REST_DIR = {1: -X, 2: -Y, 3: -Y, 4: X, 5: -Y, 6: -Y, 7: Y, 8: Y, 9: Y, 10: Y,
             11: X, 12: X, 13: X, 14: -X, 15: -X, 16: -X}


def rest_offsets(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rest pose (T-pose on the floor) of a clip's skeleton.

    Args:
        lengths: (16,) bone lengths in metres, bone j ends at H36M joint j.
    Returns:
        offsets: (len(JOINTS), 3) OFFSETs (the root's: its rest height above the floor);
        ends: (len(JOINTS), 3) End Site offsets (zero where a joint has none).
    """
    off = np.zeros((len(JOINTS), 3))
    ends = np.zeros((len(JOINTS), 3))
    leg = lengths[1] + lengths[2]  # thigh + shank
    for i, j in enumerate(JOINTS):
        if j.h36m not in (None, 0, 7, 8):
            off[i] = _REST_DIR[j.h36m] * lengths[j.h36m - 1]
    off[INDEX["Hips"]] = [0.0, leg + ANKLE_HEIGHT, 0.0]
    off[INDEX["Spine"]] = [0.0, SPINE_AT * lengths[6], 0.0]
    off[INDEX["Spine1"]] = [0.0, (1 - SPINE_AT) * lengths[6], 0.0]
    off[INDEX["Spine2"]] = [0.0, SPINE2_AT * lengths[7], 0.0]
    for name in ("Neck", "LeftShoulder", "RightShoulder"):  # all at the thorax
        off[INDEX[name]] = [0.0, (1 - SPINE2_AT) * lengths[7], 0.0]
    for side in ("Left", "Right"):
        off[INDEX[side + "ToeBase"]] = [0.0, BALL_HEIGHT - ANKLE_HEIGHT, FOOT_FORWARD * leg]
        ends[INDEX[side + "ToeBase"]] = [0.0, -BALL_HEIGHT, TOE_FORWARD * leg]
    hand = 0.4 * lengths[12]  # wrist -> knuckles, as a share of the forearm
    ends[INDEX["LeftHand"]], ends[INDEX["RightHand"]] = hand * X, -hand * X
    ends[INDEX["HeadTop_End"]] = 0.3 * lengths[9] * Y
    return off, ends


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


def _blend(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """(N, 3) x2 -> the unit vectors' weighted mean, (1 - w) a + w b."""
    return (1 - w) * _unit(a) + w * _unit(b)


def _align(v: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotate (N, K, 3) vectors by the smallest per-frame rotation taking direction src (N, 3)
    onto dst (N, 3) (Rodrigues): BlazePose's limb onto the lifted one."""
    a, b = _unit(src), _unit(dst)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)[:, None, None]
    c = (a * b).sum(-1)[:, None, None]
    k = _unit(axis)[:, None, :]
    return v * c + np.cross(k, v) * s + k * (v * k).sum(-1, keepdims=True) * (1 - c)


# BlazePose-33 landmarks used for the extremities (odd = left)
_BP = {"nose": 0, "l_ear": 7, "r_ear": 8, "l_shoulder": 11, "r_shoulder": 12, "l_elbow": 13,
       "r_elbow": 14, "l_wrist": 15, "r_wrist": 16, "l_pinky": 17, "r_pinky": 18, "l_index": 19,
       "r_index": 20, "l_thumb": 21, "r_thumb": 22, "l_knee": 25, "r_knee": 26, "l_ankle": 27,
       "r_ankle": 28, "l_heel": 29, "r_heel": 30, "l_foot": 31, "r_foot": 32}


def extremities(p: np.ndarray, lm: np.ndarray | None, trust: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Directions of feet, hands and face from BlazePose's world landmarks, in the world frame
    and aligned to the lifted limbs.

    Args:
        p: (N, 17, 3) world joints (metres, Y up).
        lm: (N, 33, 3) BlazePose world landmarks already turned into the world frame (Y up;
            any origin and scale), NaN where missing; or None.
        trust: (N, 33) how far to follow each landmark, in [0, 1] (default 1 where finite).
    Returns:
        per side ("l", "r"): ``{side}_toe`` heel -> foot index and ``{side}_sole_up`` (heel ->
        ankle), aligned by each frame's rotation of BlazePose's shank onto the lifted one;
        ``{side}_fingers`` wrist -> mid(index, pinky) and ``{side}_across`` pinky -> index,
        aligned by the forearm; ``ears`` right ear -> left ear, aligned by the neck; and
        ``{side}_foot_trust``, ``{side}_hand_trust``, ``ears_trust`` (N,): the least trust of
        the landmarks each uses. Frames with a NaN hold NaN (trust 0 there). Empty without
        landmarks.
    """
    if lm is None:
        return {}
    if trust is None:
        trust = np.isfinite(lm).all(-1).astype(float)
    trust = np.where(np.isfinite(lm).all(-1), trust, 0.0)
    g = {k: lm[:, v] for k, v in _BP.items()}
    least = lambda *names: trust[:, [_BP[n] for n in names]].min(axis=1)  # noqa: E731
    out = {}
    for s in ("l", "r"):
        out[s + "_foot_trust"] = least(s + "_knee", s + "_ankle", s + "_heel", s + "_foot")
        out[s + "_hand_trust"] = least(s + "_elbow", s + "_wrist", s + "_index", s + "_pinky")
    out["ears_trust"] = least("l_ear", "r_ear", "l_shoulder", "r_shoulder")
    for s, (hip, knee, ankle) in (("l", (4, 5, 6)), ("r", (1, 2, 3))):
        shank_bp = g[s + "_ankle"] - g[s + "_knee"]
        shank = p[:, ankle] - p[:, knee]
        v = np.stack([g[s + "_foot"] - g[s + "_heel"], g[s + "_ankle"] - g[s + "_heel"]], 1)
        out[s + "_toe"], out[s + "_sole_up"] = np.moveaxis(_align(v, shank_bp, shank), 1, 0)
    for s, (elbow, wrist) in (("l", (12, 13)), ("r", (15, 16))):
        fore_bp = g[s + "_wrist"] - g[s + "_elbow"]
        fore = p[:, wrist] - p[:, elbow]
        knuckles = (g[s + "_index"] + g[s + "_pinky"]) / 2
        v = np.stack([knuckles - g[s + "_wrist"], g[s + "_index"] - g[s + "_pinky"]], 1)
        out[s + "_fingers"], out[s + "_across"] = np.moveaxis(_align(v, fore_bp, fore), 1, 0)
    neck_bp = (g["l_ear"] + g["r_ear"]) / 2 - (g["l_shoulder"] + g["r_shoulder"]) / 2
    out["ears"] = _align((g["l_ear"] - g["r_ear"])[:, None], neck_bp, p[:, 9] - p[:, 8])[:, 0]
    return out


# The most a landmark-driven joint may turn away from where the lifted body alone puts it
# (degrees): foot against the knee's plane (tibial rotation and toe-out stay within ~40),
# hand against the forearm (wrist flexion reaches ~80), head against the shoulders (neck
# rotation ~70). Beyond that a landmark is more likely wrong than the body (small, far people).
FOOT_LIMIT_DEG, HAND_LIMIT_DEG, HEAD_LIMIT_DEG = 45.0, 80.0, 70.0


def toward(ref: np.ndarray, r: np.ndarray, weight: np.ndarray, limit_deg: float) -> np.ndarray:
    """Turn (N, 3, 3) rotations ``ref`` towards ``r`` by ``weight`` (N,) in [0, 1] of the way
    (about the axis between them), and never more than ``limit_deg``; a target more than
    ``limit_deg`` + 30 degrees away counts for less, down to nothing at 180. NaN in ``r``
    counts as weight 0."""
    ok = np.isfinite(r).all(axis=(-2, -1))
    r = np.where(ok[:, None, None], np.nan_to_num(r), ref)
    rel = np.swapaxes(ref, -1, -2) @ r
    angle = np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    axis = _unit(np.stack([rel[:, 2, 1] - rel[:, 1, 2], rel[:, 0, 2] - rel[:, 2, 0],
                           rel[:, 1, 0] - rel[:, 0, 1]], -1))
    limit = np.radians(limit_deg)
    # far beyond the limit the landmark is the one that is wrong (and near 180 degrees the
    # shortest way round flips side from frame to frame): fade it out towards 180
    fade = np.clip((np.pi - angle) / max(np.pi - limit - np.radians(30), 1e-6), 0, 1)
    turn = np.minimum(angle, limit) * np.where(ok, np.clip(weight, 0, 1), 0.0) * fade
    return ref @ axis_rotation_about(axis, turn)


def axis_rotation_about(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(N, 3) unit axes, (N,) radians -> (N, 3, 3) (Rodrigues)."""
    k = np.zeros((len(axis), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - np.swapaxes(k, -1, -2)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3)[None] + s * k + (1 - c) * (k @ k)


def foot_frames(p: np.ndarray, knee_axis: np.ndarray, contact: np.ndarray, ankle: int,
                toe: np.ndarray | None = None, sole_up: np.ndarray | None = None,
                trust: np.ndarray | None = None, tip: np.ndarray | None = None) -> np.ndarray:
    """(N, 3, 3) global rotation of a foot (rest: toes +Z, sole down).

    Without landmarks the foot points along the knee's plane (forward of the knee axis) and
    keeps the shank's rest angle (ankle neutral); with them it turns towards heel -> toe by
    ``trust`` (N,) of the way, within :data:`FOOT_LIMIT_DEG`. Either way
    it is laid flat on the floor in proportion to ``contact`` (N,) in [0, 1], so a planted foot
    neither tilts nor dips its toes below the floor; elsewhere, if the toe tip (``tip``: (3,)
    ankle -> toe tip in the rest pose, metres) would go below the floor, the foot is pitched up
    about its own lateral axis until it touches it (the heel lifts, as at toe-off).
    """
    shank_up = _unit(p[:, ankle - 1] - p[:, ankle])
    own = _frame(np.cross(knee_axis, shank_up), shank_up, (2, 1))
    if toe is not None:
        seen = _frame(toe, sole_up, (2, 1))
        own = toward(own, seen, trust, FOOT_LIMIT_DEG)
    fwd, up = own[:, :, 2], own[:, :, 1]
    w = np.clip(contact, 0, 1)[:, None]
    flat_fwd = fwd - fwd[:, 1:2] * Y
    fwd = (1 - w) * _unit(fwd) + w * _unit(flat_fwd)
    up = (1 - w) * _unit(up) + w * Y
    g = _frame(fwd, up, (2, 1))
    if tip is not None:
        g = _keep_toes_up(g, p[:, ankle, 1], np.asarray(tip, float))
    return g


def _keep_toes_up(g: np.ndarray, ankle_y: np.ndarray, tip: np.ndarray) -> np.ndarray:
    """Pitch feet (N, 3, 3) toes-up about their lateral axis, by the least angle that keeps
    ``ankle_y + (g @ tip)_y >= 0`` (bisection, within 90 degrees)."""
    def height(theta):
        return ankle_y + (g @ axis_rotation(0, -theta) @ tip)[:, 1]
    low = height(np.zeros(len(g))) < 0
    if not low.any():
        return g
    lo, hi = np.zeros(len(g)), np.full(len(g), np.pi / 2)
    for _ in range(24):
        mid = (lo + hi) / 2
        ok = height(mid) >= 0
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return np.where(low[:, None, None], g @ axis_rotation(0, -hi), g)


def _head(axis: np.ndarray, shoulders: np.ndarray, ears: np.ndarray | None,
          trust: np.ndarray | None) -> np.ndarray:
    """(N, 3, 3) head: up the lifted head (exact), twisted from the shoulder line towards the
    ear line by ``trust`` of the way (within :data:`HEAD_LIMIT_DEG`)."""
    body = _frame(axis, shoulders, (1, 0))
    if ears is None:
        return body
    return toward(body, _frame(axis, ears, (1, 0)), trust, HEAD_LIMIT_DEG)


def global_rotations(p: np.ndarray, contact: np.ndarray | None = None,
                     ext: dict[str, np.ndarray] | None = None,
                     toe_tip: np.ndarray | None = None) -> np.ndarray:
    """World joints -> per-frame global rotation of every BVH joint.

    Args:
        p: (N, 17, 3) world metres, rigid skeleton with the pelvis at mid-hips and the hip line
           square to the lower spine (:func:`posecli.trajectory.square_hips`).
        contact: (N, 2) foot contact weights in [0, 1] (right, left), or None.
        ext: :func:`extremities` (feet, hands, face from BlazePose's world landmarks), or None.
        toe_tip: (3,) ankle -> toe tip in the rest pose (metres): keeps the toes above the floor.
    Returns:
        (N, len(JOINTS), 3, 3) rotations from the rest pose (columns: rotated rest axes).
    """
    n = len(p)
    ext = ext or {}
    contact = np.zeros((n, 2)) if contact is None else np.asarray(contact, float)
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
    ears = ext.get("ears")
    g = np.zeros((n, len(JOINTS), 3, 3))
    frames = {
        "Hips": lambda: _frame(p[:, 7] - p[:, 0], hips, (1, 0)),
        # the trunk's twist spread from the hip line to the shoulder line up the spine
        "Spine": lambda: _frame(p[:, 7] - p[:, 0], _blend(hips, shoulders, 1 / 3), (1, 0)),
        "Spine1": lambda: _frame(p[:, 8] - p[:, 7], _blend(hips, shoulders, 2 / 3), (1, 0)),
        "Spine2": lambda: _frame(p[:, 8] - p[:, 7], shoulders, (1, 0)),
        "Neck": lambda: _frame(trunk_up, shoulders, (1, 0)),
        "Head": lambda: _head(p[:, 10] - p[:, 9], shoulders, ears, ext.get("ears_trust")),
        "LeftShoulder": lambda: _frame(p[:, 11] - p[:, 8], trunk_up, (0, 1)),   # rest +X
        "RightShoulder": lambda: _frame(-(p[:, 14] - p[:, 8]), trunk_up, (0, 1)),  # rest -X
    }
    for i, j in enumerate(JOINTS):
        h = j.h36m
        if j.name in frames:
            g[:, i] = frames[j.name]()
        elif h in (1, 2, 4, 5):  # thighs and shins: swing -Y, twist from the knee's axis
            g[:, i] = _frame(-(p[:, h + 1] - p[:, h]), knee[1 if h in (1, 2) else 4], (1, 0))
        elif h in (11, 12):  # left arm: bone +X, elbow axis +Y
            g[:, i] = _frame(p[:, h + 1] - p[:, h], elbow[11], (0, 1))
        elif h in (14, 15):  # right arm: bone -X, elbow axis +Y
            g[:, i] = _frame(-(p[:, h + 1] - p[:, h]), elbow[14], (0, 1))
        elif h in (3, 6):  # feet
            s, c = ("r", 0) if h == 3 else ("l", 1)
            g[:, i] = foot_frames(p, knee[h - 2], contact[:, c], h, ext.get(s + "_toe"),
                                  ext.get(s + "_sole_up"), ext.get(s + "_foot_trust"), toe_tip)
        elif h in (13, 16) and (("l" if h == 13 else "r") + "_fingers") in ext:
            s = "l" if h == 13 else "r"
            sign = 1.0 if s == "l" else -1.0  # the right hand's rest X points along -fingers
            hand = _frame(sign * ext[s + "_fingers"], ext[s + "_across"], (0, 2))
            g[:, i] = toward(g[:, j.parent], hand, ext[s + "_hand_trust"], HAND_LIMIT_DEG)
        else:  # toes, head top, hands without landmarks: no rotation of their own
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
        root: (N, 3) root positions (absolute: the root's OFFSET is replaced by them);
        angles: (N, J, 3) radians per BVH joint, in its order; offsets: (J, 3) rest offsets.
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


def global_from_angles(angles: np.ndarray) -> np.ndarray:
    """(N, J, 3) radians -> (N, J, 3, 3) global rotations (the chain of local ones)."""
    loc = local_from_angles(angles)
    g = np.zeros_like(loc)
    for i, j in enumerate(JOINTS):
        g[:, i] = loc[:, i] if j.parent < 0 else g[:, j.parent] @ loc[:, i]
    return g


def foot_points(root: np.ndarray, angles: np.ndarray, offsets: np.ndarray, ends: np.ndarray
                ) -> np.ndarray:
    """(N, 2, 2, 3): per foot (right, left) the ball (ToeBase) and the toe tip (its End
    Site), from a solved BVH motion (:func:`solve`)."""
    pos = forward_kinematics(root, angles, offsets)
    g = global_from_angles(angles)
    out = []
    for side in ("Right", "Left"):
        t = INDEX[side + "ToeBase"]
        out.append(np.stack([pos[:, t], pos[:, t] + g[:, t] @ ends[t]], axis=1))
    return np.stack(out, axis=1)


def curve_jumps(angles: np.ndarray, offsets: np.ndarray, orders: list[str] | None = None,
                ends: np.ndarray | None = None, limit_deg: float = 40.0) -> dict:
    """How an animator's graph editor sees the rotation curves: jumps between frames.

    Args:
        angles: (N, J, 3) radians as written; offsets: (J, 3); orders: each joint's channel
            order (default this writer's); ends: (J, 3) End Site offsets (zero where none).
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
    kids[0] = [c for c in kids[0] if JOINTS[c].parent == 0]
    moved = np.zeros_like(turn)
    for i in range(len(JOINTS)):
        dirs = [offsets[c] for c in kids[i]]
        if ends is not None and np.linalg.norm(ends[i]) > 1e-9:
            dirs.append(ends[i])
        for d in dirs:  # the bone in the parent's frame: local rotation @ rest direction
            v = _unit(loc[:, i] @ _unit(d))
            moved[:, i] = np.maximum(moved[:, i], np.degrees(np.arccos(np.clip(
                (v[:-1] * v[1:]).sum(-1), -1, 1))))
    big = step > limit_deg
    return {"channel_jumps": int(big.sum()),
            "spurious": int((big & (turn < limit_deg)[..., None]).sum()),
            "twist_flips": int(((turn > limit_deg) & (moved < 10.0)).sum()),
            "max_step_deg": round(float(step.max()), 2) if step.size else 0.0}


def landmarks_in_world(result: LiftResult) -> np.ndarray | None:
    """(N, 33, 3) BlazePose world landmarks turned into the world frame (Y up), or None.

    BlazePose's world axes are the camera's (x right, y down, z away), so the camera -> world
    rotation of the trajectory applies; without a trajectory, (x, -y, -z) as for the joints.
    """
    lm = getattr(result, "landmarks_world", None)
    if lm is None:
        return None
    lm = np.asarray(lm, float)
    if lm.ndim != 3 or lm.shape[1:] != (33, 3) or len(lm) != result.num_frames:
        return None
    rot = (result.trajectory.rotation if result.trajectory is not None
           else np.diag([1.0, -1.0, -1.0]))
    return lm @ np.asarray(rot).T


def motion(result: LiftResult, fps: float | None = None, fixed_rate: bool = True) -> tuple:
    """What a BVH of ``result`` holds: (world joints (M, 17, 3), contact weights (M, 2),
    world landmarks (M, 33, 3) or None, landmark trust (M, 33) in [0, 1] or None, frame rate),
    resampled to ``fps`` when given (uniform frames over the clip's time span; joints made
    rigid again); else, with ``fixed_rate``, a clip whose frames are not evenly spaced is
    resampled to its median rate (:func:`posecli.timing.export_grid`); ``fixed_rate=False``
    keeps the clip's own frames (writers that store each frame's time). Trust comes from BlazePose's visibility (0 below 0.3, 1 above 0.7),
    ramped over :data:`LANDMARK_TRUST_S`."""
    world = result.world_joints()
    contacts = (result.trajectory.contacts if result.trajectory is not None
                else np.zeros((len(world), 2), bool))
    weights = footlock.contact_weights(contacts, result.fps)
    lm = landmarks_in_world(result)
    trust = None
    if lm is not None:  # BlazePose's per-frame 3D jitters: smooth it (NaN frames stay NaN)
        from posecli.trajectory import fill_nan, smooth
        seen = np.isfinite(lm).all(-1)
        vis = getattr(result, "landmarks_visibility", None)
        trust = np.ones(seen.shape) if vis is None else np.clip((np.nan_to_num(np.asarray(vis, float))
                                                                 - 0.3) / 0.4, 0, 1)
        # ramp the trust over time too, so a landmark coming and going never snaps a joint
        # at least a frame either way: a low-rate clip's landmarks jump the most between frames
        trust = smooth(np.where(seen, trust, 0.0), max(LANDMARK_TRUST_S * result.fps, 1.0))
        # gaps are bridged (with little trust there) rather than cut, so nothing snaps
        lm = smooth(fill_nan(lm), max(LANDMARK_SMOOTH_S * result.fps, 1.0)) if seen.any() else None
        trust = trust if seen.any() else None
    from posecli import timing
    resample = timing.resample
    t = result.frame_times()
    if fps and fps > 0:
        grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * fps + 1e-6)) + 1) / fps
    else:
        fps, grid = timing.export_grid(t, result.fps)
        if grid is None or not fixed_rate:
            return world, weights, lm, trust, float(result.fps)
    world = resample(t, world, grid)
    world = skeleton.fix_bone_lengths(world, skeleton.symmetric_bone_lengths(world))
    if lm is not None:
        lm = resample(t, lm, grid)  # NaN spreads to neighbours: those frames fall back
        trust = resample(t, trust, grid)
    return world, resample(t, weights, grid), lm, trust, float(fps)


def solve_rotations(world: np.ndarray, contact: np.ndarray | None = None,
                    landmarks: np.ndarray | None = None, trust: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 17, 3) rigid world joints -> (root (N, 3), local rotations (N, J, 3, 3), offsets
    (J, 3)): the skeleton's motion as matrices, shared by the BVH (as Euler angles) and other
    writers. contact: (N, 2) weights; landmarks: (N, 33, 3) in the world frame; trust: (N, 33)
    in [0, 1] (see :func:`motion`)."""
    offsets, ends = rest_offsets(skeleton.symmetric_bone_lengths(world))
    toe = INDEX["LeftToeBase"]
    g = global_rotations(world, contact, extremities(world, landmarks, trust), offsets[toe] + ends[toe])
    return world[:, 0].copy(), local_rotations(g), offsets


def solve(world: np.ndarray, contact: np.ndarray | None = None, landmarks: np.ndarray | None = None,
          trust: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, 17, 3) rigid world joints -> (root (N, 3), angles (N, J, 3) radians in each joint's
    channel order, offsets (J, 3), end sites (J, 3)); arguments as :func:`solve_rotations`."""
    root, local, offsets = solve_rotations(world, contact, landmarks, trust)
    ends = rest_offsets(skeleton.symmetric_bone_lengths(world))[1]
    return root, euler_angles(local), offsets, ends


def to_text(root: np.ndarray, angles: np.ndarray, offsets: np.ndarray, ends: np.ndarray,
            fps: float, scale: float = 1.0, names: str = "plain") -> str:
    """The BVH file. root (N, 3), offsets and ends in metres (times ``scale`` on output);
    angles (N, J, 3) radians, each joint's in its channel order; names: plain or mixamo."""
    prefix = NAME_PREFIXES[names]
    lines = ["HIERARCHY"]
    children: dict[int, list[int]] = {}
    for i, j in enumerate(JOINTS):
        children.setdefault(j.parent, []).append(i)

    def emit(i: int, depth: int) -> None:
        j, ind = JOINTS[i], "  " * depth
        head = "ROOT" if j.parent < 0 else "JOINT"
        lines.append(f"{ind}{head} {prefix}{j.name}")
        lines.append(f"{ind}{{")
        o = offsets[i] * scale
        lines.append(f"{ind}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        rot = " ".join(f"{c}rotation" for c in j.order)
        lines.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition {rot}" if j.parent < 0
                     else f"{ind}  CHANNELS 3 {rot}")
        for c in children.get(i, []):
            emit(c, depth + 1)
        if j.leaf:
            e = ends[i] * scale
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


def write(result: LiftResult, path: str | Path, scale: float = 1.0, names: str = "plain",
          fps: float | None = None) -> None:
    """Write ``result`` as BVH, atomically. ``scale``: 1 = metres, 100 = centimetres;
    ``names``: plain or mixamo (``mixamorig:`` prefix); ``fps``: resample to this rate
    (default the clip's own; a clip whose frames are not evenly spaced is resampled to its
    median rate, :func:`motion`)."""
    if names not in NAME_PREFIXES:
        from posecli.errors import UsageError
        raise UsageError(f"unknown BVH names {names!r} ({', '.join(NAME_PREFIXES)})")
    world, contact, lm, trust, rate = motion(result, fps)
    root, angles, offsets, ends = solve(world, contact, lm, trust)
    if not all(np.isfinite(a).all() for a in (root, angles, offsets)) or not np.isfinite(scale):
        raise PosecliError(f"{path}: the motion holds a non-finite number; nothing written")
    text = to_text(root, angles, offsets, ends, rate, scale, names)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
