"""Learn the fusion of the lifter's 3D with BlazePose's world landmarks
(:mod:`posecli.lifter.fusion`): fitted on one set of rendered clips, chosen on another, written
to ``weights/fusion.npz`` with its manifest entry.

    # the detector once per clip (see benchmarks/fusion_ablation.py collect)
    python benchmarks/fusion_ablation.py collect /work/cache/rendered_fit --cache /work/cache/fusion/fit
    python benchmarks/fusion_ablation.py collect /work/cache/rendered_choose --cache /work/cache/fusion/choose
    nice -n 10 python tools/fit_fusion.py --fit /work/cache/fusion/fit \\
        --choose /work/cache/fusion/choose --out weights/fusion.npz --report fit_report.json

Candidates (every one fitted on FIT only):
- ``weights``: one weight per joint and axis, least squares (``fused = L + w * D``; the
  weight minimising the squared error to the truth, clipped to [0, 1]), for each temporal
  smoothing of D (Gaussian sigma in frames);
- ``temporal``: a 3-layer 1D convolution over each joint's track (kernels 9, 9 dilated by 2,
  1; 32 channels; inputs D, |D|, 2D confidence, flip disagreement, the joint's one-hot;
  outputs a gate per axis and a correction), trained with torch on CPU (MPJPE + velocity error,
  AdamW), its checkpoint chosen on CHOOSE.
The candidate with the lowest mean P1 on CHOOSE through the whole product path (rigid and
plausible bones included) is written. The TEST clips are never read here.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import fusion_ablation as fa  # noqa: E402
from posecli.lifter import fusion as fu  # noqa: E402

SIGMAS = (0.0, 1.5, 3.0, 5.0)
SCALES = ("bones", "none")
SMOOTH = 3.0  # frames: the smoothing the networks are also trained with
#: networks tried: name -> (kernel, dilation) per layer, hidden channels. "gated" is one
#: linear layer per frame (a gate per joint and axis from the confidences); "temporal" looks
#: at 17 frames around each one.
ARCHS = {"gated": ([(1, 1)], 0), "temporal": ([(5, 1), (5, 3), (1, 1)], 16)}
#: outputs per joint: 3 gates (one per axis); a correction term (6 outputs) overfitted the few
#: FIT clips (CHOOSE P1 131-150 mm against 107 for least squares with 3 FIT clips)
OUTPUTS = 3


def mirror(rec: dict) -> dict:
    """A recorded clip seen in a mirror (x -> -x, left <-> right): twice the FIT data."""
    from posecli import skeleton

    perm = skeleton.flip_permutation()
    out = {}
    for k, v in rec.items():
        if k == "has":
            out[k] = v
        elif v.ndim == 3:  # (N, 17, 3)
            out[k] = v[:, perm] * np.array([-1.0, 1.0, 1.0])
        else:              # (N, 17)
            out[k] = v[:, perm]
    return out


def fit_weights(recs: list[dict], config: dict) -> np.ndarray:
    """Least-squares per joint and axis: w = sum(D (G - L)) / sum(D^2) over every FIT frame,
    clipped to [0, 1] -> (17, 3)."""
    num, den = np.zeros((17, 3)), np.zeros((17, 3))
    for r in recs:
        lifted, d = fu.prepare(r["lifted"], r["world"], r["has"], config)
        m = r["has"][:, None, None]
        num += (m * d * (r["gt"] - lifted)).sum(0)
        den += (m * d * d).sum(0)
    return np.clip(num / np.maximum(den, 1e-9), 0.0, 1.0)


def pre_rigid_p1(fusion: fu.Fusion, recs: list[dict]) -> float:
    """Mean per-clip P1 (mm, 14 joints) of the fused pose before the bone steps (cheap)."""
    out = []
    for r in recs:
        f = fusion(r["lifted"], r["world"], r["conf"], r["disagree"], r["has"])
        out.append(fa.scores(f, r["gt"])["p1"])
    return float(np.mean(out))


def train_temporal(fit: list[dict], choose: list[dict], config: dict, minutes: float,
                   arch: str = "temporal", init_w: np.ndarray | None = None, seed: int = 0,
                   window: int = 64, batch: int = 32, log=print
                   ) -> tuple[dict[str, np.ndarray], dict]:
    """Train a fusion network (``ARCHS[arch]``) on FIT windows (and their mirror images); keep
    the checkpoint with the best pre-rigid P1 on CHOOSE (the starting point too when it is the
    least-squares one).
    ``init_w`` (17, 3): a one-layer network starts as these per-joint weights (least squares).
    Returns (numpy params, record)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.set_num_threads(1)
    layers_spec, hidden = ARCHS[arch]
    kernels, dilations = [k for k, _ in layers_spec], [d for _, d in layers_spec]
    seqs = []
    for r in fit + [mirror(r) for r in fit]:
        lifted, d = fu.prepare(r["lifted"], r["world"], r["has"], config)
        x = fu.features(d, r["conf"], r["disagree"])
        seqs.append([torch.tensor(a, dtype=torch.float32) for a in
                     (x, lifted, d, r["gt"], r["has"].astype(np.float32))])
    fin = seqs[0][0].shape[-1]
    layers = []
    for i, (ks, dil) in enumerate(layers_spec):
        cin = fin if i == 0 else hidden
        cout = OUTPUTS if i == len(layers_spec) - 1 else hidden
        layers.append(nn.Conv1d(cin, cout, ks, dilation=dil, padding=(ks - 1) * dil // 2,
                                padding_mode="replicate"))
        if i < len(layers_spec) - 1:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    with torch.no_grad():  # start as a plain half/half average with no correction
        net[-1].weight.mul_(0.01)
        net[-1].bias.zero_()
        if init_w is not None and len(layers_spec) == 1:  # one-hot columns: per-joint logits
            w = np.clip(init_w, 0.02, 0.98)
            net[-1].weight.zero_()
            net[-1].weight[:3, fu.NUM_FEATURES:fu.NUM_FEATURES + 17, 0] = torch.tensor(
                np.log(w / (1 - w)).T, dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)

    def params() -> dict[str, np.ndarray]:
        convs = [m for m in net if isinstance(m, nn.Conv1d)]
        return {**{f"conv{i}_w": c.weight.detach().double().numpy().copy()
                   for i, c in enumerate(convs)},
                **{f"conv{i}_b": c.bias.detach().double().numpy().copy()
                   for i, c in enumerate(convs)}}

    cfg = {**config, "kind": "temporal", "dilations": dilations}
    best, step, history = params(), 0, []
    # the start competes only when it is itself learned (least squares); a random start is a
    # plain half/half average, not a fusion learned from data
    learned_start = init_w is not None and len(layers_spec) == 1
    best_p1 = pre_rigid_p1(fu.Fusion(cfg, best), choose) if learned_start else np.inf
    best_step = 0
    lens = np.array([len(s[0]) for s in seqs], float)
    t0 = last = time.time()
    done = False
    while not done:
        done = time.time() - t0 >= minutes * 60
        xs, ls, ds, gs, ms = [], [], [], [], []
        for c in rng.choice(len(seqs), batch, p=lens / lens.sum()):
            x, lifted, d, g, m = seqs[c]
            s = int(rng.integers(0, max(1, len(x) - window + 1)))
            sl = slice(s, s + window)
            if len(x[sl]) < window:
                continue
            xs.append(x[sl]), ls.append(lifted[sl]), ds.append(d[sl]), gs.append(g[sl])
            ms.append(m[sl])
        x, lifted, d, g, m = (torch.stack(a) for a in (xs, ls, ds, gs, ms))  # (B, T, 17, ...)
        b, t, j, f = x.shape
        out = net(x.permute(0, 2, 3, 1).reshape(b * j, f, t))  # (B*17, 6, T)
        out = out.reshape(b, j, OUTPUTS, t).permute(0, 3, 1, 2)  # (B, T, 17, OUTPUTS)
        fused = lifted + torch.sigmoid(out[..., :3]) * d
        if OUTPUTS == 6:
            fused = fused + out[..., 3:]
        fused = fused - fused[:, :, :1]
        err = torch.linalg.norm(fused - g, dim=-1)[..., 1:].mean(-1)  # (B, T)
        vel = torch.linalg.norm((fused[:, 1:] - fused[:, :-1]) - (g[:, 1:] - g[:, :-1]),
                                dim=-1)[..., 1:].mean(-1)
        mw = m[:, 1:] * m[:, :-1]
        loss = (err * m).sum() / m.sum().clamp(min=1) + 1.0 * (vel * mw).sum() / mw.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if done or time.time() - last > 20:  # checkpoints judged on CHOOSE every 20 s
            last = time.time()
            p = params()
            p1 = pre_rigid_p1(fu.Fusion(cfg, p), choose)
            history.append((step, round(loss.item(), 5), round(p1, 2)))
            log(f"  temporal step {step}: loss {loss.item():.4f}, CHOOSE pre-rigid P1 {p1:.1f} mm")
            if p1 < best_p1:
                best, best_p1, best_step = p, p1, step
    with torch.no_grad():  # the numpy network of posecli.lifter.fusion is this one
        x = seqs[0][0]
        want = net(x.permute(1, 2, 0)).permute(2, 0, 1).double().numpy()
        got = fu.temporal_net(x.double().numpy(), params(), dilations)
        if not np.allclose(want, got, atol=1e-4):
            raise RuntimeError(f"numpy / torch fusion mismatch: {np.abs(want - got).max()}")
    record = {"steps": step, "best_step": best_step, "best_choose_pre_rigid_p1": round(best_p1, 2),
              "minutes": round((time.time() - t0) / 60, 2), "arch": arch, "hidden": hidden,
              "window": window, "batch": batch, "kernels": kernels, "dilations": dilations,
              "parameters": int(sum(v.size for v in best.values())),
              "augmentation": "mirror images (x -> -x, left <-> right)",
              "optimiser": "AdamW lr 2e-3, weight decay 1e-3", "loss": "MPJPE + velocity error",
              "history": history}
    return best, record


def save(path: Path, config: dict, params: dict[str, np.ndarray]) -> None:
    """Write a fusion file (npz: ``config`` as a JSON string beside the arrays), atomically."""
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez(tmp, config=np.array(json.dumps(config)),
             **{k: v.astype(np.float32) for k, v in params.items()})
    os.replace(tmp, path)


def mean_scores(rows: list[dict]) -> dict:
    return {k: round(float(np.mean([r[k] for r in rows])), 2)
            for k in ("p1", "p2", "mpjve", "knee", "knee_gt")} | {
        "knee_abs_err": round(float(np.mean([abs(r["knee"] - r["knee_gt"]) for r in rows])), 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fit", type=Path, required=True, help="collected FIT clips")
    ap.add_argument("--choose", type=Path, required=True, help="collected CHOOSE clips")
    ap.add_argument("--out", type=Path, default=REPO / "weights" / fu.DEFAULT_FUSION)
    ap.add_argument("--candidates", type=Path, default=Path("/work/cache/fusion/candidates"))
    ap.add_argument("--minutes", type=float, default=6.0, help="temporal training time")
    ap.add_argument("--report", type=Path)
    ap.add_argument("--no-manifest", action="store_true")
    a = ap.parse_args(argv)
    from posecli.lifter import load_lifter

    t_start = time.time()
    lifter = load_lifter()
    fit_data, choose_data = fa.load_cache(a.fit), fa.load_cache(a.choose)
    if not fit_data or not choose_data:
        raise SystemExit("error: no collected clips in --fit or --choose")
    fit = [fa.record(d, lifter) for _, d in fit_data]
    choose = [fa.record(d, lifter) for _, d in choose_data]
    print(f"FIT {len(fit)} clips / {sum(len(r['gt']) for r in fit)} frames; "
          f"CHOOSE {len(choose)} clips / {sum(len(r['gt']) for r in choose)} frames", flush=True)
    a.candidates.mkdir(parents=True, exist_ok=True)
    cands: dict[str, tuple[dict, dict]] = {}
    for scale in SCALES:
        for sigma in SIGMAS:
            name = f"weights-{scale}-s{sigma:g}"
            cfg = {"kind": "weights", "smooth_sigma": sigma, "scale": scale}
            w = fit_weights(fit, cfg)
            cands[name] = ({**cfg, "name": name}, {"w": w})
            print(f"{name}: mean w {w.mean():.2f}, CHOOSE pre-rigid P1 "
                  f"{pre_rigid_p1(fu.Fusion(*cands[name]), choose):.1f}", flush=True)
    best_ls = min(cands, key=lambda n: pre_rigid_p1(fu.Fusion(*cands[n]), choose))
    train_records = {}
    # the networks start from the best least-squares configuration, and from the smoothed one
    # (BlazePose is per-frame: unsmoothed, it costs velocity error)
    starts = list(dict.fromkeys([best_ls, f"weights-{cands[best_ls][0]['scale']}-s{SMOOTH:g}"]))
    runs = [(arch, s) for arch in ARCHS for s in starts]
    for arch, start in runs:
        cfg = {k: cands[start][0][k] for k in ("smooth_sigma", "scale")}
        name = f"{arch}-{cfg['scale']}-s{cfg['smooth_sigma']:g}"
        print(f"{name}:", flush=True)
        p, rec = train_temporal(fit, choose, cfg, a.minutes / len(runs), arch,
                                init_w=cands[start][1]["w"])
        cands[name] = ({**cfg, "kind": "temporal", "dilations": rec["dilations"], "name": name}, p)
        train_records[name] = rec
    files = {}
    for name, (cfg, p) in cands.items():
        files[name] = a.candidates / f"{name}.npz"
        save(files[name], cfg, p)
    variants = ["off", "world", "average-0.6"] + [str(f) for f in files.values()]
    rows = fa.score_set(choose_data, lifter, variants)
    names = {str(f): n for n, f in files.items()}
    for r in rows:
        r["variant"] = names.get(r["variant"], r["variant"])
    order = ["off", "world", "average-0.6", *files]
    print(fa.table(rows, order, {}))
    summary = {v: mean_scores([r for r in rows if r["variant"] == v]) for v in order}
    # the lowest P1 among candidates that keep the pure lifter's smoothness (MPJVE), the
    # lowest P1 overall when none does
    smooth = [n for n in files if summary[n]["mpjve"] <= summary["off"]["mpjve"]] or list(files)
    best = min(smooth, key=lambda n: (summary[n]["p1"], summary[n]["mpjve"]))
    print(f"chosen on CHOOSE: {best} {summary[best]}")
    cfg, p = cands[best]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    save(a.out, cfg, p)
    fit_rows = fa.score_set(fit_data, lifter, ["off", str(files[best])])
    fit_summary = {("off" if r == "off" else best): mean_scores(
        [x for x in fit_rows if x["variant"] == r]) for r in ("off", str(files[best]))}
    minutes = (time.time() - t_start) / 60
    report = {"chosen": best, "config": cfg, "choose_means": summary, "fit_means": fit_summary,
              "fit_clips": [n for n, _ in fit_data], "choose_clips": [n for n, _ in choose_data],
              "fit_frames": int(sum(len(r["gt"]) for r in fit)),
              "training": train_records.get(best), "minutes_total": round(minutes, 1),
              "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared), no GPU",
              "choose_rows": rows}
    if a.report:
        a.report.write_text(json.dumps(report, indent=1))
    if not a.no_manifest and a.out.resolve().parent == (REPO / "weights").resolve():
        write_manifest(a.out, report)
    return 0


def write_manifest(path: Path, report: dict) -> None:
    """Record the fusion file in weights/manifest.json: sha256, data, configuration, training
    time and hardware, metrics."""
    import hashlib

    man_path = path.parent / "manifest.json"
    raw = man_path.read_text()
    man = json.loads(raw)
    data = path.read_bytes()
    entry = {
        "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "kind": "fusion",
        "config": report["config"],
        "source": "trained by posecli (tools/fit_fusion.py)",
        "licence": "Apache-2.0 (posecli's own)",
        "training_data": {
            "dataset": "posecli's own renders (tools/render_clips.py) of CMU motion capture of "
                       "training subjects only (never CMU 07, 13, 85 or HumanEva), Anny bodies, "
                       "static cameras; FIT clips to fit, CHOOSE clips to choose, the TEST "
                       "clips never read",
            "acknowledgement": "The data used in this project was obtained from "
                               "mocap.cs.cmu.edu. The database was created with funding from "
                               "NSF EIA-0196217.",
            "fit_clips": report["fit_clips"], "choose_clips": report["choose_clips"],
            "fit_frames": report["fit_frames"],
            "inputs": "posecli's own BlazePose-full 2D + world landmarks and the shipped lifter.pt",
        },
        "training": {**(report["training"] or {"method": "closed-form least squares"}),
                     "minutes_total": report["minutes_total"], "hardware": report["hardware"]},
        "metrics_choose_mm": report["choose_means"][report["chosen"]],
        "metrics_choose_fusion_off_mm": report["choose_means"]["off"],
        "metrics_fit_mm": report["fit_means"],
        "protocol": "14 joints shared with MediaPipe, pelvis-aligned, after rigid and plausible "
                    "bones (the product path); knee: median flexion, deg",
    }
    entry["training"].pop("history", None)
    man["files"][path.name] = entry
    man_path.write_text(json.dumps(man, indent=2, ensure_ascii=False) + ("\n" if raw.endswith("\n") else ""))


if __name__ == "__main__":
    raise SystemExit(main())
