"""Camera and projection: intrinsics, look-at, pinhole projection, camera placement."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from render.constants import FPS, HEIGHT, WIDTH
from render.geometry import normalize


def intrinsics(focal: float, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera (OpenCV axes) for cameras at ``eye`` looking at ``target``.

    eye (3,) or (N,3), target (N,3) -> R (N,3,3), t (N,3) with x_cam = R x + t.
    """
    target = np.atleast_2d(target)
    eye = np.broadcast_to(eye, target.shape)
    z = normalize(target - eye)
    x = normalize(np.cross(z, np.asarray(up, dtype=float)))
    y = np.cross(z, x)
    r = np.stack([x, y, z], axis=-2)
    t = -np.einsum("nij,nj->ni", r, eye)
    return r, t


def to_camera(x_world: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N,J,3) world points, (N,3,3), (N,3) -> (N,J,3) camera-frame points."""
    return np.einsum("nij,nkj->nki", r, x_world) + t[:, None, :]


def project(x_cam: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (...,3) -> pixels (...,2)."""
    uvw = x_cam @ k.T
    return uvw[..., :2] / uvw[..., 2:3]


def smooth_track(x: np.ndarray, seconds: float, fps: float = FPS) -> np.ndarray:
    """Gaussian low-pass of a (N,D) track (edges held), for a camera operator's pan."""
    sigma = max(seconds * fps, 1e-3)
    r = int(3 * sigma) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)])
    return np.stack([np.convolve(pad[:, d], k, mode="valid") for d in range(x.shape[1])], 1)


@dataclass
class CameraSpec:
    focal: float         # pixels
    distance: float      # metres from the mean pelvis position (horizontal)
    height: float        # metres above the floor
    yaw_deg: float       # where the camera stands: 0 = in front of the mocap's start facing
    pan_smooth_s: float = 0.6


def sample_camera(rng: np.random.Generator, body_height: float, frac: float | None = None,
                  height: float | None = None) -> CameraSpec:
    """Random but detector-friendly camera: the person ~45-70 % of the frame height (or
    ``frac`` of it), 0.7-1.8 m up (or ``height`` metres: high cameras look down, low ones up).
    The same draws are made either way, so a seed gives the same focal and direction."""
    focal = float(rng.uniform(480, 800))
    drawn = float(rng.uniform(0.48, 0.68))
    frac = frac or drawn
    distance = focal * body_height / (frac * HEIGHT)
    drawn_height = float(rng.uniform(0.7, 1.8))
    return CameraSpec(focal=focal, distance=float(distance),
                      height=drawn_height if height is None else float(height),
                      yaw_deg=float(rng.uniform(-180, 180)))


def place_camera(spec: CameraSpec, pelvis: np.ndarray, facing0: np.ndarray, body_height: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A static camera that pans/tilts to follow the (smoothed) person.

    pelvis (N,3) world; facing0 (3,) the body's forward direction at the first frame.
    Returns K (3,3), R (N,3,3), t (N,3), eye (3,).
    """
    centre = pelvis.mean(0)
    f = normalize(np.array([facing0[0], 0.0, facing0[2]]))
    yaw = np.deg2rad(spec.yaw_deg)
    c, s = np.cos(yaw), np.sin(yaw)
    d = np.array([c * f[0] + s * f[2], 0.0, -s * f[0] + c * f[2]])
    eye = centre + d * spec.distance
    # step back if the person ever comes closer than 80 % of the planned distance
    closest = np.min(np.linalg.norm((pelvis - eye)[:, [0, 2]], axis=1))
    eye = eye + d * max(0.0, 0.8 * spec.distance - closest)
    eye[1] = spec.height
    aim = smooth_track(pelvis, spec.pan_smooth_s)
    aim[:, 1] = aim[:, 1] * 0.5 + 0.5 * (0.55 * body_height)   # look near the waist, tilt calmly
    r, t = look_at(eye, aim)
    return intrinsics(spec.focal), r, t, eye
