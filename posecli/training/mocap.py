"""CMU motion capture (``shared/data/mocap/``): 3D clips, seen by random virtual cameras.

3D only: 2D inputs come from a random virtual camera drawn per training window (distance,
height, full yaw, pitch/look-at offset, roll, focal length, image size/aspect, mild radial
distortion), plus bone-length scaling, speed resampling, detector-like 2D noise and flips
(:mod:`posecli.training.augment`). Targets are root-relative metres in camera axes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.files import shared_data_dir
from posecli.skeleton import (H36M17, HUMANEVA15, HUMANEVA15_TO_H36M17, NUM_JOINTS, Layout, mirror,
                              normalize_to_frame, synthesise_h36m)
from posecli.training.augment import (CmuAug, NoiseAug, corrupt_2d, resample, scale_bones, synthesise_like_inference,
                                      tumble)
from posecli.training.cameras import HUMANEVA_CAMERA, CameraAug, random_camera, view
from posecli.training.datasets import Sequence
from posecli.training.metrics import knee_flexion_deg

HELD_OUT_CMU = ("07", "13", "85")


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


T_POSE_JUMP_M = 0.25  # a joint moving this far in the first 30 fps frames (7.5 m/s) is a rig reset


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


# Daz knee correction: measured Daz knee flexion (deg) -> the flexion the other rigs (iClone CC,
# DeepMimic) give the same frames, matched by quantiles over the CMU takes stored in both (training
# subjects only: 02_01-04, 03_01-02, 05_01, 06_01, 08_07, 09_02/04/06/07; 2,592 leg-frames), from
# fit_daz_knee_map(). The Daz legs never straighten (1st percentile 11.7 deg against 0.7) and bend
# ~7 deg more over the whole range. Knots (daz, reference), piecewise linear between them.
DAZ_KNEE_MAP = ((0.0, 0.0), (11.74, 0.57), (14.25, 5.3), (16.6, 8.22), (20.18, 12.36), (22.68, 15.2),
                (24.37, 17.22), (26.6, 19.62), (28.98, 21.77), (30.83, 23.7), (32.64, 25.46),
                (36.71, 29.45), (41.43, 33.75), (47.82, 39.61), (56.13, 48.92), (68.38, 62.54),
                (83.34, 77.2), (101.61, 94.67), (108.77, 102.12), (115.74, 109.83), (180.0, 174.09))


def fit_daz_knee_map(path: str | Path | None = None, exclude: tuple[str, ...] = HELD_OUT_CMU,
                     percentiles: tuple[float, ...] = (1, 2, 3, 5, 7.5, 10, 15, 20, 25, 30, 40, 50, 60,
                                                         70, 80, 90, 95, 97.5, 99)
                     ) -> tuple[tuple[float, float], ...]:
    """Quantile-match the Daz rig's knee flexion to the other rigs' on takes stored in both.

    For every CMU take in ``cmu_h36m.npz`` that has a ``cgspeed_daz`` copy and a copy from
    another rig (subjects in ``exclude`` left out), both copies (first frame dropped: the Daz
    T-pose) are cut to the same length and pooled; the knots are the two pools' percentiles,
    plus (0, 0) and a far knot that keeps the top percentile's offset. Returns ((daz_deg,
    ref_deg), ...) with increasing daz_deg, for :func:`straighten_daz_knees`.
    """
    d = np.load(Path(path) if path else cmu_files()[0])
    pos = d["positions"].astype(np.float64)
    starts = d["clip_start"]
    ends = np.r_[starts[1:], len(pos)]
    by_take: dict[str, list[int]] = {}
    for i, name in enumerate(d["clip_name"]):
        if str(d["subject"][i]) not in exclude:
            by_take.setdefault(str(name), []).append(i)
    daz, ref = [], []
    for idx in by_take.values():
        dz = [i for i in idx if str(d["skeleton"][i]) == "cgspeed_daz"]
        for j in (i for i in idx if str(d["skeleton"][i]) != "cgspeed_daz"):
            for i in dz:
                n = min(ends[i] - starts[i], ends[j] - starts[j]) - 1
                daz.append(knee_flexion_deg(pos[starts[i] + 1:starts[i] + 1 + n]).ravel())
                ref.append(knee_flexion_deg(pos[starts[j] + 1:starts[j] + 1 + n]).ravel())
    if not daz:
        raise ValueError("no take is stored in both the Daz rig and another rig")
    qd = np.percentile(np.concatenate(daz), percentiles)
    qr = np.percentile(np.concatenate(ref), percentiles)
    knots = [(0.0, 0.0)] + [(float(a), float(b)) for a, b in zip(qd, np.maximum.accumulate(qr))]
    knots.append((180.0, float(180.0 - (qd[-1] - qr[-1]))))
    out = [knots[0]]
    for a, b in knots[1:]:
        if a > out[-1][0] + 1e-6:            # strictly increasing daz knots
            out.append((round(a, 2), round(max(b, out[-1][1]), 2)))
    return tuple(out)


def rotate_about(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: rotate (N,3) vectors about unit (N,3) axes by (N,) radians."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + np.cross(axis, v) * s + axis * (axis * v).sum(-1, keepdims=True) * (1 - c)


def straighten_daz_knees(world: np.ndarray, knots=None) -> np.ndarray:
    """Give a Daz-rig clip the knee flexion the other rigs give the same motion.

    (N, >=17, 3) world metres, Y up -> same shape. Per frame and leg, the shin (with the ankle
    and, in the raw 19-joint data, the toe) turns about the knee, in the plane of thigh and
    shin, from its flexion f to ``np.interp(f, *zip(*knots))`` (default :data:`DAZ_KNEE_MAP`).
    Bone lengths do not change; hips, thighs and knees stay. The clip is then moved up or
    down so that its lowest foot joint's 5th-percentile height is what it was (straighter legs
    reach lower).
    """
    knots = np.asarray(knots if knots is not None else DAZ_KNEE_MAP, dtype=np.float64)
    w = np.array(world, dtype=np.float64, copy=True)
    feet = [3, 6] + ([17, 18] if w.shape[1] > 18 else [])
    floor0 = np.percentile(w[:, feet, 1].min(1), 5)
    flex = knee_flexion_deg(w)
    target = np.interp(flex, knots[:, 0], knots[:, 1])
    sides = ((1, 2, [3] + ([17] if w.shape[1] > 17 else [])), (4, 5, [6] + ([18] if w.shape[1] > 18 else [])))
    for k, (hip, knee, below) in enumerate(sides):
        thigh = w[:, knee] - w[:, hip]
        shin = w[:, below[0]] - w[:, knee]
        axis = np.cross(thigh, shin)
        norm = np.linalg.norm(axis, axis=-1, keepdims=True)
        ok = norm[:, 0] > 1e-9      # a perfectly straight leg has no bend plane (and needs no change)
        axis = np.where(ok[:, None], axis / np.maximum(norm, 1e-12), 0.0)
        # turning the shin about thigh x shin by a positive angle bends the knee further
        angle = np.where(ok, np.radians(target[:, k] - flex[:, k]), 0.0)
        for j in below:
            w[:, j] = w[:, knee] + rotate_about(w[:, j] - w[:, knee], axis, angle)
    w[..., 1] += floor0 - np.percentile(w[:, feet, 1].min(1), 5)
    return w.astype(world.dtype)


def load_cmu(path: str | Path | tuple | list | None = None, subjects: tuple[str, ...] | None = None,
             exclude: tuple[str, ...] = (), clean: bool = False, daz_knees: bool = True) -> list[MocapClip]:
    """CMU clips as world-space H36M-17 joints (toes dropped), Y up, metres.

    ``path``: one npz or several (default ``cmu_h36m.npz``). ``clean``: drop leading frames that
    jump (the Daz rig's T-pose and a frame blended from it), skip :data:`BAD_CMU_CLIPS`, move the
    Daz rig's hips up (:func:`raise_daz_hips`) and, with ``daz_knees``, give its knees the other
    rigs' flexion (:func:`straighten_daz_knees`). Evaluation keeps ``clean=False`` so held-out
    figures stay comparable across versions.
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
                for _ in range(3):  # the rig's T-pose, and a frame blended from it, lead some clips
                    if len(world) > 1 and np.abs(world[1] - world[0]).max() > T_POSE_JUMP_M:
                        world = world[1:]
                if str(d["skeleton"][i]) == "cgspeed_daz":
                    world = raise_daz_hips(world)
                    if daz_knees:
                        world = straighten_daz_knees(world)
            clips.append(MocapClip(world[:, :NUM_JOINTS], subj, name))
    return clips


def cmu_window(rng: np.random.Generator, clip: MocapClip, frames: int,
               aug: CmuAug = CmuAug(), layout: "Layout | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """One augmented training window: (frames, J, 2) normalised 2D, (frames, J, 3) target.

    Bone scaling, inference-like joint synthesis and detector noise apply to the H36M-17
    layout only (``layout`` None or H36M17); other layouts get cameras, speed and flips.
    """
    layout = layout or H36M17
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
        perm = layout.flip_permutation()
        x, y = mirror(x, perm), mirror(y, perm)
    return x, y


class CmuSampler:
    """Random augmented CMU windows; a clip is chosen with probability proportional to length."""

    def __init__(self, clips: list[MocapClip], frames: int, aug: CmuAug = CmuAug(),
                 layout: "Layout | None" = None):
        self.clips, self.frames, self.aug = clips, frames, aug
        lengths = np.array([len(c.world) for c in clips], dtype=np.float64)
        self.p = lengths / lengths.sum()
        self.layout = layout or H36M17

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(size, T, J, 2) float32 inputs, (size, T, J, 3) float32 targets."""
        idx = rng.choice(len(self.clips), size=size, p=self.p)
        xs, ys = zip(*(cmu_window(rng, self.clips[i], self.frames, self.aug, self.layout) for i in idx))
        return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


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
        return CmuSampler(clips, frames, aug, HUMANEVA15)
    for c in clips:
        w = np.zeros((len(c.world), NUM_JOINTS, 3))
        w[:, list(HUMANEVA15_TO_H36M17)] = c.world
        c.world = synthesise_h36m(w, pelvis_thorax=False)
    return CmuSampler(clips, frames, aug, H36M17)
