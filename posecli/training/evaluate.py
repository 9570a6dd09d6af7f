"""Evaluate a lifter on held-out sequences: P1 (MPJPE), P2 (P-MPJPE), MPJVE, per action x subject.

Sequences go through the same runtime as ``posecli lift`` (:class:`posecli.lifter.Lifter`:
flip TTA, overlapping tapered windows), or the paper's non-overlapping windows (stride == T).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from posecli.lifter import Lifter, from_model
from posecli.skeleton import H36M17, HUMANEVA15, HUMANEVA15_TO_H36M17, Layout
from posecli.training.datasets import Sequence
from posecli.training.metrics import mpjpe, mpjve, p_mpjpe

# MixSTE Table 4 (HumanEva-I, protocol 1, mm), average over Walk/Jog x S1-S3.
PAPER_HUMANEVA_AVG = {"MixSTE scratch (T=43)": 28.5, "VideoPose3D (T=81)": 18.9,
                      "MixSTE fine-tuned from H36M (T=43)": 13.0}


def evaluate_sequences(lifter: Lifter, seqs: list[Sequence], joints: list[int] | None = None) -> dict:
    """Metrics in mm, frame-weighted, overall and per (action, subject).

    ``lifter``: the runtime (its flip and stride apply), e.g. :func:`posecli.lifter.from_model`.
    ``joints``: evaluate only these joint indices (after prediction), e.g. shared joints.
    Returns {"all": {p1,p2,mpjve,frames}, "cells": {(action, subject): {...}},
    "per_joint": [P1 of each scored joint, mm]}.
    """
    acc: dict = defaultdict(lambda: np.zeros(4))  # sum p1*n, p2*n, mpjve*(n-1), n
    # (J,) summed per-joint error, to see which joints carry the error
    joint_sum = np.zeros(len(joints) if joints is not None else lifter.layout.joints)
    for s in seqs:
        pred = lifter(s.x)
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
        joint_sum += np.linalg.norm(pred - gt, axis=-1).sum(axis=0) * 1e3
    cells = {k: _finish(v) for k, v in acc.items() if k != ("all", "all")}
    total = acc[("all", "all")]
    return {"all": _finish(total), "cells": cells,
            "per_joint": (joint_sum / max(total[3], 1)).round(2).tolist()}


def _finish(v: np.ndarray) -> dict:
    n = v[3]
    return {"p1": float(v[0] / n), "p2": float(v[1] / n), "mpjve": float(v[2] / max(n - 1, 1)), "frames": int(n)}


def cell_average(res: dict) -> dict:
    """Unweighted mean over (action, subject) cells, the papers' 'Avg' column."""
    cells = list(res["cells"].values())
    return {k: float(np.mean([c[k] for c in cells])) for k in ("p1", "p2", "mpjve")}


def load_eval_data(data: str, joints: int, data_2d: str = "", cameras: str = "",
                   cameras_per_clip: int = 2) -> tuple[list[Sequence], Layout, list[int] | None, str]:
    """(sequences, layout, joints to score or None, description) for ``data`` and a model
    with ``joints`` joints. A 17-joint model on HumanEva is scored on the 15 shared joints
    (spine and neck synthesised from the HumanEva joints as at inference)."""
    from posecli.training.datasets import humaneva_as_h36m, load_humaneva, load_vp3d
    from posecli.training.mocap import HELD_OUT_CMU, cmu_eval_sequences, cmu_files, load_cmu
    if data == "humaneva":
        seqs = load_humaneva("Validate")
        if joints == 17:
            return (humaneva_as_h36m(seqs), H36M17, list(HUMANEVA15_TO_H36M17),
                    "HumanEva-I Validate Walk/Jog S1-S3, 3 cameras, GT 2D; 17-joint model scored on the 15 shared joints")
        return seqs, HUMANEVA15, None, "HumanEva-I Validate Walk/Jog S1-S3, 3 cameras, GT 2D, 15 joints"
    if data in ("cmu", "cmu-typical", "cmu-clean", "cmu-more"):
        from posecli.training.cameras import TYPICAL_CAMERA, CameraAug
        aug = TYPICAL_CAMERA if data == "cmu-typical" else CameraAug()
        if data == "cmu-more":  # cmu_more.npz's held-out subjects (13, 85), cleaned
            clips, what = load_cmu(cmu_files(True)[1:], subjects=HELD_OUT_CMU, clean=True), "cmu_more.npz, cleaned"
        else:  # "cmu": the raw held-out set, comparable across versions; "cmu-clean": cleaned
            clips = load_cmu(subjects=HELD_OUT_CMU, clean=data == "cmu-clean")
            what = "cmu_h36m.npz" + (", cleaned" if data == "cmu-clean" else "")
        seqs = cmu_eval_sequences(clips, cameras_per_clip, seed=0, aug=aug)
        for s in seqs:
            s.action = "cmu"
        kind = "eye-level 'typical video' cameras (1.0-1.8 m high, 3-6 m away)" if data == "cmu-typical" \
            else "training-distribution virtual cameras"
        return (seqs, H36M17, None, f"CMU held-out subjects {', '.join(HELD_OUT_CMU)} ({what}), {cameras_per_clip} "
                f"fixed-seed {kind} per clip, GT 2D")
    seqs = load_vp3d(data, data_2d, ("S9", "S11"), cameras)
    return seqs, H36M17, None, f"{data} S9, S11"


def run_evaluation(weights: str | Path, data: str = "humaneva", data_2d: str = "", cameras: str = "",
                   cameras_per_clip: int = 2, flip: bool = True, threads: int = 1,
                   json_out: str | Path | None = None, device: str = "cpu") -> dict:
    """Evaluate a checkpoint with overlapping (stride T/2) and non-overlapping windows; print tables."""
    import json

    from rich.console import Console
    from rich.table import Table

    from posecli.lifter import load_model

    torch.set_num_threads(threads)
    console = Console()
    if not console.is_terminal:  # logs and pipes: do not squeeze the table into 80 columns
        console = Console(width=150)
    model, meta = load_model(weights)
    model.to(device)
    seqs, layout, joints, desc = load_eval_data(data, model.cfg.joints, data_2d, cameras, cameras_per_clip)
    t = model.cfg.frames
    results = {}
    for name, stride in (("overlap", max(1, t // 2)), ("non-overlap", t)):
        res = evaluate_sequences(from_model(model, flip, stride), seqs, joints)
        res["cell_avg"] = cell_average(res)
        results[name] = res
    table = Table(title=f"{Path(weights).name} on {desc} (mm; flip TTA {'on' if flip else 'off'}; T={t})")
    table.add_column("action")
    table.add_column("subject")
    for name in results:
        for m in ("P1", "P2", "MPJVE"):
            table.add_column(f"{m} {name}", justify="right")
    keys = sorted(results["overlap"]["cells"])
    for k in keys:
        table.add_row(k[0], k[1], *[f"{results[n]['cells'][k][m]:.1f}" if m != "mpjve" else
                                     f"{results[n]['cells'][k][m]:.2f}"
                                     for n in results for m in ("p1", "p2", "mpjve")])
    table.add_row("avg over cells", "", *[f"{results[n]['cell_avg'][m]:.2f}" for n in results
                                          for m in ("p1", "p2", "mpjve")])
    table.add_row("all frames", "", *[f"{results[n]['all'][m]:.2f}" for n in results
                                      for m in ("p1", "p2", "mpjve")])
    console.print(table)
    names = [layout.names[j] for j in (joints if joints is not None else range(len(layout.names)))]
    worst = sorted(zip(results["overlap"]["per_joint"], names), reverse=True)[:5]
    console.print("largest per-joint P1 (overlap): " + ", ".join(f"{n} {e:.1f}" for e, n in worst))
    out = {"weights": str(weights), "data": desc, "frames": t, "flip": flip, "joint_names": names,
           **{n: {"all": r["all"], "cell_avg": r["cell_avg"], "per_joint": r["per_joint"],
                  "cells": {f"{a}/{s}": v for (a, s), v in r["cells"].items()}} for n, r in results.items()}}
    if json_out:
        Path(json_out).write_text(json.dumps(out, indent=1))
    return out
