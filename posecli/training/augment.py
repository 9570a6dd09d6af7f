"""Augmentation of training windows: detector-like 2D noise, limb lengths, speed, tumbles.

Poses are (T, 17, 3) world metres (Y up) or (T, 17, 2) pixels in the H36M-17 layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecli.skeleton import NUM_JOINTS, PARENTS, fill_gaps, synthesise_h36m
from posecli.training.cameras import CameraAug


def synthesise_like_inference(xy: np.ndarray) -> np.ndarray:
    """Replace the H36M-17 joints that inference synthesises from BlazePose. (..., 17, 2).

    See :func:`posecli.skeleton.synthesise_h36m` (pelvis, thorax, spine, neck_nose).
    """
    return synthesise_h36m(np.array(xy, copy=True))


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
