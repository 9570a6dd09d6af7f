#!/usr/bin/env python3
"""Render people with known 3D truth: an Anny body posed by CMU motion capture, filmed by a
pinhole camera, written as an H.264 mp4 plus a ``<clip>.truth.npz`` ground-truth file.

Setup (a separate virtualenv, so the main environment stays clean; see tools/README.md)::

    apt-get install -y libosmesa6
    python3 -m venv /work/venvs/render
    /work/venvs/render/bin/pip install torch==2.13.0 anny==0.6.2 "numpy<2" pyrender trimesh \
        imageio imageio-ffmpeg
    /work/venvs/render/bin/pip install PyOpenGL==3.1.7   # after pyrender, which pins 3.1.0
    export ANNY_CACHE_DIR=/work/cache/anny               # ~790 MB, keep it outside the repo

Run (``PYOPENGL_PLATFORM=osmesa`` is set by the script itself)::

    /work/venvs/render/bin/python tools/render_clips.py example --out examples
    /work/venvs/render/bin/python tools/render_clips.py bench --out /work/cache/rendered
    /work/venvs/render/bin/python tools/render_clips.py one --clip 07_05 --source cmu_iclone_cc \
        --seed 3 --out /tmp/r

Truth file (all arrays float64 unless said otherwise):
    joints3d_cam (N,17,3)  metres, camera frame, OpenCV axes (x right, y down, z forward),
                           Human3.6M 17-joint order of ``posecli.skeleton.JOINTS`` (absolute,
                           not root-relative: subtract joint 0 to compare with the lifter)
    joints2d (N,17,2)      pinhole projections of joints3d_cam with K, pixels (continuous
                           coordinates: the top-left corner of the image is (0, 0))
    coco2d (N,17,2)        projected COCO keypoints (Anny's COCO regressor on the posed mesh)
    coco3d_cam (N,17,3)    the same in 3D
    skull_base_cam (N,3)   the rig's anatomical skull base (see neck_nose below)
    K (3,3), fps, width, height
    cam_R (N,3,3), cam_t (N,3)  world -> camera (x_cam = R x_world + t); world is Y up,
                           metres, floor at y = 0. The camera stays in place and pans.
    phenotype_names, phenotype_values  Anny body-shape parameters; body_height_m
    clip, subject, source, mocap_frames (first, last+1 in cmu_h36m.npz), seed, colours

Joint definitions (from the posed Anny rig, matching the CMU conversion of the training data):
pelvis = midpoint of the hip joints; hips/knees/ankles/shoulders/elbows/wrists = heads of the
upperleg01/lowerleg01/foot/upperarm01/lowerarm01/wrist bones; thorax = head of neck01 (neck
base); head = top of the scalp (the highest rest-pose vertex, skinned with the body);
neck_nose = 0.665 of the way from thorax to head top (CMU's "Head" joint sits there on the
cgspeed MB skeleton; the anatomical skull base of Anny's rig, its ``head`` bone, stored as
``skull_base_cam``, is only ~0.39 of the way); spine = the point at 50 % arc length of the
polyline pelvis -> spine05 .. spine01 -> thorax (the CMU rule).

Only the functions ``render_clip``/``load_body``/``main`` need anny, torch and pyrender (imported
inside them); the posing math, camera and projection helpers are plain numpy so the tests can
import this module from the main environment.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# the shared data folder sits beside the checkout (as in tests/conftest.py)
MOCAP = Path(os.environ.get("POSECLI_MOCAP", Path(__file__).resolve().parents[2] / "shared" / "data"
                            / "mocap" / "cmu_h36m.npz"))
WIDTH, HEIGHT, FPS = 640, 480, 30.0
SUPERSAMPLE = 2

# Mocap joint indices (cmu_h36m.npz: H36M order + toes).
M_PELVIS, M_RHIP, M_RKNEE, M_RANK, M_LHIP, M_LKNEE, M_LANK = 0, 1, 2, 3, 4, 5, 6
M_SPINE, M_THORAX, M_NECK, M_HEAD = 7, 8, 9, 10
M_LSH, M_LELB, M_LWR, M_RSH, M_RELB, M_RWR, M_RTOE, M_LTOE = 11, 12, 13, 14, 15, 16, 17, 18

# Held-out CMU subjects (the lifter trains on the others).
HELD_OUT = ("07", "13", "85")
NECK_FRACTION = 0.665   # = posecli.skeleton.NECK_FRACTION (not imported: runs in the render venv)


# --------------------------------------------------------------------------------------------
# Small rotation helpers (batched over leading axes)
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Camera and projection
# --------------------------------------------------------------------------------------------
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


def sample_camera(rng: np.random.Generator, body_height: float, frac: float | None = None
                  ) -> CameraSpec:
    """Random but detector-friendly camera: the person ~45-70 % of the frame height (or
    ``frac`` of it)."""
    focal = float(rng.uniform(480, 800))
    drawn = float(rng.uniform(0.48, 0.68))
    frac = frac or drawn
    distance = focal * body_height / (frac * HEIGHT)
    return CameraSpec(focal=focal, distance=float(distance),
                      height=float(rng.uniform(0.7, 1.8)), yaw_deg=float(rng.uniform(-180, 180)))


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


# --------------------------------------------------------------------------------------------
# Mocap
# --------------------------------------------------------------------------------------------
@dataclass
class MocapClip:
    name: str
    subject: str
    source: str
    first: int
    world: np.ndarray    # (N,19,3) metres, Y up


def load_mocap_clip(name: str, source: str | None = None, start: float = 0.0,
                    max_frames: int | None = None, path: Path = MOCAP) -> MocapClip:
    d = np.load(path, allow_pickle=True)
    s = d["clip_start"]
    e = np.r_[s[1:], len(d["positions"])]
    idx = [i for i in range(len(s)) if d["clip_name"][i] == name
           and (source is None or d["source"][i] == source)]
    if not idx:
        raise SystemExit(f"no mocap clip {name} (source {source})")
    i = idx[0]
    a = s[i] + max(1, int(round(start * FPS)))   # frame 0 is often the calibration T-pose
    b = e[i] if max_frames is None else min(e[i], a + max_frames)
    world = d["positions"][a:b].astype(np.float64) + d["root"][a:b, None].astype(np.float64)
    return MocapClip(name, str(d["subject"][i]), str(d["source"][i]), int(a), world)


# --------------------------------------------------------------------------------------------
# Posing: world rotation G_c of every Anny bone so that its rest direction lands on the mocap
# direction (the rotation maps Anny's rest frame, Z up, facing -Y, onto the mocap world).
# --------------------------------------------------------------------------------------------
@dataclass
class RestRig:
    labels: list[str]
    parents: list[int]
    heads: np.ndarray          # (B,3) rest bone heads
    head_top: np.ndarray       # (3,) rest scalp top
    idx: dict = field(default_factory=dict)

    def __post_init__(self):
        self.idx = {n: i for i, n in enumerate(self.labels)}

    def h(self, name: str) -> np.ndarray:
        return self.heads[self.idx[name]]

    def ball(self, side: str) -> np.ndarray:
        return np.mean([self.h(f"toe{k}-1.{side}") for k in range(1, 6)], axis=0)


def _bend_weight(a: np.ndarray, b: np.ndarray, lo_deg=8.0, hi_deg=25.0) -> np.ndarray:
    ang = np.degrees(np.arccos(np.clip((normalize(a) * normalize(b)).sum(-1), -1, 1)))
    return np.clip((ang - lo_deg) / (hi_deg - lo_deg), 0, 1)[..., None]


def bone_world_rotations(rig: RestRig, m: np.ndarray) -> np.ndarray:
    """Mocap world joints (N,19,3) -> (N,B,3,3) world rotations G_c (rest -> posed)."""
    n = len(m)
    nb = len(rig.labels)
    G = np.zeros((n, nb, 3, 3))
    done = np.zeros(nb, bool)

    def setg(name, g):
        G[:, rig.idx[name]] = g
        done[rig.idx[name]] = True

    # pelvis: hip line + torso up
    hl, hr = rig.h("upperleg01.L"), rig.h("upperleg01.R")
    thorax_r = rig.h("neck01")
    pel_r = (hl + hr) / 2
    f_rest = frame_from(hr - hl, thorax_r - pel_r)
    f_mo = frame_from(m[:, M_RHIP] - m[:, M_LHIP], m[:, M_THORAX] - m[:, M_PELVIS])
    g_pelvis = f_mo @ f_rest.T
    for b in ("root", "pelvis.L", "pelvis.R"):
        setg(b, g_pelvis)
    # chest: spine -> thorax up, shoulder line
    spine_chain = [pel_r] + [rig.h(f"spine0{k}") for k in (5, 4, 3, 2, 1)] + [thorax_r]
    spine_r = arc_point(np.array(spine_chain), 0.5)
    shl, shr = rig.h("upperarm01.L"), rig.h("upperarm01.R")
    c_rest = frame_from(thorax_r - spine_r, shr - shl)
    c_mo = frame_from(m[:, M_THORAX] - m[:, M_SPINE], m[:, M_RSH] - m[:, M_LSH])
    g_chest = c_mo @ c_rest.T
    for k, frac in zip((5, 4, 3, 2, 1), (0.2, 0.4, 0.6, 0.8, 1.0)):
        setg(f"spine0{k}", slerp_rot(g_pelvis, g_chest, frac))
    # neck and head: directions thorax -> skull base -> head top, twist from the chest
    skull_r = rig.h("head")
    g_neck = swing(np.einsum("nij,j->ni", g_chest, skull_r - thorax_r),
                   m[:, M_NECK] - m[:, M_THORAX]) @ g_chest
    for b in ("neck01", "neck02", "neck03"):
        setg(b, g_neck)
    g_head = swing(np.einsum("nij,j->ni", g_neck, rig.head_top - skull_r),
                   m[:, M_HEAD] - m[:, M_NECK]) @ g_neck
    for b in ("head", "eye.L", "eye.R"):
        setg(b, g_head)

    for side, sh, el, wr, hip, kn, an, toe in (
            ("L", M_LSH, M_LELB, M_LWR, M_LHIP, M_LKNEE, M_LANK, M_LTOE),
            ("R", M_RSH, M_RELB, M_RWR, M_RHIP, M_RKNEE, M_RANK, M_RTOE)):
        # clavicle + shoulder: thorax -> shoulder
        sh_r = rig.h(f"upperarm01.{side}")
        g_clav = swing(np.einsum("nij,j->ni", g_chest, sh_r - thorax_r),
                       m[:, sh] - m[:, M_THORAX]) @ g_chest
        setg(f"clavicle.{side}", g_clav)
        setg(f"shoulder01.{side}", g_clav)
        # arm: hinge axis from the elbow bend; straight arm: carried along by the swing
        el_r, wr_r = rig.h(f"lowerarm01.{side}"), rig.h(f"wrist.{side}")
        up_r, fo_r = el_r - sh_r, wr_r - el_r
        n_rest = np.cross(up_r, fo_r)
        up_m, fo_m = m[:, el] - m[:, sh], m[:, wr] - m[:, el]
        g_sw = swing(np.einsum("nij,j->ni", g_clav, up_r), up_m) @ g_clav
        n_fb = np.einsum("nij,j->ni", g_sw, normalize(n_rest))
        w = _bend_weight(up_m, fo_m)
        n_eff = w * normalize(np.cross(up_m, fo_m)) + (1 - w) * n_fb
        g_up = frame_from(up_m, n_eff) @ frame_from(up_r, n_rest).T
        g_fo = frame_from(fo_m, n_eff) @ frame_from(fo_r, n_rest).T
        setg(f"upperarm01.{side}", g_up)
        setg(f"upperarm02.{side}", g_up)
        setg(f"lowerarm01.{side}", g_fo)
        setg(f"lowerarm02.{side}", g_fo)
        setg(f"wrist.{side}", g_fo)
        # leg: hinge axis from the knee bend; straight leg: from the foot direction
        hip_r, kn_r, an_r, toe_r = (rig.h(f"upperleg01.{side}"), rig.h(f"lowerleg01.{side}"),
                                    rig.h(f"foot.{side}"), rig.ball(side))
        th_r, sn_r, ft_r = kn_r - hip_r, an_r - kn_r, toe_r - an_r
        nl_rest = normalize(np.cross(ft_r, sn_r))
        th_m, sn_m, ft_m = m[:, kn] - m[:, hip], m[:, an] - m[:, kn], m[:, toe] - m[:, an]
        lateral = normalize(m[:, M_LHIP] - m[:, M_RHIP])   # body-left, as +x in Anny's rest
        n_foot = np.cross(ft_m, sn_m)
        wf = np.clip(np.linalg.norm(n_foot, axis=-1, keepdims=True) /
                     np.maximum(np.linalg.norm(ft_m, axis=-1, keepdims=True) *
                                np.linalg.norm(sn_m, axis=-1, keepdims=True), 1e-9) / 0.5, 0, 1)
        n_fb = normalize(wf * normalize(n_foot) + (1 - wf) * lateral)
        w = _bend_weight(th_m, sn_m, 12.0, 30.0)
        n_bent = normalize(np.cross(th_m, sn_m))
        n_bent = np.where((n_bent * n_fb).sum(-1, keepdims=True) < -0.5, -n_bent, n_bent)
        n_eff = w * n_bent + (1 - w) * n_fb
        g_th = frame_from(th_m, n_eff) @ frame_from(th_r, nl_rest).T
        g_sn = frame_from(sn_m, n_eff) @ frame_from(sn_r, nl_rest).T
        g_ft = frame_from(ft_m, n_eff) @ frame_from(ft_r, nl_rest).T
        setg(f"upperleg01.{side}", g_th)
        setg(f"upperleg02.{side}", g_th)
        setg(f"lowerleg01.{side}", g_sn)
        setg(f"lowerleg02.{side}", g_sn)
        setg(f"foot.{side}", g_ft)
    # everything else (fingers, toes) follows its parent
    for c in range(nb):
        if not done[c]:
            G[:, c] = G[:, rig.parents[c]]
            done[c] = True
    return G


def h36m_from_rig(heads: np.ndarray, head_top: np.ndarray, rig: RestRig) -> np.ndarray:
    """Posed bone heads (N,B,3) and scalp top (N,3) -> H36M-17 joints (N,17,3)."""
    h = lambda name: heads[:, rig.idx[name]]  # noqa: E731
    out = np.zeros((len(heads), 17, 3))
    out[:, 1], out[:, 2], out[:, 3] = h("upperleg01.R"), h("lowerleg01.R"), h("foot.R")
    out[:, 4], out[:, 5], out[:, 6] = h("upperleg01.L"), h("lowerleg01.L"), h("foot.L")
    out[:, 0] = (out[:, 1] + out[:, 4]) / 2
    out[:, 8] = h("neck01")
    chain = np.stack([out[:, 0]] + [h(f"spine0{k}") for k in (5, 4, 3, 2, 1)] + [out[:, 8]], 1)
    out[:, 7] = arc_point(chain, 0.5)
    out[:, 10] = head_top
    # CMU's "Head" joint (neck_nose) sits NECK_FRACTION of the way from the thorax to the head
    # top (0.665 on the cgspeed MB skeleton; the project's virtual-head rule for retargets). The
    # anatomical skull base of Anny's rig (its ``head`` bone) is lower, ~0.39 of the way, so
    # using it would add a definition offset of ~4 cm at this joint.
    out[:, 9] = out[:, 8] + NECK_FRACTION * (head_top - out[:, 8])
    out[:, 11], out[:, 12], out[:, 13] = h("upperarm01.L"), h("lowerarm01.L"), h("wrist.L")
    out[:, 14], out[:, 15], out[:, 16] = h("upperarm01.R"), h("lowerarm01.R"), h("wrist.R")
    return out


# --------------------------------------------------------------------------------------------
# Looks: body shape and colours
# --------------------------------------------------------------------------------------------
SKIN = [(0.95, 0.80, 0.68), (0.87, 0.68, 0.53), (0.72, 0.52, 0.38), (0.55, 0.38, 0.26),
        (0.38, 0.26, 0.18)]
HAIR = [(0.08, 0.06, 0.05), (0.25, 0.15, 0.08), (0.45, 0.30, 0.15), (0.75, 0.62, 0.38),
        (0.55, 0.55, 0.55)]
CLOTH = [(0.80, 0.10, 0.10), (0.10, 0.25, 0.70), (0.10, 0.55, 0.25), (0.95, 0.80, 0.20),
         (0.95, 0.95, 0.95), (0.15, 0.15, 0.18), (0.55, 0.20, 0.60), (0.95, 0.50, 0.10),
         (0.20, 0.65, 0.75), (0.45, 0.30, 0.20)]
FLOOR = [(0.55, 0.52, 0.48), (0.45, 0.50, 0.45), (0.60, 0.55, 0.45), (0.40, 0.42, 0.48)]
WALL = [(0.78, 0.82, 0.86), (0.85, 0.82, 0.75), (0.70, 0.75, 0.70), (0.88, 0.88, 0.88)]


def sample_looks(rng: np.random.Generator) -> dict:
    """Body-shape phenotype (Anny's [0,1] parameters) and colours for one clip."""
    # Anny's age: 0 baby, 1/3 child, 2/3 young adult, 1 old; its height parameter scales the
    # body strongly (and depends on age), so a standing height is drawn and solved for instead
    pheno = {"gender": float(rng.uniform(0, 1)), "age": float(rng.uniform(0.62, 0.95)),
             "muscle": float(rng.uniform(0.25, 0.8)), "weight": float(rng.uniform(0.2, 0.8)),
             "height": 0.5, "proportions": float(rng.uniform(0.3, 0.8))}
    shirt, trousers = rng.choice(len(CLOTH), 2, replace=False)
    return {"phenotype": pheno, "stature_m": float(rng.uniform(1.55, 1.92)),
            "skin": SKIN[rng.integers(len(SKIN))], "hair": HAIR[rng.integers(len(HAIR))],
            "shirt": CLOTH[shirt], "trousers": CLOTH[trousers],
            "shoes": CLOTH[rng.choice([5, 4, 1])],
            "long_sleeves": bool(rng.uniform() < 0.5), "shorts": bool(rng.uniform() < 0.25),
            "floor": FLOOR[rng.integers(len(FLOOR))], "wall": WALL[rng.integers(len(WALL))],
            "key_azimuth_deg": float(rng.uniform(-70, 70))}


# --------------------------------------------------------------------------------------------
# The parts that need anny / torch / pyrender
# --------------------------------------------------------------------------------------------
_MODEL = {}


def _anny_model():
    if "m" not in _MODEL:
        os.environ.setdefault("ANNY_CACHE_DIR", "/work/cache/anny")
        import anny
        import torch
        torch.set_num_threads(2)
        m = anny.Anny(pose_parameterization="world-orient")
        _MODEL["m"] = m
        _MODEL["coco"] = anny.KeypointsRegressor.coco(m)
    return _MODEL["m"], _MODEL["coco"]


@dataclass
class Body:
    rig: RestRig
    rest_vertices: np.ndarray     # (V,3)
    rest_poses: np.ndarray        # (B,4,4)
    faces: np.ndarray             # (F,3)
    colours: np.ndarray           # (V,3) in [0,1]
    top_vertex: int
    phenotype: dict
    height_m: float


def load_body(looks: dict) -> Body:
    """Shape the Anny body and paint it (clothes by skinning region, face, hair)."""
    import torch
    m, coco = _anny_model()
    with torch.no_grad():
        if "stature_m" in looks:   # solve the height parameter for the wanted standing height
            pheno = dict(looks["phenotype"])
            hs = []
            for h in (0.3, 0.7):
                v = m(phenotype_kwargs={**pheno, "height": h})["rest_vertices"][0, :, 2]
                hs.append(float(v.max() - v.min()))
            h = 0.3 + 0.4 * (looks["stature_m"] - hs[0]) / (hs[1] - hs[0])
            looks["phenotype"] = {**pheno, "height": float(np.clip(h, 0.0, 1.0))}
        out = m(phenotype_kwargs=looks["phenotype"])
        rest_v = out["rest_vertices"][0].numpy()
        heads = out["rest_bone_heads"][0].numpy()
        poses = out["rest_bone_poses"][0].numpy()
        kp = coco({"vertices": out["rest_vertices"]})[0].numpy()
        faces = m.faces.numpy().astype(np.int64)
    top = int(np.argmax(rest_v[:, 2]))
    rig = RestRig(list(m.bone_labels), [int(p) for p in m.bone_parents], heads, rest_v[top])
    colours = paint(m, rig, rest_v, kp, looks)
    height = float(rest_v[:, 2].max() - rest_v[:, 2].min())
    return Body(rig, rest_v, poses, faces, colours, top, looks["phenotype"], height)


def paint(m, rig: RestRig, v: np.ndarray, kp: np.ndarray, looks: dict) -> np.ndarray:
    """Per-vertex colours in Anny's rest frame (Z up, facing -Y, body-left at +X)."""
    if looks.get("mannequin"):                      # ablation: a grey, featureless body
        return np.full((len(v), 3), 0.62)
    bi = m.vertex_bone_indices.numpy()
    bw = m.vertex_bone_weights.numpy()
    dom = np.array(rig.labels, dtype=object)[bi[np.arange(len(bi)), np.argmax(bw, 1)]]
    col = np.tile(np.asarray(looks["skin"], float), (len(v), 1))
    has = lambda *keys: np.array([any(k in d for k in keys) for d in dom])  # noqa: E731
    z = v[:, 2]
    pelvis_z = (rig.h("upperleg01.L")[2] + rig.h("upperleg01.R")[2]) / 2
    belt_z = pelvis_z + 0.10 * (rig.h("neck01")[2] - pelvis_z) / 0.5
    torso = has("root", "pelvis", "spine", "clavicle", "shoulder01", "upperarm", "breast")
    shirt = (torso & (z > belt_z)) | has("upperarm", "clavicle", "shoulder01")
    if looks["long_sleeves"]:
        shirt |= has("lowerarm")
    trousers = (torso & (z <= belt_z)) | has("upperleg")
    if not looks["shorts"]:
        trousers |= has("lowerleg")
    shoes = has("foot", "toe")
    col[shirt] = looks["shirt"]
    col[trousers] = looks["trousers"]
    col[shoes] = looks["shoes"]
    if not looks.get("face", True):                 # ablation: plain head, no hair or features
        return col
    # face: COCO keypoints in rest pose: 0 nose, 1 l_eye, 2 r_eye, 3 l_ear, 4 r_ear
    nose, eyes, ears = kp[0], kp[[1, 2]], kp[[3, 4]]
    head = has("head") & ~has("eye")
    eye_z = eyes[:, 2].mean()
    hair_col = np.asarray(looks["hair"], float)
    # hair: scalp above the hairline and the back of the head
    hair = head & ((z > eye_z + 0.045) |
                   ((v[:, 1] > ears[:, 1].mean() - 0.005) & (z > ears[:, 2].mean() - 0.035)))
    col[hair] = hair_col
    # brows: strips above the eyes on the front of the face
    for e in eyes:
        dx = v[:, 0] - e[0]
        brow = head & (np.abs(dx) < 0.024) & (z > e[2] + 0.012 + 0.004 * (dx / 0.024) ** 2) & \
            (z < e[2] + 0.022 + 0.004 * (dx / 0.024) ** 2) & (v[:, 1] < e[1] + 0.02)
        col[brow] = hair_col * 0.8
    # lips: below the nose, where the mouth cavity opens
    mouth_z = nose[2] - 0.038
    lx = v[:, 0] / 0.026
    lips = head & (np.abs(lx) < 1) & (np.abs(z - mouth_z) < 0.009 * np.sqrt(np.clip(1 - lx ** 2, 0, 1)) + 1e-4) \
        & (v[:, 1] < nose[1] + 0.04)
    col[lips] = np.asarray(looks["skin"]) * np.array([0.75, 0.42, 0.42]) + np.array([0.12, 0, 0])
    # eyes: white eyeball, dark iris and pupil around the front-most point
    for side in ("L", "R"):
        ev = has(f"eye.{side}")
        if not ev.any():
            continue
        col[ev] = (0.93, 0.93, 0.9)
        front = v[ev][np.argmin(v[ev][:, 1])]
        r = np.linalg.norm(v - front, axis=1)
        col[ev & (r < 0.0065)] = (0.25, 0.16, 0.10)
        col[ev & (r < 0.003)] = (0.02, 0.02, 0.02)
    return col


def pose_body(body: Body, mocap: MocapClip, batch: int = 32):
    """Posed vertices (N,V,3), H36M joints (N,17,3), COCO keypoints (N,17,3) and the rig's skull
    base (N,3), world frame:
    the floor at y = 0, the trajectory scaled to the body's leg length."""
    import torch
    m, coco = _anny_model()
    world = mocap.world
    G = bone_world_rotations(body.rig, world)
    R = body.rest_poses[:, :3, :3]
    D = np.einsum("nbij,bjk->nbik", G, R)
    verts, heads, kps = [], [], []
    with torch.no_grad():
        for a in range(0, len(world), batch):
            d = np.zeros((len(D[a:a + batch]), len(R), 4, 4))
            d[:, :, :3, :3] = D[a:a + batch]
            d[:, :, 3, 3] = 1
            d[:, 0, :3, 3] = np.einsum("nij,j->ni", G[a:a + batch, 0], body.rig.heads[0])
            out = m(pose_parameters=torch.as_tensor(d, dtype=m.dtype),
                    phenotype_kwargs=body.phenotype)
            verts.append(out["vertices"].numpy())
            heads.append(out["bone_poses"][:, :, :3, 3].numpy())
            kps.append(coco(out)[:, :17].numpy())
    verts, heads, kps = np.concatenate(verts), np.concatenate(heads), np.concatenate(kps)
    joints = h36m_from_rig(heads, verts[:, body.top_vertex], body.rig)
    skull = heads[:, body.rig.idx["head"]]
    # place: pelvis follows the mocap root, scaled by leg length; feet on the floor
    leg_m = np.median(np.linalg.norm(world[:, M_LKNEE] - world[:, M_LHIP], axis=-1) +
                      np.linalg.norm(world[:, M_LANK] - world[:, M_LKNEE], axis=-1))
    leg_b = np.linalg.norm(body.rig.h("lowerleg01.L") - body.rig.h("upperleg01.L")) + \
        np.linalg.norm(body.rig.h("foot.L") - body.rig.h("lowerleg01.L"))
    scale = leg_b / leg_m
    target = world[:, M_PELVIS] * scale
    shift = target - joints[:, 0]
    floor = np.percentile((verts + shift[:, None])[:, :, 1].min(1), 5)
    shift[:, 1] -= floor
    return (verts + shift[:, None], joints + shift[:, None], kps + shift[:, None],
            skull + shift)


def _floor_mesh(colour, size=16.0, tiles=32):
    import trimesh
    xs = np.linspace(-size / 2, size / 2, tiles + 1)
    verts, faces, cols = [], [], []
    for i in range(tiles):
        for j in range(tiles):
            k = len(verts)
            verts += [[xs[i], 0, xs[j]], [xs[i + 1], 0, xs[j]], [xs[i + 1], 0, xs[j + 1]],
                      [xs[i], 0, xs[j + 1]]]
            faces += [[k, k + 2, k + 1], [k, k + 3, k + 2]]
            c = np.asarray(colour) * (0.92 if (i + j) % 2 else 1.04)
            cols += [c] * 4
    tm = trimesh.Trimesh(np.array(verts), np.array(faces),
                         vertex_colors=np.clip(np.array(cols) * 255, 0, 255).astype(np.uint8),
                         process=False)
    return tm


class Renderer:
    def __init__(self, looks: dict, k: np.ndarray, eye: np.ndarray, centre: np.ndarray):
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
        if not hasattr(np, "infty"):
            np.infty = np.inf
        import pyrender
        self.pr = pyrender
        s = SUPERSAMPLE
        flat = bool(looks.get("flat_light"))          # ablation: ambient light only
        self.scene = pyrender.Scene(bg_color=list(looks["wall"]) + [1.0],
                                    ambient_light=[0.85, 0.85, 0.85] if flat else [0.28, 0.28, 0.3])
        self.scene.add(pyrender.Mesh.from_trimesh(_floor_mesh(looks["floor"]), smooth=False))
        cam = pyrender.IntrinsicsCamera(k[0, 0] * s, k[1, 1] * s, k[0, 2] * s, k[1, 2] * s,
                                        znear=0.05, zfar=60.0)
        self.cam_node = self.scene.add(cam, pose=np.eye(4))
        # key light with shadows, from above and beside the camera; a weaker fill light (a point
        # light on the other side of the camera: no shadow pass) and ambient light
        view = normalize(centre - eye)
        az = np.deg2rad(looks["key_azimuth_deg"])
        d = np.array([np.cos(az) * view[0] - np.sin(az) * view[2], 0,
                      np.sin(az) * view[0] + np.cos(az) * view[2]])
        d = normalize(d * np.cos(np.deg2rad(50)) + np.array([0, -np.sin(np.deg2rad(50)), 0]))
        z = -d                                     # pyrender lights shine along their -z axis
        x = normalize(np.cross(np.array([0, 1.0, 0]), z))
        pose = np.eye(4)
        pose[:3, :3] = np.stack([x, z * 0 + np.cross(z, x), z], 1)
        if not flat:
            self.scene.add(pyrender.DirectionalLight(color=[1.0, 0.97, 0.92], intensity=3.2), pose=pose)
        side = normalize(np.cross(view, np.array([0, 1.0, 0]))) * (-np.sign(az) if az else 1.0)
        fill_at = eye + side * 2.0 + np.array([0, 1.0, 0])
        dist = np.linalg.norm(centre - fill_at)
        pose = np.eye(4)
        pose[:3, 3] = fill_at
        if not flat:
            self.scene.add(pyrender.PointLight(color=[0.9, 0.95, 1.0], intensity=1.4 * dist ** 2 * np.pi),
                           pose=pose)
        self.body_node = None
        self.r = pyrender.OffscreenRenderer(WIDTH * s, HEIGHT * s)
        self.flags = pyrender.RenderFlags.NONE if flat else pyrender.RenderFlags.SHADOWS_DIRECTIONAL

    def render(self, verts, faces, colours_u8, r_wc, t_wc) -> np.ndarray:
        import trimesh
        pr = self.pr
        tm = trimesh.Trimesh(verts, faces, vertex_colors=colours_u8, process=False)
        mesh = pr.Mesh.from_trimesh(tm, smooth=True)
        if self.body_node is not None:
            self.scene.remove_node(self.body_node)
        self.body_node = self.scene.add(mesh)
        # camera-to-world in OpenGL axes (x right, y up, looking along -z)
        pose = np.eye(4)
        rc = r_wc.T
        pose[:3, :3] = rc @ np.diag([1.0, -1.0, -1.0])
        pose[:3, 3] = -rc @ t_wc
        self.scene.set_pose(self.cam_node, pose)
        color, _ = self.r.render(self.scene, flags=self.flags)
        s = SUPERSAMPLE
        img = color.reshape(HEIGHT, s, WIDTH, s, 3).astype(np.float32).mean(axis=(1, 3))
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    def close(self):
        self.r.delete()


def render_clip(out_dir: Path, name: str, mocap: MocapClip, seed: int, crf: int = 23,
                camera: CameraSpec | None = None, looks: dict | None = None,
                max_frames: int | None = None, variant: str = "full",
                person_frac: float | None = None) -> Path:
    """Pose, film and write ``out_dir/name.mp4`` and ``out_dir/name.truth.npz``.

    variant: "full" (default) or an ablation of the looks: "plain_head" (no hair, eyes, brows,
    lips), "mannequin" (uniform grey body), "flat" (ambient light only, no shadows).
    """
    import imageio_ffmpeg
    rng = np.random.default_rng(seed)
    looks = looks or sample_looks(rng)
    looks = {**looks, "face": variant != "plain_head", "mannequin": variant == "mannequin",
             "flat_light": variant == "flat"}
    t0 = time.time()
    body = load_body(looks)
    verts, joints, kps, skull = pose_body(body, mocap)
    if max_frames:
        verts, joints, kps, skull = (verts[:max_frames], joints[:max_frames], kps[:max_frames],
                                     skull[:max_frames])
    t_pose = time.time() - t0
    spec = camera or sample_camera(rng, body.height_m, person_frac)
    facing0 = np.cross(np.array([0, 1.0, 0]), joints[0, 1] - joints[0, 4])  # up x (r - l) = fwd
    k, r_wc, t_wc, eye = place_camera(spec, joints[:, 0], facing0, body.height_m)
    j_cam = to_camera(joints, r_wc, t_wc)
    c_cam = to_camera(kps, r_wc, t_wc)
    j2d, c2d = project(j_cam, k), project(c_cam, k)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{name}.mp4"
    rend = Renderer(looks, k, eye, joints[:, 0].mean(0))
    cols = np.clip(body.colours * 255, 0, 255).astype(np.uint8)
    w = imageio_ffmpeg.write_frames(str(video), (WIDTH, HEIGHT), fps=FPS, codec="libx264",
                                    pix_fmt_out="yuv420p", macro_block_size=16,
                                    output_params=["-crf", str(crf), "-preset", "slow",
                                                   "-movflags", "+faststart"])
    w.send(None)
    t1 = time.time()
    for i in range(len(verts)):
        w.send(np.ascontiguousarray(rend.render(verts[i], body.faces, cols, r_wc[i], t_wc[i])))
    w.close()
    rend.close()
    t_render = (time.time() - t1) / max(len(verts), 1)
    np.savez_compressed(
        out_dir / f"{name}.truth.npz",
        joints3d_cam=j_cam, joints2d=j2d, coco2d=c2d, coco3d_cam=c_cam, K=k,
        skull_base_cam=to_camera(skull[:, None], r_wc, t_wc)[:, 0],
        fps=np.float64(FPS), width=np.int64(WIDTH), height=np.int64(HEIGHT),
        cam_R=r_wc, cam_t=t_wc, cam_eye=eye,
        phenotype_names=np.array(list(body.phenotype)),
        phenotype_values=np.array(list(body.phenotype.values())),
        body_height_m=np.float64(body.height_m),
        clip=np.array(mocap.name), subject=np.array(mocap.subject), source=np.array(mocap.source),
        mocap_frames=np.array([mocap.first, mocap.first + len(verts)]), seed=np.int64(seed),
        camera=np.array(json.dumps(spec.__dict__)),
        looks=np.array(json.dumps({k_: v for k_, v in looks.items() if k_ != "phenotype"})),
        variant=np.array(variant),
    )
    print(f"{name}: {len(verts)} frames, pose {t_pose:.1f} s, render {t_render * 1000:.0f} ms/frame, "
          f"body {body.height_m:.2f} m, focal {spec.focal:.0f}, person "
          f"{np.ptp(j2d[..., 1], axis=1).mean():.0f} px (head top..ankle), {video.stat().st_size / 1e6:.2f} MB",
          flush=True)
    return video


# Clips of the benchmark: held-out subjects only (07 walks, 13 everyday/jumps, 85 acrobatics).
# Not 07_12 from cmu_przestr: that copy is corrupt (joint speeds ~3x the other sources' copy,
# accelerations ~5x: jitter), so the clean cmu_iclone_cc copy is used.
BENCH = [
    # (clip, source, start s, max frames)
    ("07_01", "cmu_iclone_cc", 0.0, 240), ("07_04", "cmu_przestr", 0.0, 240),
    ("07_08", "cmu_iclone_cc", 0.0, 240), ("07_12", "cmu_iclone_cc", 0.0, 240),
    ("13_10", "cmu_przestr", 2.0, 240), ("13_13", "cmu_przestr", 0.0, 240),
    ("13_40", "cmu_przestr", 0.0, 240), ("13_19", "cmu_deepmimic_jump", 0.0, 240),
    ("13_32", "cmu_przestr", 0.0, 240), ("85_01", "cmu_deepmimic_jump", 0.0, 240),
    ("85_02", "cmu_deepmimic_jump", 0.0, 240), ("85_06", "cmu_deepmimic_jump", 0.0, 240),
    # breakdance (the held-out stand-in for dancing): handstand kicks, "helicopter"
    ("85_05", "cmu_deepmimic_jump", 2.0, 240), ("85_08", "cmu_deepmimic_jump", 0.0, 240),
]
EXAMPLE = ("07_05", "cmu_iclone_cc", 0.0, 150)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["example", "bench", "one"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clip", help="CMU take for 'one', e.g. 07_05")
    ap.add_argument("--source", default=None)
    ap.add_argument("--start", type=float, default=0.0)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--only", default=None, help="bench: comma-separated clip names")
    ap.add_argument("--variant", default="full", choices=["full", "plain_head", "mannequin", "flat"],
                    help="'one': an ablation of the looks")
    ap.add_argument("--person-frac", type=float, default=None,
                    help="'one': person height as a fraction of the frame height")
    a = ap.parse_args(argv)
    if a.what == "example":
        clip, src, start, n = EXAMPLE
        mo = load_mocap_clip(clip, src, start, n)
        rng = np.random.default_rng(a.seed or 7)
        looks = sample_looks(rng)
        # a three-quarter front view, the person ~60 % of the frame height
        cam = CameraSpec(focal=600.0, distance=600.0 * 1.7 / (0.6 * HEIGHT), height=1.4, yaw_deg=35.0)
        render_clip(a.out, "walk_" + clip, mo, seed=a.seed or 7, crf=a.crf, looks=looks, camera=cam)
    elif a.what == "one":
        mo = load_mocap_clip(a.clip, a.source, a.start, a.frames)
        tag = "" if a.variant == "full" else "_" + a.variant
        tag += f"_h{int(a.person_frac * 100)}" if a.person_frac else ""
        render_clip(a.out, f"{a.clip}_s{a.seed}{tag}", mo, seed=a.seed, crf=a.crf,
                    variant=a.variant, person_frac=a.person_frac)
    else:
        only = set(a.only.split(",")) if a.only else None
        for i, (clip, src, start, n) in enumerate(BENCH):
            if only and clip not in only:
                continue
            mo = load_mocap_clip(clip, src, start, n)
            render_clip(a.out, f"{clip}_{src.split('_')[1]}", mo, seed=100 + i, crf=a.crf)


if __name__ == "__main__":
    main()
