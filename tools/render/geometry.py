"""Small rotation helpers (batched over leading axes), plain numpy."""
from __future__ import annotations


import numpy as np



def normalize(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def frame_from(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(...,3),(...,3) -> (...,3,3) rotation whose columns are e1 = primary, e2 = secondary
    made orthogonal to e1, e3 = e1 x e2."""
    e1 = normalize(primary)
    s = secondary - (secondary * e1).sum(-1, keepdims=True) * e1
    e2 = normalize(s)
    e3 = np.cross(e1, e2)
    return np.stack([e1, e2, e3], axis=-1)


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction a onto direction b: (...,3),(...,3) -> (...,3,3)."""
    a, b = normalize(a), normalize(b)
    v = np.cross(a, b)
    c = (a * b).sum(-1)
    s = np.linalg.norm(v, axis=-1)
    axis = np.where(s[..., None] > 1e-8, v / np.maximum(s, 1e-12)[..., None],
                    normalize(np.cross(a, _any_perpendicular(a))))
    angle = np.arctan2(s, c)
    return axis_angle(axis, angle)


def _any_perpendicular(a: np.ndarray) -> np.ndarray:
    ref = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
    return np.cross(a, ref)


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: unit axis (...,3), angle (...) -> (...,3,3)."""
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    kx = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1),
                   np.stack([-y, x, zero], -1)], -2)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    eye = np.broadcast_to(np.eye(3), kx.shape)
    return eye + s * kx + (1 - c) * (kx @ kx)


def slerp_rot(r0: np.ndarray, r1: np.ndarray, t: float) -> np.ndarray:
    """Interpolate rotations (...,3,3) by fraction t along the geodesic."""
    rel = np.swapaxes(r0, -1, -2) @ r1
    cos = np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)
    ang = np.arccos(cos)
    w = np.stack([rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0],
                  rel[..., 1, 0] - rel[..., 0, 1]], -1)
    ok = np.linalg.norm(w, axis=-1) > 1e-9
    axis = np.where(ok[..., None], normalize(w), np.array([1.0, 0, 0]))
    return r0 @ axis_angle(axis, np.where(ok, ang * t, 0.0))


def arc_point(points: np.ndarray, frac: float) -> np.ndarray:
    """Point at ``frac`` of the arc length of a polyline: (..., P, 3) -> (..., 3)."""
    seg = np.linalg.norm(np.diff(points, axis=-2), axis=-1)          # (..., P-1)
    cum = np.concatenate([np.zeros(seg.shape[:-1] + (1,)), np.cumsum(seg, -1)], -1)
    target = frac * cum[..., -1:]
    out = np.empty(points.shape[:-2] + (3,))
    flat_p = points.reshape(-1, points.shape[-2], 3)
    flat_c, flat_t = cum.reshape(-1, cum.shape[-1]), target.reshape(-1)
    flat_o = out.reshape(-1, 3)
    for i in range(len(flat_p)):
        k = int(np.clip(np.searchsorted(flat_c[i], flat_t[i]) - 1, 0, len(flat_c[i]) - 2))
        span = max(flat_c[i, k + 1] - flat_c[i, k], 1e-12)
        u = (flat_t[i] - flat_c[i, k]) / span
        flat_o[i] = flat_p[i, k] + u * (flat_p[i, k + 1] - flat_p[i, k])
    return out
