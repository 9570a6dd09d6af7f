"""Fusion of the lifter's 3D with BlazePose's own per-frame 3D (its world landmarks).

The two err differently: the lifter sees a window of 2D motion (smooth, but it crouches and
misjudges poses it rarely saw in training), BlazePose's landmark model sees the pixels of one
frame (right about the pose, jittery, its own body size). Both are brought to one form here:

- BlazePose's 33 world landmarks become the H36M-17 joints exactly as the 2D ones do
  (:func:`posecli.skeleton.blazepose_to_h36m`), pelvis-centred; their axes already are the
  lifter's camera axes (x right, y down, z away from the camera; the landmark model's crop
  rotation is undone in :mod:`posecli.detect2d.blazepose`). Short gaps are filled like the 2D.
- Scale: BlazePose's body is scaled to the lifter's (the clip's median summed bone length), so
  the fusion mixes poses, not body sizes; the rigid / plausible bone steps still run afterwards.
- The difference ``D = B - L`` (BlazePose minus lifter, per joint and axis) is smoothed over time
  (a Gaussian of ``smooth_sigma`` frames: BlazePose is per-frame and jittery).

Then a fusion file (``weights/fusion.npz``, learned by ``tools/fit_fusion.py``) says how much of
``D`` to add:

- ``kind = "weights"``: ``fused = L + w * D`` with one weight per joint and axis (a fixed
  average is all weights equal; least squares gives per-joint ones).
- ``kind = "temporal"``: a tiny 1D convolution over each joint's track (input: ``D``, its
  length, the joint's 2D confidence, the lifter's flip disagreement, the joint's identity)
  gives per frame a gate per axis (``fused = L + sigmoid(g) * D``), and optionally a small
  correction ``r`` added to it.

Everything is numpy (the network is a few thousand numbers); the lifter knows only arrays.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posecli import skeleton
from posecli import weights as weights_mod

__all__ = ["Fusion", "DEFAULT_FUSION", "resolve", "load_fusion", "check_world", "world_h36m",
           "prepare", "features", "apply", "OFF_NO_WORLD"]

DEFAULT_FUSION = weights_mod.FUSION
OFF_NO_WORLD = ("no BlazePose world landmarks in the input (a keypoint file without them, or a "
                "detector that has none): the pure lifter")
NUM_FEATURES = 6  # D (3), |D|, 2D confidence, flip disagreement; + the joint's one-hot


@dataclass
class Fusion:
    """A loaded fusion: ``fusion(lifted, world, conf, disagree)`` -> fused (N, 17, 3).

    config: ``kind`` ("weights" | "temporal"), ``smooth_sigma`` (frames), ``scale``
    ("bones" | "none"), for "temporal" the layers' ``dilations``. params: numpy arrays
    (``w`` (17, 3) for "weights"; ``conv{i}_w`` (out, in, k), ``conv{i}_b`` (out,) for
    "temporal"). info: what the result JSON records.
    """
    config: dict
    params: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)

    def __call__(self, lifted: np.ndarray, world: np.ndarray, conf: np.ndarray,
                 disagree: np.ndarray, has: np.ndarray | None = None) -> np.ndarray:
        """lifted, world (N, 17, 3) metres pelvis-centred, camera axes; conf (N, 17) 2D
        confidence; disagree (N, 17) the lifter's flip disagreement (m); has (N,) frames where
        the world landmarks were seen or interpolated (default all) -> (N, 17, 3) fused,
        pelvis-centred; the lifter's pose where ``has`` is False."""
        has = np.ones(len(lifted), bool) if has is None else np.asarray(has, bool)
        if not has.any():
            return lifted
        lifted_d, d = prepare(lifted, world, has, self.config)
        if self.config["kind"] == "weights":
            fused = lifted_d + self.params["w"] * d
        elif self.config["kind"] == "temporal":
            x = features(d, conf, disagree)
            out = temporal_net(x, self.params, self.config["dilations"])  # (N, 17, 3 or 6)
            fused = lifted_d + _sigmoid(out[..., :3]) * d
            if out.shape[-1] == 6:  # with a learned correction
                fused = fused + out[..., 3:6]
        else:
            raise weights_mod.WeightsError(f"unknown fusion kind {self.config['kind']!r}")
        fused = fused - fused[:, :1]
        return np.where(has[:, None, None], fused, lifted)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def bone_sum(pose: np.ndarray) -> np.ndarray:
    """(N, 17, 3) -> (N,) summed bone length (m) of the H36M skeleton."""
    par = np.array(skeleton.PARENTS[1:])
    return np.linalg.norm(pose[:, 1:] - pose[:, par], axis=-1).sum(-1)


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """(N, ...) smoothed along axis 0 by a Gaussian of ``sigma`` frames (edges held);
    ``sigma`` <= 0 returns ``x``."""
    if sigma <= 0 or len(x) < 2:
        return x
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    idx = np.clip(np.arange(-r, len(x) + r), 0, len(x) - 1)
    xp = x[idx]
    return sum(k[i] * xp[i:i + len(x)] for i in range(2 * r + 1))


def prepare(lifted: np.ndarray, world: np.ndarray, has: np.ndarray, config: dict
            ) -> tuple[np.ndarray, np.ndarray]:
    """The two poses in one form: (lifted pelvis-centred (N, 17, 3), D = scaled, pelvis-centred
    BlazePose minus lifter, smoothed over ``config["smooth_sigma"]`` frames (N, 17, 3)).
    Frames outside ``has`` get D = 0 before smoothing (no BlazePose there)."""
    lifted = lifted - lifted[:, :1]
    world = world - world[:, :1]
    if config.get("scale", "bones") == "bones":
        lb, wb = np.median(bone_sum(lifted[has])), np.median(bone_sum(world[has]))
        if wb > 1e-6 and np.isfinite(lb / wb):
            world = world * (lb / wb)
    d = np.where(has[:, None, None], world - lifted, 0.0)
    return lifted, gaussian_smooth(d, float(config.get("smooth_sigma", 0.0)))


def features(d: np.ndarray, conf: np.ndarray, disagree: np.ndarray) -> np.ndarray:
    """(N, 17, 3) D, (N, 17) confidence, (N, 17) flip disagreement -> (N, 17, 6 + 17) inputs of
    the temporal fusion: D (m), |D| (m), confidence, disagreement (m), the joint's one-hot."""
    n, j = conf.shape
    eye = np.broadcast_to(np.eye(j), (n, j, j))
    return np.concatenate([d, np.linalg.norm(d, axis=-1, keepdims=True), conf[..., None],
                           disagree[..., None], eye], -1)


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """'Same' 1D convolution with edge replication, as torch's Conv1d(padding_mode=
    'replicate') with padding (k - 1) * dilation / 2. x (B, C, T), w (O, C, k), b (O,) ->
    (B, O, T)."""
    k = w.shape[-1]
    pad = (k - 1) * dilation // 2
    t = x.shape[-1]
    idx = np.clip(np.arange(-pad, t + pad), 0, t - 1)
    xp = x[..., idx]
    out = np.zeros((x.shape[0], w.shape[0], t))
    for i in range(k):
        out += np.einsum("oc,bct->bot", w[:, :, i], xp[..., i * dilation:i * dilation + t])
    return out + b[None, :, None]


def temporal_net(x: np.ndarray, params: dict[str, np.ndarray], dilations: list[int]
                 ) -> np.ndarray:
    """The temporal fusion network: (N, 17, F) features -> (N, 17, O) outputs; each joint's
    track is a sequence (joints are the batch), ReLU between the layers."""
    h = np.transpose(x, (1, 2, 0))  # (17, F, N)
    for i, dil in enumerate(dilations):
        h = conv1d(h, params[f"conv{i}_w"], params[f"conv{i}_b"], int(dil))
        if i < len(dilations) - 1:
            h = np.maximum(h, 0.0)
    return np.transpose(h, (2, 0, 1))


def check_world(world: np.ndarray | None, visibility: np.ndarray | None, n: int
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Validate optional world landmarks (N, 33, 3) and visibility (N, 33) against N frames
    (None stays None; a wrong shape is a UsageError)."""
    from posecli.errors import UsageError

    if world is None:
        return None, None
    world = np.asarray(world, dtype=np.float64)
    if world.shape != (n, skeleton.BLAZEPOSE33.joints, 3):
        raise UsageError(f"expected world landmarks of shape ({n}, 33, 3), got {world.shape}")
    if visibility is not None:
        visibility = np.asarray(visibility, dtype=np.float64)
        if visibility.shape != world.shape[:2]:
            raise UsageError(f"expected visibility of shape {world.shape[:2]}, got "
                             f"{visibility.shape}")
    return world, visibility


def world_h36m(world: np.ndarray, valid: np.ndarray, max_gap: int
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """BlazePose world landmarks (N, 33, 3) -> (H36M-17 joints (N, 17, 3) metres,
    pelvis-centred, short gaps filled by interpolation, (N,) frames seen or interpolated); None
    when no frame has them. Axes unchanged (they are the lifter's camera axes)."""
    seen = np.asarray(valid, bool) & np.isfinite(world).all(axis=(1, 2))
    if not seen.any():
        return None
    w17, _ = skeleton.blazepose_to_h36m(np.nan_to_num(world), np.ones(world.shape[:2]))
    w17 = w17 - w17[:, :1]
    w17, _, flags = skeleton.fill_gaps(np.where(seen[:, None, None], w17, 0.0),
                                       np.ones(w17.shape[:2]), seen, max_gap=max_gap)
    return w17, flags != skeleton.MISSING


def load_fusion(path: str | Path = DEFAULT_FUSION) -> Fusion:
    """Load a fusion file (checksum verified against the manifest when it is listed there;
    see :func:`posecli.weights.verified`)."""
    p, data, digest = weights_mod.read_verified(path)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            config = json.loads(str(z["config"]))
            params = {k: np.asarray(z[k], dtype=np.float64) for k in z.files if k != "config"}
    except (OSError, ValueError, KeyError) as e:
        raise weights_mod.WeightsError(f"{p}: not a posecli fusion file ({e})") from None
    info = {"name": config.get("name", config["kind"]), "kind": config["kind"],
            "file": Path(p).name, "sha256": digest,
            "smooth_sigma": config.get("smooth_sigma", 0.0), "scale": config.get("scale", "bones"),
            "inputs": "lifter 3D + BlazePose world landmarks (H36M-17, pelvis-centred)"}
    return Fusion(config, params, info)


def resolve(fusion: "Fusion | str | Path | None") -> Fusion | None:
    """``"on"`` / ``"default"`` -> the shipped fusion; ``"off"`` / None -> None; a path ->
    that file; a :class:`Fusion` as is."""
    if fusion is None or isinstance(fusion, Fusion):
        return fusion
    if str(fusion) == "off":
        return None
    return load_fusion(DEFAULT_FUSION if str(fusion) in ("on", "default") else fusion)


def apply(fusion: Fusion | None, lifted: np.ndarray, world17, conf: np.ndarray,
          disagree: np.ndarray) -> tuple[np.ndarray, dict]:
    """Run ``fusion`` when it and the world landmarks (``world17``: :func:`world_h36m`'s
    result or None) are there -> (N, 17, 3) pose, the result's ``lifter["fusion"]`` block."""
    if fusion is None:
        return lifted, {"name": "off"}
    if world17 is None:
        return lifted, {"name": "off", "reason": OFF_NO_WORLD}
    w17, has = world17
    fused = fusion(lifted, w17, conf, disagree, has)
    if not np.isfinite(fused).all():  # never hand a NaN pose on: the pure lifter instead
        return lifted, {"name": "off", "reason": "the fusion produced non-finite joints"}
    return fused, {**fusion.info, "frames_fused": int(has.sum())}
