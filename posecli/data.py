"""Datasets for training and evaluating the lifter.

Three sources, one interface (a list of :class:`Sequence` for evaluation and a window sampler
for training):

- **CMU motion capture** (``shared/data/mocap/cmu_h36m.npz``): 3D only. 2D inputs come from
  random *virtual cameras* drawn per training window (distance, height, full yaw, pitch/look-at
  offset, roll, focal length, image size/aspect, mild radial distortion), plus bone-length
  scaling, speed resampling, detector-like 2D noise (per-joint jitter scaled to the person's
  size, smooth drift, rare large outliers, rare left/right swaps, dropped joints and frames
  filled like :func:`posecli.skeleton.fill_gaps` does at inference) and flip augmentation.
- **HumanEva-I** (``shared/data/humaneva/``, VideoPose3D ``humaneva15`` format, 15 joints) with
  the ground-truth 2D of its 3 cameras and ``cameras.json`` extrinsics.
- **Any VideoPose3D-format npz pair** (``data_3d_*.npz`` + ``data_2d_*.npz``), e.g. Human3.6M
  with the standard split, cameras from a pickle like ``shared/data/h36m/mmpose_tests_cameras.pkl``.

Conventions: 2D inputs are normalised with :func:`posecli.skeleton.normalize_to_frame`;
3D targets are root-relative metres in camera axes (OpenCV: x right, y down, z forward).
"""
from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posecli.skeleton import LEFT, NECK_FRACTION, NUM_JOINTS, PARENTS, RIGHT, fill_gaps, mirror, normalize_to_frame

HELD_OUT_CMU = ("07", "13", "85")

# HumanEva-15 layout of VideoPose3D (prepare_data_humaneva.py, 15-joint variant).
HE_JOINTS: tuple[str, ...] = (
    "pelvis", "thorax", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "head",
)
HE_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1)
HE_LEFT: tuple[int, ...] = (2, 3, 4, 8, 9, 10)
HE_RIGHT: tuple[int, ...] = (5, 6, 7, 11, 12, 13)
# H36M-17 index of every HumanEva-15 joint (head = head top; thorax = thorax).
HE_TO_H36M: tuple[int, ...] = (0, 8, 11, 12, 13, 14, 15, 16, 4, 5, 6, 1, 2, 3, 10)
H36M_NAMES = ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
              "thorax", "neck_nose", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder",
              "r_elbow", "r_wrist")


def shared_data_dir() -> Path:
    """``$POSECLI_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("POSECLI_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class Layout:
    """A skeleton layout: joint names, parents and left/right pairs."""
    names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]

    @property
    def joints(self) -> int:
        return len(self.names)

    def flip_permutation(self) -> np.ndarray:
        perm = np.arange(self.joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm


H36M = Layout(H36M_NAMES, PARENTS, LEFT, RIGHT)
HUMANEVA = Layout(HE_JOINTS, HE_PARENTS, HE_LEFT, HE_RIGHT)


@dataclass
class Sequence:
    """One evaluation/training sequence seen by one camera.

    x: (N, J, 2) normalised 2D; y: (N, J, 3) root-relative camera-frame 3D metres.
    """
    x: np.ndarray
    y: np.ndarray
    subject: str
    action: str
    camera: str
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Geometry

def look_at(cam: np.ndarray, target: np.ndarray, up: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """World->camera rotation (3, 3), OpenCV axes, for a camera at ``cam`` looking at ``target``.

    Rows are the camera's x (right), y (down), z (forward) axes in world coordinates.
    """
    z = target - cam
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    if roll:
        c, s = np.cos(roll), np.sin(roll)
        r = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ r
    return r


def project(xc: np.ndarray, f: float | np.ndarray, c: np.ndarray, k1: float = 0.0) -> np.ndarray:
    """Pinhole (+ optional 1-term radial distortion) projection. (..., 3) camera -> (..., 2) px."""
    uv = xc[..., :2] / xc[..., 2:3]
    if k1:
        uv = uv * (1 + k1 * (uv ** 2).sum(-1, keepdims=True))
    return uv * f + c


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) -> (3, 3) rotation matrix."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def synthesise_like_inference(xy: np.ndarray) -> np.ndarray:
    """Replace the H36M-17 joints that inference synthesises from BlazePose. (..., 17, 2).

    pelvis = mid-hips, thorax = mid-shoulders, spine = mid(pelvis, thorax), neck_nose =
    thorax + 0.665 (head - thorax), as in :func:`posecli.skeleton.blazepose_to_h36m`.
    """
    out = np.array(xy, copy=True)
    out[..., 0, :] = (xy[..., 1, :] + xy[..., 4, :]) / 2
    out[..., 8, :] = (xy[..., 11, :] + xy[..., 14, :]) / 2
    out[..., 7, :] = (out[..., 0, :] + out[..., 8, :]) / 2
    out[..., 9, :] = out[..., 8, :] + NECK_FRACTION * (xy[..., 10, :] - out[..., 8, :])
    return out


# ---------------------------------------------------------------------------------------------
# CMU motion capture

@dataclass
class MocapClip:
    world: np.ndarray  # (N, 17, 3) metres, Y up
    subject: str
    name: str


# Clips whose head is held more than 60 degrees off the torso axis for most frames.
BAD_CMU_CLIPS = frozenset({"60_06", "60_07"})
# Shin/thigh ratio of the cgspeed MB / ASF / Max skeletons (mean 1.01) and adult anatomy (~1.0);
# the Daz rig is "hip-corrected" to 1.23 (thigh 0.368 m, shin 0.454 m): its hips sit low.
REFERENCE_SHIN_THIGH = 1.01
T_POSE_JUMP_M = 0.3  # a joint moving this far in one 30 fps frame (9 m/s) is a rig reset, not motion


def cmu_files(more: bool = False) -> tuple[Path, ...]:
    """``cmu_h36m.npz`` and, with ``more``, ``cmu_more.npz`` from the shared data folder."""
    base = shared_data_dir() / "mocap"
    return (base / "cmu_h36m.npz",) + ((base / "cmu_more.npz",) if more else ())


def raise_daz_hips(world: np.ndarray, ratio: float = REFERENCE_SHIN_THIGH) -> np.ndarray:
    """Move a Daz-rig clip's hip joints up the torso to where the other skeletons put them.

    (N, >=17, 3) world metres, Y up -> same shape. Each hip rises by d along the pelvis's up
    axis (pelvis -> spine, made orthogonal to the hip axis) and each thigh grows by d along its
    own direction, so that shin/thigh becomes ``ratio``. The knees of a standing pose stay where
    they were (hip up d, thigh longer by d); bone lengths stay constant over the clip; ankles and
    toes move with their knee; the pelvis stays the midpoint of the hips.
    """
    w = np.array(world, dtype=np.float64, copy=True)
    thigh = np.linalg.norm(w[:, 2] - w[:, 1], axis=-1).mean()
    shin = np.linalg.norm(w[:, 3] - w[:, 2], axis=-1).mean()
    d = shin / ratio - thigh
    if d <= 0:
        return world
    across = w[:, 1] - w[:, 4]
    across /= np.linalg.norm(across, axis=-1, keepdims=True) + 1e-9
    up = w[:, 7] - w[:, 0]
    up -= (up * across).sum(-1, keepdims=True) * across
    up /= np.linalg.norm(up, axis=-1, keepdims=True) + 1e-9
    # (hip, knee, [ankle, toe...]) per side; toes (17 r, 18 l) exist in the raw 19-joint data
    sides = ((1, 2, [3] + ([17] if w.shape[1] > 17 else [])), (4, 5, [6] + ([18] if w.shape[1] > 18 else [])))
    for hip, knee, below in sides:
        u = w[:, knee] - w[:, hip]
        u /= np.linalg.norm(u, axis=-1, keepdims=True) + 1e-9
        new_hip = w[:, hip] + d * up
        new_knee = new_hip + (thigh + d) * u
        shift = new_knee - w[:, knee]
        w[:, hip], w[:, knee] = new_hip, new_knee
        for j in below:
            w[:, j] += shift
    w[:, 0] = (w[:, 1] + w[:, 4]) / 2
    return w.astype(world.dtype)


def load_cmu(path: str | Path | tuple | list | None = None, subjects: tuple[str, ...] | None = None,
             exclude: tuple[str, ...] = (), clean: bool = False) -> list[MocapClip]:
    """CMU clips as world-space H36M-17 joints (toes dropped), Y up, metres.

    ``path``: one npz or several (default ``cmu_h36m.npz``). ``clean``: drop a first frame that
    jumps (the Daz rig's T-pose), skip :data:`BAD_CMU_CLIPS`, and move the Daz rig's hips up
    (:func:`raise_daz_hips`). Evaluation keeps ``clean=False`` so held-out figures stay
    comparable across versions.
    """
    paths = [Path(p) for p in path] if isinstance(path, (tuple, list)) else [Path(path) if path else cmu_files()[0]]
    clips = []
    for file in paths:
        d = np.load(file)
        pos = d["positions"].astype(np.float32)
        root = d["root"].astype(np.float32)
        starts = d["clip_start"]
        ends = np.r_[starts[1:], len(pos)]
        for i, (s, e) in enumerate(zip(starts, ends)):
            subj, name = str(d["subject"][i]), str(d["clip_name"][i])
            if (subjects is not None and subj not in subjects) or subj in exclude:
                continue
            world = pos[s:e] + root[s:e, None]
            if clean:
                if name in BAD_CMU_CLIPS:
                    continue
                if len(world) > 1 and np.abs(world[1] - world[0]).max() > T_POSE_JUMP_M:
                    world = world[1:]
                if str(d["skeleton"][i]) == "cgspeed_daz":
                    world = raise_daz_hips(world)
            clips.append(MocapClip(world[:, :NUM_JOINTS], subj, name))
    return clips


@dataclass(frozen=True)
class CameraAug:
    """Ranges of the random virtual cameras (metres, degrees)."""
    distance: tuple[float, float] = (2.0, 9.0)      # horizontal distance camera -> person
    height: tuple[float, float] = (0.2, 3.0)        # camera height above the floor
    target_height: tuple[float, float] = (0.4, 1.3)  # look-at point height
    hfov: tuple[float, float] = (35.0, 90.0)        # horizontal field of view of the longer side
    off_centre: float = 0.5                         # look-at offset, fraction of half the FOV
    roll: float = 4.0                               # std of roll
    k1: float = 0.08                                # radial distortion in [-k1, k1]
    sizes: tuple[tuple[int, int], ...] = ((1920, 1080), (1280, 720), (640, 480), (1440, 1080),
                                          (1080, 1920), (720, 1280), (1080, 1080), (1000, 1002))
    p_high: float = 0.0                             # fraction of high cameras looking down
    high_height: tuple[float, float] = (2.5, 6.0)
    high_distance: tuple[float, float] = (2.5, 8.0)


def random_camera(rng: np.random.Generator, world: np.ndarray, aug: CameraAug = CameraAug(),
                  tries: int = 20) -> dict:
    """Draw a static camera that sees all joints of ``world`` (T, J, 3, Y up) inside the frame.

    Returns dict(R (3,3) world->camera, t (3,) camera centre, f, c (2,), k1, w, h).
    """
    centre = world[:, 0].mean(0)
    best, best_out = None, np.inf
    for _ in range(tries):
        w, h = aug.sizes[rng.integers(len(aug.sizes))]
        fov = np.deg2rad(rng.uniform(*aug.hfov))
        f = max(w, h) / 2 / np.tan(fov / 2)
        yaw = rng.uniform(0, 2 * np.pi)
        high = rng.random() < aug.p_high
        dist = rng.uniform(*(aug.high_distance if high else aug.distance))
        cam = centre + np.array([np.sin(yaw) * dist, 0.0, np.cos(yaw) * dist])
        cam[1] = rng.uniform(*(aug.high_height if high else aug.height))
        target = np.array([centre[0], rng.uniform(*aug.target_height), centre[2]])
        r = look_at(cam, target, np.array([0.0, 1.0, 0.0]), np.deg2rad(rng.normal(0, aug.roll)))
        # off-centre subject: rotate the camera by a fraction of half the field of view
        half_x, half_y = np.arctan(w / 2 / f), np.arctan(h / 2 / f)
        ax, ay = rng.uniform(-1, 1, 2) * aug.off_centre * np.array([half_x, half_y])
        cy, sy, cx, sx = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay)
        r = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array(
            [[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]) @ r
        c = np.array([w / 2, h / 2]) + rng.normal(0, 0.01 * w, 2)
        k1 = rng.uniform(-aug.k1, aug.k1)
        xc = (world - cam) @ r.T
        if (xc[..., 2] < 0.5).any():
            continue
        uv = project(xc, f, c, k1)
        out = (np.maximum(0, -uv[..., 0]).max() + np.maximum(0, uv[..., 0] - w).max()
               + np.maximum(0, -uv[..., 1]).max() + np.maximum(0, uv[..., 1] - h).max())
        cand = dict(R=r, t=cam, f=f, c=c, k1=k1, w=w, h=h)
        if out == 0:
            return cand
        if out < best_out:
            best, best_out = cand, out
    if best is None:  # every try had a joint behind the camera: back off
        return random_camera(rng, world, CameraAug(**{**aug.__dict__, "distance": (8.0, 12.0)}), tries)
    return best


def view(world: np.ndarray, cam: dict) -> tuple[np.ndarray, np.ndarray]:
    """World (T, J, 3) -> (normalised 2D (T, J, 2), root-relative camera 3D (T, J, 3))."""
    xc = (world - cam["t"]) @ cam["R"].T
    uv = project(xc, cam["f"], cam["c"], cam["k1"])
    return uv, xc - xc[:, :1]


@dataclass(frozen=True)
class NoiseAug:
    """Detector-like corruption of 2D keypoints, in units of the person's 2D height."""
    p_clean: float = 0.2            # fraction of windows left clean
    jitter: tuple[float, float] = (0.0, 0.03)
    p_outlier: float = 0.004        # per joint-frame, upper end of a per-window rate
    outlier_scale: float = 0.15
    p_swap: float = 0.05            # per window: a short left/right swap of legs or arms
    p_dropout: float = 0.3          # per window: some joints/frames dropped and gap-filled
    joint_scale: tuple[float, ...] = (0.8, 1.0, 1.2, 1.5, 1.0, 1.2, 1.5, 0.8, 0.8, 1.0, 1.2,
                                      1.0, 1.2, 1.5, 1.0, 1.2, 1.5)


def corrupt_2d(rng: np.random.Generator, uv: np.ndarray, aug: NoiseAug = NoiseAug()) -> np.ndarray:
    """Add detector-like error to pixel keypoints (T, 17, 2) -> (T, 17, 2)."""
    if rng.random() < aug.p_clean:
        return uv
    t, j, _ = uv.shape
    size = np.median(uv[..., 1].max(1) - uv[..., 1].min(1)) + 1e-6
    sigma = rng.uniform(*aug.jitter) * size * np.asarray(aug.joint_scale)[:, None]
    white = rng.normal(0, 1, uv.shape)
    knots = max(2, t // 8)
    ctrl = rng.normal(0, 1, (knots, j, 2))
    smooth = np.stack([np.interp(np.linspace(0, knots - 1, t), np.arange(knots), ctrl[:, a, b])
                       for a in range(j) for b in range(2)], -1).reshape(t, j, 2)
    out = uv + sigma * (0.7 * white + 0.7 * smooth)
    p_out = rng.uniform(0, aug.p_outlier)
    mask = rng.random((t, j)) < p_out
    out[mask] += rng.normal(0, aug.outlier_scale * size, (mask.sum(), 2))
    if rng.random() < aug.p_swap:
        a = rng.integers(t)
        b = min(t, a + rng.integers(1, 9))
        pairs = (1, 2, 3, 4, 5, 6) if rng.random() < 0.6 else (11, 12, 13, 14, 15, 16)
        l, r = list(pairs[3:]), list(pairs[:3])
        out[a:b, l + r] = out[a:b, r + l]
    if rng.random() < aug.p_dropout:
        valid = np.ones(t, bool)
        conf = np.ones((t, j))
        for _ in range(rng.poisson(1.5) + 1):
            a = rng.integers(t)
            b = min(t, a + rng.integers(1, 21))
            if rng.random() < 0.3:
                valid[a:b] = False
            else:
                conf[a:b, rng.integers(j)] = 0.0
        if valid.any():
            out, _, _ = fill_gaps(out, conf, valid, max_gap=t)
    return out


def scale_bones(rng: np.random.Generator, world: np.ndarray, spread: float = 0.08) -> np.ndarray:
    """Random per-clip limb scaling, symmetric left/right. (T, 17, 3) -> (T, 17, 3)."""
    # bone groups by child joint: hips, thighs, shins, spine, neck, head, shoulders, upper arms, forearms
    group = {1: 0, 4: 0, 2: 1, 5: 1, 3: 2, 6: 2, 7: 3, 8: 3, 9: 4, 10: 5, 11: 6, 14: 6,
             12: 7, 15: 7, 13: 8, 16: 8}
    s = rng.uniform(1 - spread, 1 + spread, 9)
    out = np.empty_like(world)
    out[:, 0] = world[:, 0]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        out[:, j] = out[:, p] + (world[:, j] - world[:, p]) * s[group[j]]
    # keep the lowest joint's height as before so the floor stays where it was
    out[..., 1] += world[..., 1].min() - out[..., 1].min()
    return out


def resample(world: np.ndarray, start: float, speed: float, frames: int) -> np.ndarray:
    """Linear resampling of (N, J, 3) at ``start + speed * arange(frames)`` (edges held)."""
    pos = np.clip(start + speed * np.arange(frames), 0, len(world) - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, len(world) - 1)
    a = (pos - i0)[:, None, None]
    return world[i0] * (1 - a) + world[i1] * a


@dataclass(frozen=True)
class CmuAug:
    camera: CameraAug = CameraAug()
    noise: NoiseAug = NoiseAug()
    speed: tuple[float, float] = (0.5, 1.5)   # source frames per output frame (log-uniform)
    bone_spread: float = 0.08
    flip: bool = True
    synthesise: bool = True                    # build spine/neck/pelvis/thorax like inference
    p_tumble: float = 0.0                      # fraction of windows turned about a level axis
    tumble_deg: tuple[float, float] = (45.0, 180.0)


def tumble(rng: np.random.Generator, world: np.ndarray, deg: tuple[float, float]) -> np.ndarray:
    """Turn a window (T, J, 3, Y up) about a random level axis through its mean pelvis, by an
    angle in ``deg`` (degrees), and set its lowest joint on the floor: inverted, lying and
    rolling bodies, which 37 minutes of CMU barely hold."""
    a = rng.uniform(0, 2 * np.pi)
    axis = np.array([np.cos(a), 0.0, np.sin(a)])
    t = np.deg2rad(rng.uniform(*deg)) * rng.choice([-1.0, 1.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    r = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k
    centre = world[:, 0].mean(0)
    out = (world - centre) @ r.T + centre
    out[..., 1] -= out[..., 1].min()
    return out


# Augmentation aimed at the rendered benchmark's failures (high cameras looking down, inverted
# bodies, more limb-length variety); "v2" (CmuAug()) is the shipped v2 lifter's.
AUG_V3 = CmuAug(camera=CameraAug(p_high=0.25), bone_spread=0.12, p_tumble=0.05)


def cmu_window(rng: np.random.Generator, clip: MocapClip, frames: int,
               aug: CmuAug = CmuAug(), layout: "Layout | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """One augmented training window: (frames, J, 2) normalised 2D, (frames, J, 3) target.

    Bone scaling, inference-like joint synthesis and detector noise apply to the H36M-17
    layout only (``layout`` None or H36M); other layouts get cameras, speed and flips.
    """
    layout = layout or H36M
    h36m = layout.joints == NUM_JOINTS
    speed = float(np.exp(rng.uniform(np.log(aug.speed[0]), np.log(aug.speed[1]))))
    span = speed * (frames - 1)
    n = len(clip.world)
    start = rng.uniform(0, max(0.0, n - 1 - span)) if n - 1 > span else -(span - (n - 1)) * rng.random()
    world = resample(clip.world, start, speed, frames).astype(np.float64)
    if aug.bone_spread and h36m:
        world = scale_bones(rng, world, aug.bone_spread)
    if aug.p_tumble and rng.random() < aug.p_tumble:
        world = tumble(rng, world, aug.tumble_deg)
    cam = random_camera(rng, world, aug.camera)
    uv, y = view(world, cam)
    if aug.synthesise and h36m:
        uv = synthesise_like_inference(uv)
    if h36m:
        uv = corrupt_2d(rng, uv, aug.noise)
    x = normalize_to_frame(uv, cam["w"], cam["h"])
    y = y.astype(np.float32)
    if aug.flip and rng.random() < 0.5:
        x, y = mirror_np(x, layout), mirror_np(y, layout)
    return x, y


def mirror_np(a: np.ndarray, layout: Layout) -> np.ndarray:
    """Negate x and swap left/right joints. (..., J, D) -> (..., J, D)."""
    return mirror(a, layout.flip_permutation())


class CmuSampler:
    """Random augmented CMU windows; a clip is chosen with probability proportional to length."""

    def __init__(self, clips: list[MocapClip], frames: int, aug: CmuAug = CmuAug(),
                 layout: "Layout | None" = None):
        self.clips, self.frames, self.aug = clips, frames, aug
        lengths = np.array([len(c.world) for c in clips], dtype=np.float64)
        self.p = lengths / lengths.sum()
        self.layout = layout or H36M

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(size, T, J, 2) float32 inputs, (size, T, J, 3) float32 targets."""
        idx = rng.choice(len(self.clips), size=size, p=self.p)
        xs, ys = zip(*(cmu_window(rng, self.clips[i], self.frames, self.aug, self.layout) for i in idx))
        return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


# A narrower "typical video" camera: eye-level-ish (1.0-1.8 m high), 3-6 m away.
TYPICAL_CAMERA = CameraAug(distance=(3.0, 6.0), height=(1.0, 1.8), target_height=(0.8, 1.2))


def cmu_eval_sequences(clips: list[MocapClip], cameras_per_clip: int = 2, seed: int = 0,
                       synthesise: bool = True, aug: CameraAug = CameraAug()) -> list[Sequence]:
    """Held-out evaluation views: fixed-seed virtual cameras, clean GT 2D, native speed."""
    rng = np.random.default_rng(seed)
    out = []
    for clip in clips:
        for k in range(cameras_per_clip):
            world = clip.world.astype(np.float64)
            cam = random_camera(rng, world, aug)
            uv, y = view(world, cam)
            if synthesise:
                uv = synthesise_like_inference(uv)
            out.append(Sequence(normalize_to_frame(uv, cam["w"], cam["h"]), y.astype(np.float32),
                                clip.subject, clip.name, f"virtual{k}"))
    return out


# ---------------------------------------------------------------------------------------------
# VideoPose3D-format data (HumanEva-I, Human3.6M)

def load_humaneva_cameras(path: str | Path | None = None) -> dict:
    """cameras.json -> {subject: [dict(R world->camera (3,3), t centre metres (3,), id)]}, w, h."""
    path = Path(path) if path else shared_data_dir() / "humaneva" / "cameras.json"
    d = json.loads(Path(path).read_text())
    cams = {}
    for subj, lst in d["cameras"].items():
        cams[subj] = [dict(R=quat_to_matrix(c["orientation_wxyz"]).T,
                           t=np.asarray(c["translation_mm"], np.float64) / 1000, id=c["id"]) for c in lst]
    return dict(cameras=cams, w=d["resolution"][0], h=d["resolution"][1])


def load_humaneva(split: str = "Validate", actions: tuple[str, ...] = ("Walk", "Jog"),
                  root: str | Path | None = None, subjects: tuple[str, ...] = ("S1", "S2", "S3")
                  ) -> list[Sequence]:
    """HumanEva-I sequences (VideoPose3D humaneva15 files), one per (chunk, camera).

    ``split``: "Train" or "Validate". Action names are matched by prefix ("Walk" matches
    "Walking 1 chunk0"). x: (N, 15, 2) normalised GT 2D; y: (N, 15, 3) root-relative camera 3D.
    meta holds ``world`` (N, 15, 3) metres and the raw ``pixels`` (N, 15, 2).
    """
    root = Path(root) if root else shared_data_dir() / "humaneva"
    p3 = np.load(root / "data_3d_humaneva15.npz", allow_pickle=True)["positions_3d"].item()
    p2 = np.load(root / "data_2d_humaneva15_gt.npz", allow_pickle=True)["positions_2d"].item()
    cams = load_humaneva_cameras(root / "cameras.json")
    w, h = cams["w"], cams["h"]
    out = []
    for key in sorted(p3):
        sp, subj = key.split("/")
        if sp != split or subj not in subjects:
            continue
        for action in sorted(p3[key]):
            if not any(action.startswith(a) for a in actions):
                continue
            world = np.asarray(p3[key][action], np.float64)
            for ci, uv in enumerate(p2[key][action]):
                cam = cams["cameras"][subj][ci]
                xc = (world - cam["t"]) @ cam["R"].T
                out.append(Sequence(normalize_to_frame(uv, w, h), (xc - xc[:, :1]).astype(np.float32),
                                    subj, action.split(" ")[0], cam["id"],
                                    dict(world=world, pixels=np.asarray(uv), chunk=action, w=w, h=h)))
    return out


def load_vp3d(path_3d: str | Path, path_2d: str | Path, subjects: tuple[str, ...],
              cameras: str | Path | dict, layout: str = "h36m") -> list[Sequence]:
    """Generic VideoPose3D npz pair (e.g. Human3.6M: train S1,S5,S6,S7,S8; test S9,S11).

    ``cameras``: a pickle dict keyed (subject, camera_id) with R (world->camera), T (metres,
    camera translation so that Xc = R X + T ... or camera centre, see below), w, h -- the
    mmpose/VideoPose3D h36m format -- or an already loaded dict of the same form. The 3D
    positions in ``path_3d`` are world coordinates in metres; when the npz holds 32 H36M
    joints, the standard 17 are kept.
    """
    p3 = np.load(path_3d, allow_pickle=True)["positions_3d"].item()
    d2 = np.load(path_2d, allow_pickle=True)
    p2 = d2["positions_2d"].item()
    if not isinstance(cameras, dict):
        with open(cameras, "rb") as f:
            cameras = pickle.load(f)
    keep32 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
    out = []
    for subj in subjects:
        cam_keys = sorted(k for k in cameras if k[0] == subj)
        for action in sorted(p3.get(subj, {})):
            world = np.asarray(p3[subj][action], np.float64)
            if world.shape[1] == 32:
                world = world[:, keep32]
            for ci, uv in enumerate(p2[subj][action]):
                cam = cameras[cam_keys[ci]]
                r = np.asarray(cam["R"], np.float64)
                t = np.asarray(cam["T"], np.float64).reshape(3)
                # mmpose's h36m cameras store T as the camera centre in world coordinates
                # (Xc = R (X - T)); a translation-vector convention gives the same root-relative
                # pose because the root is subtracted.
                xc = (world - t) @ r.T
                n = min(len(uv), len(xc))
                out.append(Sequence(normalize_to_frame(np.asarray(uv)[:n, :, :2], cam["w"], cam["h"]),
                                    (xc[:n] - xc[:n, :1]).astype(np.float32), subj,
                                    action.split(" ")[0], str(cam.get("name", ci))))
    return out


class SequenceSampler:
    """Random windows from fixed sequences (HumanEva, Human3.6M) with flip augmentation."""

    def __init__(self, seqs: list[Sequence], frames: int, layout: Layout, flip: bool = True):
        self.seqs, self.frames, self.layout, self.flip = seqs, frames, layout, flip
        lengths = np.array([len(s.x) for s in seqs], dtype=np.float64)
        self.p = lengths / lengths.sum()

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for i in rng.choice(len(self.seqs), size=size, p=self.p):
            s = self.seqs[i]
            n, t = len(s.x), self.frames
            if n >= t:
                a = rng.integers(0, n - t + 1)
                x, y = s.x[a:a + t], s.y[a:a + t]
            else:
                before = rng.integers(0, t - n + 1)
                idx = np.r_[np.zeros(before, int), np.arange(n), np.full(t - n - before, n - 1)]
                x, y = s.x[idx], s.y[idx]
            if self.flip and rng.random() < 0.5:
                x, y = mirror_np(x, self.layout), mirror_np(y, self.layout)
            xs.append(x)
            ys.append(y)
        return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


class MixedSampler:
    """Draw each batch's windows from two samplers: a fraction ``p_second`` from the second."""

    def __init__(self, first, second, p_second: float):
        self.first, self.second, self.p = first, second, p_second
        self.layout = first.layout

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        k = int(rng.binomial(size, self.p))
        parts = [s.batch(rng, n) for s, n in ((self.first, size - k), (self.second, k)) if n > 0]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# HumanEva-like virtual cameras: 640x480, f ~ 680-760 px, 2.5-6 m away, 1.2-2.0 m high.
HUMANEVA_CAMERA = CameraAug(distance=(2.5, 6.0), height=(1.2, 2.0), target_height=(0.9, 1.4),
                            hfov=(44.0, 52.0), off_centre=0.3, roll=2.0, k1=0.05, sizes=((640, 480),))


def humaneva_world_clips(seqs: list[Sequence]) -> list[MocapClip]:
    """Unique world trajectories of HumanEva sequences, turned Y up: (x, y, z) -> (x, z, -y)."""
    seen, clips = set(), []
    for s in seqs:
        key = (s.subject, s.meta["chunk"])
        if key in seen:
            continue
        seen.add(key)
        w = s.meta["world"]
        clips.append(MocapClip(np.stack([w[..., 0], w[..., 2], -w[..., 1]], -1), s.subject, s.meta["chunk"]))
    return clips


def humaneva_virtual_sampler(seqs: list[Sequence], frames: int, h36m: bool = False) -> CmuSampler:
    """Virtual HumanEva-like camera views of the training sequences' 3D (15 joints, or the
    H36M-17 layout of :func:`humaneva_as_h36m` when ``h36m``). Clean 2D, no bone scaling."""
    aug = CmuAug(camera=HUMANEVA_CAMERA, noise=NoiseAug(p_clean=1.0), speed=(0.8, 1.25),
                 bone_spread=0.0, synthesise=False)
    clips = humaneva_world_clips(seqs)
    if not h36m:
        return CmuSampler(clips, frames, aug, HUMANEVA)
    for c in clips:
        w = np.zeros((len(c.world), NUM_JOINTS, 3))
        w[:, list(HE_TO_H36M)] = c.world
        w[:, 7] = (w[:, 0] + w[:, 8]) / 2
        w[:, 9] = w[:, 8] + NECK_FRACTION * (w[:, 10] - w[:, 8])
        c.world = w
    return CmuSampler(clips, frames, aug, H36M)


def humaneva_as_h36m(seqs: list[Sequence]) -> list[Sequence]:
    """HumanEva-15 sequences in the H36M-17 layout (for CMU-trained models).

    Shared joints are copied (HE_TO_H36M); spine = mid(pelvis, thorax) and neck_nose =
    thorax + 0.665 (head - thorax), in 2D as at inference and in 3D likewise. Evaluate on
    ``list(HE_TO_H36M)`` joints only.
    """
    out = []
    for s in seqs:
        x = np.zeros(s.x.shape[:1] + (NUM_JOINTS, 2), np.float32)
        y = np.zeros(s.y.shape[:1] + (NUM_JOINTS, 3), np.float32)
        x[:, list(HE_TO_H36M)] = s.x
        y[:, list(HE_TO_H36M)] = s.y
        for a in (x, y):
            a[:, 7] = (a[:, 0] + a[:, 8]) / 2
            a[:, 9] = a[:, 8] + NECK_FRACTION * (a[:, 10] - a[:, 8])
        out.append(Sequence(x, y, s.subject, s.action, s.camera, s.meta))
    return out
