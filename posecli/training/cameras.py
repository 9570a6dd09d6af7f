"""Virtual cameras: where a camera stands, where it looks, and how it projects (numpy only).

World coordinates are metres, Y up. Cameras use OpenCV axes: x right, y down, z forward.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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



# A narrower "typical video" camera: eye-level-ish (1.0-1.8 m high), 3-6 m away.
TYPICAL_CAMERA = CameraAug(distance=(3.0, 6.0), height=(1.0, 1.8), target_height=(0.8, 1.2))



# HumanEva-like virtual cameras: 640x480, f ~ 680-760 px, 2.5-6 m away, 1.2-2.0 m high.
HUMANEVA_CAMERA = CameraAug(distance=(2.5, 6.0), height=(1.2, 2.0), target_height=(0.9, 1.4),
                            hfov=(44.0, 52.0), off_centre=0.3, roll=2.0, k1=0.05, sizes=((640, 480),))
