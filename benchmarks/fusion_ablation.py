"""Fusion of the lifter's 3D with BlazePose's world landmarks, measured on rendered clips with
truth: one table of fusion variants, per clip and averaged, beside MediaPipe.

    # 1. run the detector once per clip (kept in a cache: 2D, world landmarks, visibility)
    python benchmarks/fusion_ablation.py collect /work/cache/rendered_choose \\
        --cache /work/cache/fusion/choose [--detector blazepose-heavy]
    # 2. score variants (fusion files; "off" is the pure lifter; "world" BlazePose alone)
    python benchmarks/fusion_ablation.py score --cache /work/cache/fusion/choose \\
        --fusion off world average-0.6 weights/fusion.npz --mediapipe /work/cache/mp/choose

Every variant goes through the product path (``posecli.pipeline.lift_keypoints``: gap filling,
the lifter, the fusion, rigid and plausible bones), with the lifter run once per clip (its
output is reused across variants). Scores, pelvis-aligned, on the 14 joints MediaPipe's world
landmarks also measure (as ``benchmarks/e2e_accuracy.py``): P1, P2 (Procrustes), MPJVE (mm),
and the median knee flexion (degrees; 0 = straight; the truth's beside it). ``--json`` writes
every row. The fusion's own cost per frame is timed (``fusion_ms``: 2 cores, shared machine).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from posecli import pipeline  # noqa: E402
from posecli.lifter import fusion as fusion_mod  # noqa: E402

SHARED14 = [0, 1, 2, 3, 4, 5, 6, 8, 11, 12, 13, 14, 15, 16]
#: built-in variants that are not files: the pure lifter, BlazePose's world landmarks alone
#: (its own size), the issue's fixed average 0.4 lifter + 0.6 BlazePose
BUILTIN = {
    "world": ({"kind": "weights", "name": "world", "smooth_sigma": 0.0, "scale": "none"}, 1.0),
    "average-0.6": ({"kind": "weights", "name": "average-0.6", "smooth_sigma": 0.0,
                     "scale": "none"}, 0.6),
}


# ---------------------------------------------------------------------------------------------
# Data: one detector run per clip, cached

def clips(folder: Path, settle: float = 0.0) -> list[Path]:
    """Videos in ``folder`` that have a ``<name>.truth.npz`` beside them (and, with ``settle``,
    that nobody wrote to in the last ``settle`` seconds: clips still being rendered wait)."""
    now = time.time()
    return sorted(v for v in Path(folder).glob("*.mp4")
                  if v.with_name(v.stem + ".truth.npz").exists()
                  and now - max(v.stat().st_mtime, v.with_name(v.stem + ".truth.npz").stat().st_mtime)
                  >= settle)


def collect(video: Path, out: Path, detector: str = "blazepose-full", threads: int = 2) -> Path:
    """Run posecli's detector and tracker on ``video`` and keep the chosen person's track and
    the truth in ``out`` (npz): xy (N,33,2) px, conf, found, world (N,33,3), vis, width,
    height, fps, times, gt (N,17,3) camera metres, detect_s (detector seconds)."""
    t0 = time.perf_counter()
    info, track, det = pipeline.detect_person(video, detector=detector, threads=threads)
    seconds = time.perf_counter() - t0
    with np.load(video.with_name(video.stem + ".truth.npz")) as t:
        gt = np.asarray(t["joints3d_cam"], float)
    world = track.world if track.world is not None else np.full(track.xy.shape[:2] + (3,), np.nan)
    vis = track.visibility if track.visibility is not None else np.zeros(track.xy.shape[:2])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, xy=track.xy, conf=track.conf, found=track.found, world=world,
                        vis=vis, width=info.width, height=info.height, fps=info.fps,
                        times=np.asarray(info.report.times, float), gt=gt, detect_s=seconds,
                        detector=detector)
    tmp.rename(out)
    return out


def load_cache(folder: Path) -> list[tuple[str, dict]]:
    """(clip name, arrays) for every collected clip in ``folder``, sorted by name."""
    out = []
    for p in sorted(Path(folder).glob("*.npz")):
        if p.name.endswith(".tmp.npz"):
            continue
        with np.load(p, allow_pickle=False) as z:
            out.append((p.stem, {k: z[k] for k in z.files}))
    return out


# ---------------------------------------------------------------------------------------------
# Lifting through the product path

class CachedLifter:
    """A lifter that runs the real one once per distinct input and replays it (the variants of
    one clip differ only after the lifter)."""

    def __init__(self, real) -> None:
        self.real, self.info, self._memo, self._dis = real, real.info, {}, None

    def lift(self, x2d: np.ndarray):
        key = hash(np.ascontiguousarray(x2d).tobytes())
        if key not in self._memo:
            out = self.real.lift(x2d)
            self._memo[key] = (out, self.real.flip_disagreement())
        out, self._dis = self._memo[key]
        return out

    def flip_disagreement(self):
        return self._dis


class Recorder(fusion_mod.Fusion):
    """A 'fusion' that returns the lifter's pose and keeps what the fusion would see."""

    def __init__(self) -> None:
        super().__init__({"kind": "record"}, {}, {"name": "record"})
        self.seen: dict = {}

    def __call__(self, lifted, world, conf, disagree, has=None):
        self.seen = dict(lifted=lifted.copy(), world=world.copy(), conf=conf.copy(),
                         disagree=disagree.copy(), has=np.ones(len(lifted), bool) if has is None
                         else has.copy())
        return lifted


def lift_clip(d: dict, lifter, fusion) -> "LiftResult":  # noqa: F821
    """Lift a collected clip as ``posecli lift`` would (same gap filling, lifter, fusion,
    bones), from its cached detector output."""
    xy, conf = pipeline.to_h36m(np.nan_to_num(d["xy"]), d["conf"], "blazepose33")
    world = d["world"] if np.isfinite(d["world"]).any() else None
    return pipeline.lift_keypoints(xy, conf, int(d["width"]), int(d["height"]), float(d["fps"]),
                                   valid=d["found"], lifter=lifter, times=d["times"],
                                   world=world, visibility=d["vis"] if world is not None else None,
                                   fusion=fusion)


def record(d: dict, lifter) -> dict:
    """What the fusion sees on a collected clip (lifted, world, conf, disagree, has), plus the
    pelvis-centred truth ``gt`` of the same frames."""
    rec = Recorder()
    lift_clip(d, lifter, rec)
    gt = d["gt"][:len(rec.seen["lifted"])]
    return {**rec.seen, "gt": gt - gt[:, :1]}


def make_fusion(spec: str) -> fusion_mod.Fusion | None:
    """A variant name ("off", a BUILTIN name) or a fusion file -> a Fusion (None: off)."""
    if spec == "off":
        return None
    if spec in BUILTIN:
        cfg, w = BUILTIN[spec]
        return fusion_mod.Fusion(cfg, {"w": np.full((17, 3), w)}, {"name": spec})
    return fusion_mod.load_fusion(spec)


# ---------------------------------------------------------------------------------------------
# Scores

def scores(pred: np.ndarray, gt: np.ndarray) -> dict:
    """(N, 17, 3) prediction and truth (metres) -> P1, P2, MPJVE (mm) on the 14 shared joints,
    pelvis-aligned, and median knee flexion (deg) of both."""
    from posecli.training.metrics import knee_flexion_deg, mpjpe, mpjve, p_mpjpe  # benchmark only

    n = min(len(pred), len(gt))
    p = pred[:n, SHARED14] - pred[:n, :1]
    g = gt[:n, SHARED14] - gt[:n, :1]
    return {"p1": mpjpe(p, g) * 1e3, "p2": p_mpjpe(p, g) * 1e3, "mpjve": mpjve(p, g) * 1e3,
            "knee": float(np.median(knee_flexion_deg(pred[:n]))),
            "knee_gt": float(np.median(knee_flexion_deg(gt[:n])))}


def score_set(data: list[tuple[str, dict]], lifter, variants: list[str]) -> list[dict]:
    """One row per clip and variant: scores of the product path's 3D, fusion time per frame."""
    from posecli.lifter import load_lifter  # noqa: F401  (the caller's lifter is used)

    rows = []
    cached = CachedLifter(lifter)
    fusions = {v: make_fusion(v) for v in variants}
    for name, d in data:
        for v, f in fusions.items():
            t0 = time.perf_counter()
            res = lift_clip(d, cached, f)
            secs = time.perf_counter() - t0
            rows.append({"clip": name, "variant": v, "frames": len(res.pose3d),
                         **scores(res.pose3d, d["gt"]), "lift_s": secs,
                         "detect_ms": float(d["detect_s"]) / max(len(res.pose3d), 1) * 1e3})
    return rows


def fusion_cost_ms(d: dict, lifter, spec: str, repeats: int = 5) -> float:
    """Milliseconds per frame that the fusion itself costs (its __call__), on one clip."""
    rec = record(d, lifter)
    f = make_fusion(spec)
    if f is None:
        return 0.0
    t0 = time.perf_counter()
    for _ in range(repeats):
        f(rec["lifted"], rec["world"], rec["conf"], rec["disagree"], rec["has"])
    return (time.perf_counter() - t0) / repeats / len(rec["lifted"]) * 1e3


def mediapipe_rows(folders: "list[Path] | Path | None") -> dict[str, dict]:
    """MediaPipe's per-clip rows (benchmarks/mediapipe_accuracy.py --out-dir) in one or more
    folders: clip -> row."""
    if folders is None:
        return {}
    paths = [p for f in ([folders] if isinstance(folders, (str, Path)) else folders)
             if Path(f).is_dir() for p in sorted(Path(f).glob("*.json"))]
    out = {}
    for p in paths:
        try:
            row = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        out[row.get("clip", p.stem)] = row
    return out


def table(rows: list[dict], variants: list[str], mp: dict[str, dict]) -> str:
    """Per clip: P1 / MPJVE / knee of each variant, MediaPipe's beside them; then the means."""
    clips_ = sorted({r["clip"] for r in rows})
    by = {(r["clip"], r["variant"]): r for r in rows}
    head = f"{'clip':<28}" + "".join(f"{v[:18]:>20}" for v in variants)
    if mp:
        head += f"{'MediaPipe':>20}"
    head += f"{'kneeT':>7}"
    lines = ["P1 / MPJVE (mm) / median knee (deg); 14 joints, pelvis-aligned", head]

    def cell(p1, ve, kn):
        return f"{p1:7.1f}/{ve:5.1f}/{kn:5.1f}".rjust(20)

    for c in clips_:
        line = f"{c[:28]:<28}"
        for v in variants:
            r = by.get((c, v))
            line += cell(r["p1"], r["mpjve"], r["knee"]) if r else " " * 20
        if mp:
            m = mp.get(c)
            line += (cell(m.get("p1_14", np.nan), m.get("mpjve_14", np.nan), m.get("knee_med", np.nan))
                     if m else " " * 20)
        kt = next((by[(c, v)]["knee_gt"] for v in variants if (c, v) in by), np.nan)
        lines.append(line + f"{kt:7.1f}")
    line = f"{'mean':<28}"
    for v in variants:
        rs = [r for r in rows if r["variant"] == v]
        line += cell(*(np.mean([r[k] for r in rs]) for k in ("p1", "mpjve", "knee")))
    if mp:
        ms = [mp[c] for c in clips_ if c in mp]
        line += cell(*(np.mean([m.get(k, np.nan) for m in ms]) if ms else np.nan
                       for k in ("p1_14", "mpjve_14", "knee_med")))
    kts = [next(by[(c, v)]["knee_gt"] for v in variants if (c, v) in by) for c in clips_]
    lines.append(line + f"{np.mean(kts):7.1f}")
    both = [c for c in clips_ if c in mp]
    if mp and both and len(both) < len(clips_):  # means over the clips MediaPipe has too
        line = f"{f'mean of {len(both)} with MediaPipe':<28}"
        for v in variants:
            rs = [r for r in rows if r["variant"] == v and r["clip"] in both]
            line += cell(*(np.mean([r[k] for r in rs]) for k in ("p1", "mpjve", "knee")))
        line += cell(*(np.mean([mp[c].get(k, np.nan) for c in both])
                       for k in ("p1_14", "mpjve_14", "knee_med")))
        lines.append(line)
    line = f"{'mean |knee - kneeT|':<28}"
    for v in variants:
        rs = [r for r in rows if r["variant"] == v]
        line += f"{np.mean([abs(r['knee'] - r['knee_gt']) for r in rs]):20.1f}"
    if mp:
        ms = [mp[c] for c in clips_ if c in mp and "knee_med" in mp[c]]
        line += (f"{np.mean([abs(m['knee_med'] - m['knee_med_gt']) for m in ms]):20.1f}"
                 if ms else " " * 20)
    lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="run the detector once per clip into a cache")
    c.add_argument("folders", nargs="+", type=Path)
    c.add_argument("--cache", type=Path, required=True)
    c.add_argument("--detector", default="blazepose-full")
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--settle", type=float, default=0.0,
                   help="skip clips written to in the last SETTLE seconds (still rendering)")
    s = sub.add_parser("score", help="score fusion variants on a cache")
    s.add_argument("--cache", type=Path, required=True)
    s.add_argument("--fusion", nargs="+", default=["off", "world", "average-0.6", "default"])
    s.add_argument("--mediapipe", type=Path, nargs="*", help="folders of MediaPipe's per-clip rows")
    s.add_argument("--weights", help="lifter weights (default: the shipped lifter.pt)")
    s.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "collect":
        for folder in a.folders:
            for v in clips(folder, a.settle):
                out = a.cache / f"{v.stem}.npz"
                if out.exists():
                    continue
                collect(v, out, a.detector, a.threads)
                print(f"{v.stem}: collected", flush=True)
        return 0
    from posecli.lifter import load_lifter

    variants = [("weights/" + fusion_mod.DEFAULT_FUSION) if v == "default" else v for v in a.fusion]
    variants = [str(REPO / v) if v.startswith("weights/") else v for v in variants]
    data = load_cache(a.cache)
    lifter = load_lifter(a.weights)
    rows = score_set(data, lifter, variants)
    names = [Path(v).name if v not in BUILTIN and v != "off" else v for v in variants]
    for r in rows:
        r["variant"] = names[variants.index(r["variant"])]
    cost = {n: fusion_cost_ms(data[0][1], lifter, v) for n, v in zip(names, variants)} if data else {}
    print(table(rows, names, mediapipe_rows(a.mediapipe)))
    print("fusion cost, ms/frame (2-core VM, shared): "
          + ", ".join(f"{n} {c:.3f}" for n, c in cost.items()))
    if data:
        print(f"detector ({data[0][1]['detector']}), ms/frame: "
              f"{np.mean([float(d['detect_s']) / len(d['xy']) * 1e3 for _, d in data]):.1f}")
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "fusion_ms": cost}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
