"""The body's path over the floor: root trajectory, floor, world frame, foot contacts, and
anatomically plausible bone lengths. Small pure numpy functions; no model, no I/O.

Frames and units used here:
- camera frame: metres, x right, y down, z forward (OpenCV axes; posecli's 3D convention);
- world frame: metres, Y up with the floor at Y = 0, X = the camera's x axis laid onto the floor
  (right in the image), Z = X x Y (towards the camera), origin on the floor under the pelvis in
  the first frame with a person. Right-handed, the convention of BVH / Blender's BVH importer.

Everything here is an *estimate* from one uncalibrated view: the camera is assumed static, a
pinhole with its principal point at the image centre and a focal length from the video size
(or given). The distance to the person comes from their image size against the clip's 3D bone
lengths, so a wrong focal length scales the path and its depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecli import skeleton

# Height of the ankle joint centre above the floor when the foot is flat (m): the 5th
# percentile of the ankle height on the rendered example's truth is 0.090 m.
ANKLE_HEIGHT = 0.09
# Foot contact: ankle at most this far above ANKLE_HEIGHT (m) and slower than this (m/s), on
# the ankle track smoothed over CONTACT_SMOOTH_S (s). Looser than on clean motion capture
# (0.06 m, 0.5 m/s): the estimated depth jitters. Chosen on the rendered example.
CONTACT_HEIGHT = 0.08
CONTACT_SPEED = 1.0
CONTACT_SMOOTH_S = 0.067

# Bone-length ratio ranges (child bone / parent bone) a clip's skeleton must respect.
# Shank / thigh: anthropometric tables (Drillis & Contini 1966, as tabulated by Winter,
# "Biomechanics and Motor Control of Human Movement") give thigh 0.245 H and leg 0.246 H of
# stature H, ratio 1.00; the CMU skeletons the lifter is trained on (H36M layout) give 0.97-1.23
# over 27 subjects, median 1.045. Forearm / upper arm: Winter 0.146 H / 0.186 H = 0.78; CMU
# 0.77-1.02, median 0.94 (its wrist is further out). The shank range is 1.00 +- 6 %, which
# holds the CMU median; the arm range covers both sources. On the rendered example (true ratio
# 1.02, lifter 1.15) clamping the shank to 1.06 lowers MPJPE by 0.8 mm.
SHIN_THIGH_RANGE = (0.94, 1.06)
FOREARM_UPPERARM_RANGE = (0.75, 1.02)

# (parent bone child joint, child bone child joint) pairs, per side: bone k ends at joint k.
_LIMB_PAIRS = (
    ((2, 3), (5, 6), SHIN_THIGH_RANGE),           # thigh ends at knee, shin at ankle
    ((15, 16), (12, 13), FOREARM_UPPERARM_RANGE),  # upper arm ends at elbow, forearm at wrist
)


def default_focal(width: int, height: int) -> float:
    """Focal length in pixels assumed when none is given: the longer image side.

    That is a 53-degree field of view across the longer side, between a phone's main camera
    (about 0.75 x the longer side) and a short telephoto; the rendered benchmark uses 0.75-1.25.
    """
    return float(max(width, height))


def plausible_bone_lengths(lengths: np.ndarray) -> tuple[np.ndarray, dict]:
    """Constrain a clip's bone lengths to anthropometric ratios.

    For the leg (thigh, shank) and the arm (upper arm, forearm), if the ratio child / parent is
    outside its range (:data:`SHIN_THIGH_RANGE`, :data:`FOREARM_UPPERARM_RANGE`) it is clamped
    into it, keeping the limb's total length (which the image constrains best).

    Args:
        lengths: (16,) metres, bone ending at joint j is ``lengths[j - 1]`` (left = right).
    Returns:
        (16,) adjusted lengths and a report ``{"shin_thigh": [before, after],
        "forearm_upperarm": [before, after]}``.
    """
    out = np.array(lengths, dtype=np.float64)
    report = {}
    for (p1, c1), (p2, c2), (lo, hi) in _LIMB_PAIRS:
        name = "shin_thigh" if c1 == 3 else "forearm_upperarm"
        ratio = out[c1 - 1] / max(out[p1 - 1], 1e-9)
        new = float(np.clip(ratio, lo, hi))
        for p, c in ((p1, c1), (p2, c2)):
            total = out[p - 1] + out[c - 1]
            out[p - 1] = total / (1 + new)
            out[c - 1] = total * new / (1 + new)
        report[name] = [round(float(ratio), 4), round(new, 4)]
    return out, report


def symmetric_hips(pose: np.ndarray) -> np.ndarray:
    """Put the pelvis midway between the hips, each hip moving with its whole leg.

    posecli's pelvis is mid-hips by definition (in 2D, and in the CMU truth to 1e-13 m); the
    lifter gets close but not exactly there. A rig whose two hips hang off one joint rotation
    (the BVH ``Hips``) needs them symmetric. (The thorax is *not* mid-shoulders in 3D: the CMU
    thorax sits ~70 mm from it, so the shoulders get their own joints in the BVH instead.)

    Args:
        pose: (N, 17, 3) joints, any frame.
    Returns:
        (N, 17, 3) with ``pose[:, 0] == (pose[:, 1] + pose[:, 4]) / 2``.
    """
    out = np.array(pose, dtype=np.float64)
    mid = (out[:, 1] + out[:, 4]) / 2
    delta = (out[:, 0] - mid)[:, None]
    out[:, [1, 2, 3, 4, 5, 6]] += delta
    return out


def square_hips(pose: np.ndarray) -> np.ndarray:
    """Turn the hip line about the pelvis, in the plane it spans with the lower spine, until it
    is square to the lower spine (pelvis -> H36M spine joint); each leg moves with its hip.

    The lifter's hip line leans 2-8 degrees off square to the lower spine (the CMU truth 2 on
    average); a rig whose hips and first spine joint hang off one root rotation (the BVH
    ``Hips``, with ``Spine`` up the lower back as in Mixamo's rig) needs it square. Each hip
    moves by half the hip width times the lean (about 8 mm at 6 degrees).

    Args:
        pose: (N, 17, 3) joints with the pelvis at mid-hips (:func:`symmetric_hips`).
    Returns:
        (N, 17, 3), hip width and every bone length kept.
    """
    out = np.array(pose, dtype=np.float64)
    up = out[:, 7] - out[:, 0]
    up = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    half = (out[:, 4] - out[:, 1]) / 2
    width = np.linalg.norm(half, axis=-1, keepdims=True)
    square = half - (half * up).sum(-1, keepdims=True) * up
    square *= width / np.maximum(np.linalg.norm(square, axis=-1, keepdims=True), 1e-12)
    out[:, [4, 5, 6]] += (out[:, 0] + square - out[:, 4])[:, None]
    out[:, [1, 2, 3]] += (out[:, 0] - square - out[:, 1])[:, None]
    return out


def root_translation(pose3d: np.ndarray, keypoints: np.ndarray, conf: np.ndarray,
                     width: int, height: int, focal: float) -> np.ndarray:
    """Pelvis position in the camera frame that makes the 3D pose project onto the 2D track.

    For each frame, solves for t = (tx, ty, tz) minimising the confidence-weighted
    perspective residuals, linearised: f (X_j + tx) - (u_j - cx) (Z_j + tz) = 0 and the same
    in y, with (cx, cy) the image centre. The depth tz is what makes the skeleton's image size
    match its 3D size.

    Args:
        pose3d: (N, 17, 3) root-relative metres, camera axes; keypoints: (N, 17, 2) px;
        conf: (N, 17) weights; focal: px.
    Returns:
        (N, 3) metres, camera frame. Frames whose system is degenerate get NaN.
    """
    x = np.asarray(pose3d, float)
    u = np.asarray(keypoints, float) - np.array([width / 2, height / 2])
    w = np.clip(np.asarray(conf, float), 0.05, 1.0)
    n, j = u.shape[:2]
    a = np.zeros((n, j, 2, 3))
    b = np.zeros((n, j, 2))
    a[:, :, 0, 0] = focal
    a[:, :, 0, 2] = -u[..., 0]
    b[:, :, 0] = u[..., 0] * x[..., 2] - focal * x[..., 0]
    a[:, :, 1, 1] = focal
    a[:, :, 1, 2] = -u[..., 1]
    b[:, :, 1] = u[..., 1] * x[..., 2] - focal * x[..., 1]
    a = a.reshape(n, 2 * j, 3)
    b = b.reshape(n, 2 * j)
    ww = np.repeat(w, 2, axis=1)
    ata = np.einsum("nki,nk,nkj->nij", a, ww, a)
    atb = np.einsum("nki,nk,nk->ni", a, ww, b)
    t = np.full((n, 3), np.nan)
    ok = np.abs(np.linalg.det(ata)) > 1e-9
    t[ok] = np.linalg.solve(ata[ok], atb[ok][..., None])[..., 0]
    t[t[:, 2] <= 0.1] = np.nan  # behind or at the camera: not a solution
    return t


def fill_nan(x: np.ndarray) -> np.ndarray:
    """(N, ...) with NaN rows -> linearly interpolated inside, held at the ends (per column)."""
    x = np.array(x, dtype=np.float64)
    flat = x.reshape(len(x), -1)
    idx = np.arange(len(x))
    for c in range(flat.shape[1]):
        good = np.isfinite(flat[:, c])
        if good.any() and not good.all():
            flat[:, c] = np.interp(idx, idx[good], flat[good, c])
    return flat.reshape(x.shape)


def smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 with reflected edges. x: (N, ...); sigma in frames."""
    x = np.asarray(x, dtype=np.float64)
    if sigma <= 0 or len(x) < 3:
        return x.copy()
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(x, [(r, r)] + [(0, 0)] * (x.ndim - 1), mode="reflect" if len(x) > r else "edge")
    out = np.zeros_like(x)
    for i, kv in enumerate(k):
        out += kv * pad[i:i + len(x)]
    return out


def body_up(joints: np.ndarray) -> np.ndarray:
    """(N, 17, 3) camera-frame joints -> (3,) unit "up" of the body, averaged over the clip:
    mid-ankles to head top (vertical on average for standing, walking, running people)."""
    v = joints[:, 10] - (joints[:, 3] + joints[:, 6]) / 2
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
    m = v.mean(axis=0)
    return m / max(np.linalg.norm(m), 1e-9)


def fit_floor(joints: np.ndarray, min_spread: float = 0.3,
              max_tilt_deg: float = 25.0) -> tuple[np.ndarray, float]:
    """Fit one floor plane for the whole clip from the lowest foot positions.

    Per frame the lower ankle (along the body's mean up, :func:`body_up`) is the stance foot;
    the lower 60 % of those points (airborne frames excluded) are fitted by a plane. Where the
    points do not span the floor (std below ``min_spread`` m across the second direction: a
    person walking along a line), the plane's tilt about that line comes from the body's up;
    a fitted normal more than ``max_tilt_deg`` from the body's up is not trusted either.
    The floor lies :data:`ANKLE_HEIGHT` below the median stance ankle. One plane for the whole
    clip: jumps stay jumps.

    Args:
        joints: (N, 17, 3) absolute camera-frame metres (frames with a person).
    Returns:
        up: (3,) unit floor normal (pointing up) in the camera frame; d: the floor is
        ``{p : up . p == d}`` (metres).
    """
    up0 = body_up(joints)
    up = up0
    for _ in range(2):
        ank = joints[:, [3, 6]]
        h = ank @ up
        stance = ank[np.arange(len(ank)), np.argmin(h, axis=1)]
        hs = stance @ up
        pts = stance[hs <= np.percentile(hs, 60)] if len(stance) >= 5 else stance
        c = pts - pts.mean(axis=0)
        if len(pts) >= 3:
            _, s, vt = np.linalg.svd(c, full_matrices=False)
            s = s / np.sqrt(len(pts))
        else:
            s, vt = np.zeros(3), np.eye(3)
        if s[1] > min_spread:
            n = vt[2]
        elif s[0] > min_spread:
            line = vt[0]
            n = up0 - (up0 @ line) * line
        else:
            n = up0
        n = n / np.linalg.norm(n)
        if n @ up0 < 0:
            n = -n
        if np.degrees(np.arccos(np.clip(n @ up0, -1, 1))) > max_tilt_deg:
            n = up0
        up = n
    d = float(np.median(pts @ up)) - ANKLE_HEIGHT
    return up, d


def world_rotation(up: np.ndarray) -> np.ndarray:
    """(3, 3) rotation camera -> world for a floor normal ``up`` (camera frame).

    Rows are the world axes in camera coordinates: X = camera x made horizontal, Y = up,
    Z = X x Y (towards the camera). ``world = R @ camera``.
    """
    y = up / np.linalg.norm(up)
    x = np.array([1.0, 0.0, 0.0]) - y[0] * y
    if np.linalg.norm(x) < 1e-6:  # camera looking straight down the up axis
        x = np.array([0.0, 0.0, 1.0]) - y[2] * y
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    return np.stack([x, y, z])


# With the 2D track: a foot that is the stiller of the two both in the world and in the image
# is planted up to this height (m; the lifted ankle can sit high while the root path and the
# stride disagree), and a foot moving in the image faster than STILL_2D_RATIO times the other
# (plus STILL_2D_SLACK body heights per second) is not planted. Chosen on the rendered example
# (contacts recall 0.80 -> 0.89, precision 0.59 -> 0.56 against the strict truth rule).
STILLER_HEIGHT = 0.26
STILL_2D_RATIO, STILL_2D_SLACK = 1.3, 0.1
CONTACT_GAP_S = 0.07  # a contact broken for at most this long (s) is one contact


def foot_contacts(world: np.ndarray, fps: float, height: float = ANKLE_HEIGHT + CONTACT_HEIGHT,
                  speed: float = CONTACT_SPEED, smooth_s: float = CONTACT_SMOOTH_S,
                  keypoints: np.ndarray | None = None) -> np.ndarray:
    """Per-frame foot contact flags: the ankle near the floor and nearly still.

    Args:
        world: (N, 17, 3) world metres (Y up, floor at 0); fps: frames per second.
        height: max ankle height (m); speed: max ankle speed (m/s, central differences);
        smooth_s: Gaussian sigma (s) applied to the ankle track first.
        keypoints: (N, 17, 2) the 2D track (px), or None for the 3D rule alone. With it, the
            image decides which foot is the planted one where the world path is unsure:
            see :data:`STILLER_HEIGHT` and :data:`STILL_2D_RATIO`.
    Returns:
        (N, 2) bool, columns (right, left).
    """
    ank = smooth(world[:, [3, 6]], smooth_s * fps)
    vel = np.gradient(ank, axis=0) * fps if len(ank) > 1 else np.zeros_like(ank)
    rule = (ank[..., 1] <= height) & (np.linalg.norm(vel, axis=-1) <= speed)
    if keypoints is None or len(ank) < 2:
        return rule
    kp = np.asarray(keypoints, float)
    body = max(float(np.median(np.linalg.norm(kp[:, 10] - (kp[:, 3] + kp[:, 6]) / 2, axis=-1))), 1.0)
    s2 = np.linalg.norm(np.gradient(smooth(kp[:, [3, 6]], smooth_s * fps), axis=0), axis=-1) * fps / body
    s3 = np.linalg.norm(vel[..., [0, 2]], axis=-1)
    other = lambda a: a[:, ::-1]  # noqa: E731 (the other foot's value)
    not_faster = s2 <= STILL_2D_RATIO * other(s2) + STILL_2D_SLACK
    stiller = (s3 <= other(s3)) & (s2 <= other(s2)) & (ank[..., 1] <= STILLER_HEIGHT)
    return close_gaps((rule & not_faster) | stiller, max(1, round(CONTACT_GAP_S * fps)))


def close_gaps(flags: np.ndarray, gap: int) -> np.ndarray:
    """(N, K) bool -> the same with runs of False of at most ``gap`` frames between two True
    runs filled (a planted foot flickering off for a frame is still planted)."""
    out = np.array(flags, bool)
    for k in range(out.shape[1]):
        on = np.flatnonzero(out[:, k])
        for a, b in zip(on[:-1], on[1:]):
            if 1 < b - a <= gap + 1:
                out[a:b, k] = True
    return out


@dataclass
class Trajectory:
    """The estimated placement of the body in the world.

    world: (N, 17, 3) joints, world metres (see module docstring); every frame filled (frames
        without a person hold the nearest estimate).
    contacts: (N, 2) bool (right, left) foot contact.
    rotation: (3, 3) camera -> world rotation; origin: (3,) world origin in camera metres.
    pelvis_camera: (N, 3) the smoothed pelvis in the camera frame (metres).
    focal: px; root_motion: False when the pelvis was kept in place (``--no-root-motion``).
    """
    world: np.ndarray
    contacts: np.ndarray
    rotation: np.ndarray
    origin: np.ndarray
    pelvis_camera: np.ndarray
    focal: float
    root_motion: bool

    def info(self) -> dict:
        """The JSON ``world`` block (no per-frame data)."""
        return {
            "estimated": True,
            "root_motion": self.root_motion,
            "focal_px": round(self.focal, 3),
            "camera_to_world": np.round(self.rotation, 8).tolist(),
            "origin_camera": np.round(self.origin, 6).tolist(),
            "axes": "metres; Y up, floor at Y=0, X = the camera's x (image right) laid onto the "
                    "floor, Z = X x Y (towards the camera); origin on the floor under the pelvis "
                    "of the first frame with a person",
            "method": "pinhole camera (principal point at the image centre), pelvis from the 2D "
                      "track against the 3D skeleton's size, Gaussian smoothing; one floor plane "
                      "for the clip from the stance ankles",
        }


def pan_rotations(shift: np.ndarray, focal: float) -> np.ndarray:
    """(N, 2) background shift px -> (N, 3, 3) camera rotations taking each frame's camera axes
    to the first frame's (x right, y down, z forward): pan about y, then tilt about x."""
    a = np.arctan2(-shift[:, 0], focal)   # background moving left: the camera turned right
    b = np.arctan2(-shift[:, 1], focal)   # background moving up: the camera tilted down
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    n = len(shift)
    ry = np.zeros((n, 3, 3))
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 1, 1], ry[:, 2, 0], ry[:, 2, 2] = ca, sa, 1, -sa, ca
    rx = np.zeros((n, 3, 3))
    rx[:, 0, 0], rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = 1, cb, sb, -sb, cb
    return ry @ rx


def estimate(pose3d: np.ndarray, keypoints: np.ndarray, conf: np.ndarray, flags: np.ndarray,
             width: int, height: int, fps: float, focal: float | None = None,
             root_motion: bool = True, smooth_s: tuple[float, float, float] = (0.05, 0.05, 0.15),
             camera_shift: np.ndarray | None = None) -> Trajectory:
    """Place a root-relative 3D track in the world.

    Args:
        pose3d: (N, 17, 3) root-relative metres, camera axes; keypoints (N, 17, 2) px;
        conf (N, 17); flags (N,) as in :mod:`posecli.skeleton`; fps; focal px (default
        :func:`default_focal`); smooth_s: Gaussian sigma (s) for the pelvis's camera x, y, z
        (depth is the noisiest); camera_shift: (N, 2) px, how far the background has moved in
        the image since the first frame (:mod:`posecli.camera_motion`), or None for a static
        camera: each frame's pelvis is then turned from its own camera's axes into the first
        frame's (a pan or tilt no longer turns a walk into walking on the spot), and foot
        contacts read the 2D track steadied by the same shift. The body keeps the orientation
        its own frame's camera sees.
    Returns:
        A :class:`Trajectory`.
    """
    focal = float(focal) if focal else default_focal(width, height)
    pose3d = np.asarray(pose3d, float)
    seen = np.asarray(flags) != skeleton.MISSING
    if not seen.any():
        seen = np.ones(len(pose3d), bool)
    t = root_translation(pose3d, keypoints, conf, width, height, focal)
    if camera_shift is not None:
        t = np.einsum("nij,nj->ni", pan_rotations(np.asarray(camera_shift, float), focal), t)
        keypoints = np.asarray(keypoints, float) - np.asarray(camera_shift, float)[:, None]
    t[~seen] = np.nan
    if not np.isfinite(t).all(axis=1).any():
        t[:] = [0.0, 0.0, 3.0]
    t = fill_nan(t)
    t = np.stack([smooth(t[:, k], s * fps) for k, s in enumerate(smooth_s)], axis=1)
    pose = pose3d.copy()
    idx = np.arange(len(pose))
    if not seen.all():  # hold the nearest seen pose in frames without a person
        near = np.searchsorted(idx[seen], idx).clip(0, seen.sum() - 1)
        prev = (near - 1).clip(0)
        s_idx = idx[seen]
        pick = np.where(np.abs(s_idx[prev] - idx) < np.abs(s_idx[near] - idx), s_idx[prev], s_idx[near])
        pose = pose[pick]
    cam = pose + t[:, None]
    up, d = fit_floor(cam[seen])
    rot = world_rotation(up)
    first = int(np.argmax(seen))
    origin = t[first] - (t[first] @ up - d) * up  # floor point under the first pelvis
    if root_motion:
        world = (cam - origin) @ rot.T
    else:
        pelvis = (t - origin) @ rot.T
        fixed = np.array([0.0, float(np.median(pelvis[seen, 1])), 0.0])
        world = pose @ rot.T + fixed
    return Trajectory(world=world, contacts=foot_contacts(world, fps, keypoints=keypoints), rotation=rot,
                      origin=origin, pelvis_camera=t, focal=focal, root_motion=root_motion)
