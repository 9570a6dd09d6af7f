"""Fixed 2D/3D datasets: HumanEva-I and any VideoPose3D-format npz pair (e.g. Human3.6M).

- **HumanEva-I** (``shared/data/humaneva/``, VideoPose3D ``humaneva15`` format, 15 joints) with
  the ground-truth 2D of its 3 cameras and ``cameras.json`` extrinsics.
- **Any VideoPose3D-format npz pair** (``data_3d_*.npz`` + ``data_2d_*.npz``), e.g. Human3.6M
  with the standard split, cameras from a pickle like ``shared/data/h36m/mmpose_tests_cameras.pkl``.

Conventions: 2D inputs are normalised with :func:`posecli.skeleton.normalize_to_frame`;
3D targets are root-relative metres in camera axes (OpenCV: x right, y down, z forward).
"""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posecli.files import shared_data_dir
from posecli.skeleton import (HUMANEVA15_TO_H36M17, NUM_JOINTS, Layout, mirror,
                              normalize_to_frame, synthesise_h36m)
from posecli.training.cameras import quat_to_matrix


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
    positions in ``path_3d`` are world coordinates in metres; when the npz holds 32 H36M17
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
                perm = self.layout.flip_permutation()
                x, y = mirror(x, perm), mirror(y, perm)
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


def humaneva_as_h36m(seqs: list[Sequence]) -> list[Sequence]:
    """HumanEva-15 sequences in the H36M17-17 layout (for CMU-trained models).

    Shared joints are copied (HUMANEVA15_TO_H36M17); spine = mid(pelvis, thorax) and neck_nose =
    thorax + 0.665 (head - thorax), in 2D as at inference and in 3D likewise. Evaluate on
    ``list(HUMANEVA15_TO_H36M17)`` joints only.
    """
    out = []
    for s in seqs:
        x = np.zeros(s.x.shape[:1] + (NUM_JOINTS, 2), np.float32)
        y = np.zeros(s.y.shape[:1] + (NUM_JOINTS, 3), np.float32)
        x[:, list(HUMANEVA15_TO_H36M17)] = s.x
        y[:, list(HUMANEVA15_TO_H36M17)] = s.y
        synthesise_h36m(x, pelvis_thorax=False)
        synthesise_h36m(y, pelvis_thorax=False)
        out.append(Sequence(x, y, s.subject, s.action, s.camera, s.meta))
    return out
