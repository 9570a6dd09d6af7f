"""Evaluate a lifter on held-out sequences: P1 (MPJPE), P2 (P-MPJPE), MPJVE, per action x subject.

Long sequences go through the same overlapping, tapered windows as ``posecli lift``
(:func:`posecli.windows.lift_windows`), or the paper's non-overlapping windows (stride == T).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from posecli.data import Layout, Sequence
from posecli.lifter import MixSTE, mirror
from posecli.metrics import mpjpe, mpjve, p_mpjpe
from posecli.windows import lift_windows

# MixSTE Table 4 (HumanEva-I, protocol 1, mm): Walk S1 S2 S3, Jog S1 S2 S3.
PAPER_HUMANEVA = {
    "MixSTE scratch (T=43)": None,  # the paper gives only the average for this row
}
PAPER_HUMANEVA_AVG = {"MixSTE scratch (T=43)": 28.5, "VideoPose3D (T=81)": 18.9,
                      "MixSTE fine-tuned from H36M (T=43)": 13.0}


def predict_batch(model: MixSTE, x: np.ndarray, perm: np.ndarray, flip: bool = True,
                  batch: int = 64) -> np.ndarray:
    """Lifter on whole windows with optional flip TTA, any layout. (B,T,J,2) -> (B,T,J,3)."""
    p = torch.as_tensor(perm)
    out = []
    with torch.inference_mode():
        for chunk in torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32).split(batch):
            y = model(chunk)
            if flip:
                y = (y + mirror(model(mirror(chunk, p)), p)) / 2
            out.append(y)
    return torch.cat(out).numpy()


def lift_sequence(model: MixSTE, x: np.ndarray, layout: Layout, flip: bool = True,
                  stride: int | None = None, fn=None) -> np.ndarray:
    """(N, J, 2) -> (N, J, 3) through blended windows (``stride=None``: T//2, overlapping).

    ``fn`` replaces the torch window function (e.g. an onnxruntime session's ``__call__``).
    """
    frames = model.cfg.frames if model is not None else fn.frames
    perm = layout.flip_permutation()
    if fn is None:
        model.eval()
        fn = lambda w: predict_batch(model, w, perm, flip)  # noqa: E731
    return lift_windows(fn, x, frames, stride)


def evaluate_sequences(model: MixSTE, seqs: list[Sequence], layout: Layout, flip: bool = True,
                       stride: int | None = None, joints: list[int] | None = None,
                       fn=None) -> dict:
    """Metrics in mm, frame-weighted, overall and per (action, subject).

    ``joints``: evaluate only these joint indices (after prediction), e.g. shared joints.
    Returns {"all": {p1,p2,mpjve,frames}, "cells": {(action, subject): {...}}}.
    """
    acc: dict = defaultdict(lambda: np.zeros(4))  # sum p1*n, p2*n, mpjve*(n-1), n
    for s in seqs:
        pred = lift_sequence(model, s.x, layout, flip, stride, fn)
        gt = s.y
        if joints is not None:
            pred, gt = pred[:, joints], gt[:, joints]
        pred = pred - pred[:, :1]
        gt = gt - gt[:, :1]
        n = len(gt)
        v = np.array([mpjpe(pred, gt) * n, p_mpjpe(pred, gt) * n,
                      (mpjve(pred, gt) * (n - 1)) if n > 1 else 0.0, n]) * np.array([1e3, 1e3, 1e3, 1])
        acc[(s.action, s.subject)] += v
        acc[("all", "all")] += v
    cells = {k: _finish(v) for k, v in acc.items() if k != ("all", "all")}
    return {"all": _finish(acc[("all", "all")]), "cells": cells}


def _finish(v: np.ndarray) -> dict:
    n = v[3]
    return {"p1": float(v[0] / n), "p2": float(v[1] / n), "mpjve": float(v[2] / max(n - 1, 1)), "frames": int(n)}


def cell_average(res: dict) -> dict:
    """Unweighted mean over (action, subject) cells, the papers' 'Avg' column."""
    cells = list(res["cells"].values())
    return {k: float(np.mean([c[k] for c in cells])) for k in ("p1", "p2", "mpjve")}
