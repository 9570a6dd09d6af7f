"""Keypoints from heatmaps: peak finding, sub-pixel refinement and the flip test. Pure numpy
(OpenCV for the blur).

Heatmaps are (N, K, H, W): N crops, K keypoints. Positions are heatmap cells, x right, y down,
cell (x, y) at the integer coordinates (x, y): a heatmap model trained on Gaussian targets
centred at (keypoint / stride) has its peak at that coordinate, so keypoint = stride * cell.

Refinement (``refine=``):
- ``"dark"`` (default): Zhang et al., "Distribution-Aware Coordinate Representation for Human
  Pose Estimation" (CVPR 2020). The heatmap is smoothed with a Gaussian (rescaled to keep its
  peak), its logarithm is fitted by a second-order Taylor expansion around the integer peak,
  and one Newton step gives the maximum. Exact for Gaussian-shaped peaks.
- ``"quarter"``: the classic shift of a quarter cell towards the higher neighbour (what MMPose's
  default codec does for the standard HRNet models); error up to 0.25 cells.
- ``"none"``: the integer peak.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["peaks", "refine_dark", "refine_quarter", "decode", "unflip", "FLIP_SHIFT"]


def peaks(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer maxima: (N, K, H, W) -> positions (N, K, 2) float (cells, x then y) and values
    (N, K). A heatmap with no finite value gets position NaN and value 0."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    n, k, h, w = hm.shape
    flat = np.where(np.isfinite(hm), hm, -np.inf).reshape(n, k, h * w)
    idx = flat.argmax(-1)
    val = np.take_along_axis(flat, idx[..., None], -1)[..., 0].astype(np.float64)
    xy = np.stack([idx % w, idx // w], -1).astype(np.float64)
    bad = ~np.isfinite(val)
    xy[bad], val[bad] = np.nan, 0.0
    return xy, val


def refine_quarter(heatmaps: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Shift each integer peak (N, K, 2) a quarter cell towards its higher neighbour, per axis
    (peaks on the border are kept)."""
    hm = np.asarray(heatmaps, dtype=np.float64)
    out = np.array(xy, dtype=np.float64)
    h, w = hm.shape[-2:]
    for n, k in zip(*np.nonzero(np.isfinite(out).all(-1))):
        x, y = int(out[n, k, 0]), int(out[n, k, 1])
        m = hm[n, k]
        if 0 < x < w - 1:
            out[n, k, 0] += 0.25 * np.sign(m[y, x + 1] - m[y, x - 1])
        if 0 < y < h - 1:
            out[n, k, 1] += 0.25 * np.sign(m[y + 1, x] - m[y - 1, x])
    return out


def _smooth(hm: np.ndarray, kernel: int) -> np.ndarray:
    """Gaussian blur of each (H, W) map, rescaled so each map keeps its maximum (DARK step 1)."""
    out = np.empty_like(hm, dtype=np.float64)
    for idx in np.ndindex(hm.shape[:-2]):
        m = hm[idx].astype(np.float64)
        top = m.max()
        b = cv2.GaussianBlur(m, (kernel, kernel), 0, borderType=cv2.BORDER_REPLICATE)
        out[idx] = b * (top / b.max()) if b.max() > 0 else b
    return out


def refine_dark(heatmaps: np.ndarray, xy: np.ndarray, kernel: int = 11,
                eps: float = 1e-10) -> np.ndarray:
    """DARK refinement of integer peaks (N, K, 2) on heatmaps (N, K, H, W) -> (N, K, 2) cells.

    ``kernel``: odd Gaussian smoothing size in cells (11 for 64x48 maps, MMPose's setting;
    0 skips the smoothing, for maps already Gaussian). The Newton step is taken only where the
    log-heatmap is concave at the peak and the step is under one cell (else the peak is kept):
    a flat or noisy map never sends a keypoint far.
    """
    hm = np.asarray(heatmaps, dtype=np.float64)
    if kernel:
        hm = _smooth(hm, kernel)
    logm = np.log(np.maximum(hm, eps))
    out = np.array(xy, dtype=np.float64)
    h, w = hm.shape[-2:]
    for n, k in zip(*np.nonzero(np.isfinite(out).all(-1))):
        x, y = int(out[n, k, 0]), int(out[n, k, 1])
        if not (0 < x < w - 1 and 0 < y < h - 1):
            continue
        L = logm[n, k]
        dx = 0.5 * (L[y, x + 1] - L[y, x - 1])
        dy = 0.5 * (L[y + 1, x] - L[y - 1, x])
        dxx = L[y, x + 1] - 2 * L[y, x] + L[y, x - 1]
        dyy = L[y + 1, x] - 2 * L[y, x] + L[y - 1, x]
        dxy = 0.25 * (L[y + 1, x + 1] - L[y + 1, x - 1] - L[y - 1, x + 1] + L[y - 1, x - 1])
        det = dxx * dyy - dxy * dxy
        if not (dxx < 0 and det > 0):  # not a maximum of a concave surface
            continue
        step = -np.array([dyy * dx - dxy * dy, dxx * dy - dxy * dx]) / det
        if np.all(np.abs(step) < 1.0):
            out[n, k] += step
    return out


def decode(heatmaps: np.ndarray, refine: str = "dark", kernel: int = 11
           ) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N, K, H, W) -> keypoints (N, K, 2) in cells and confidences (N, K): the peak
    value clipped to [0, 1] (heatmap models are trained to peak at 1 on a visible keypoint)."""
    xy, val = peaks(heatmaps)
    if refine == "dark":
        xy = refine_dark(heatmaps, xy, kernel)
    elif refine == "quarter":
        xy = refine_quarter(heatmaps, xy)
    elif refine != "none":
        raise ValueError(f"unknown refinement {refine!r} (dark, quarter or none)")
    return xy, np.clip(val, 0.0, 1.0)


#: Horizontal misalignment, in cells, of a heatmap computed on a mirrored crop once mirrored
#: back, for stride 4: mirrored pixel index x' = W_in - 1 - x, so cell c of the mirrored-back map
#: stands for input pixel 4c + 3, i.e. cell c + 0.75 (MMPose shifts by a whole cell instead).
FLIP_SHIFT = 0.75


def unflip(heatmaps: np.ndarray, flip_perm: np.ndarray, shift: float = FLIP_SHIFT) -> np.ndarray:
    """Heatmaps (N, K, H, W) of horizontally mirrored crops -> heatmaps of the crops themselves:
    mirror the maps, swap left/right channels (``flip_perm`` (K,)) and move them ``shift`` cells
    to the right by linear interpolation (the first column is repeated at the left edge)."""
    hm = np.asarray(heatmaps)[:, flip_perm, :, ::-1]
    whole, frac = int(np.floor(shift)), shift - np.floor(shift)
    padded = np.concatenate([np.repeat(hm[..., :1], whole + 1, -1), hm], -1)
    w = hm.shape[-1]
    a = padded[..., 1:w + 1]          # value at column x - whole
    b = padded[..., 0:w]              # value at column x - whole - 1
    return ((1 - frac) * a + frac * b).astype(hm.dtype)
