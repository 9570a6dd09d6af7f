"""Pose-error metrics of the 3D human pose literature (Human3.6M protocols).

All functions take predictions and ground truth of shape (N, J, 3) in the same units and
return the mean over frames and joints in those units (multiply metres by 1000 for mm).
"""
from __future__ import annotations

import numpy as np


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol 1: mean per-joint position error (Euclidean), no alignment."""
    return float(np.linalg.norm(pred - gt, axis=-1).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame similarity (rotation, uniform scale, translation) alignment of pred to gt.

    (N, J, 3), (N, J, 3) -> (N, J, 3). Reflections are excluded.
    """
    mu_p = pred.mean(axis=1, keepdims=True)
    mu_g = gt.mean(axis=1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    norm_p = np.sqrt((p ** 2).sum(axis=(1, 2), keepdims=True))
    norm_g = np.sqrt((g ** 2).sum(axis=(1, 2), keepdims=True))
    p, g = p / np.maximum(norm_p, 1e-12), g / np.maximum(norm_g, 1e-12)
    u, s, vt = np.linalg.svd(np.einsum("nji,njk->nik", p, g))  # (N,3,3) cross-covariance
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    rot = np.einsum("nij,njk->nik", u, vt)  # maps p onto g: p @ rot
    scale = s.sum(axis=1)[:, None, None] * norm_g / np.maximum(norm_p, 1e-12)
    return scale * np.einsum("nji,nik->njk", pred - mu_p, rot) + mu_g


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Protocol 2: MPJPE after per-frame similarity Procrustes alignment."""
    return mpjpe(procrustes_align(pred, gt), gt)


def mpjve(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint velocity error: MPJPE of the first differences over time (per frame)."""
    if len(pred) < 2:
        return float("nan")
    return mpjpe(np.diff(pred, axis=0), np.diff(gt, axis=0))


def knee_flexion_deg(x: np.ndarray) -> np.ndarray:
    """(..., J>=7, 3) joints in the H36M order (1-3 right hip/knee/ankle, 4-6 left) -> (..., 2)
    knee flexion in degrees (right, left): the angle between thigh (hip -> knee) and shin
    (knee -> ankle), 0 for a straight leg. Independent of the frame, units and scale."""
    out = []
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        a = x[..., knee, :] - x[..., hip, :]
        b = x[..., ankle, :] - x[..., knee, :]
        # atan2 of |a x b| and a.b: exact near 0 degrees, where arccos of a rounded cosine is not
        out.append(np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), (a * b).sum(-1))))
    return np.stack(out, -1)


def median_knee(x: np.ndarray) -> float:
    """Median knee flexion (degrees) over all frames and both legs of (N, J>=7, 3) joints."""
    return float(np.median(knee_flexion_deg(x)))
