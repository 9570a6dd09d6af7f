"""End-to-end 3D accuracy of ``posecli lift`` on rendered clips with known truth.

    python benchmarks/e2e_accuracy.py [CLIPS_DIR_OR_MP4 ...] [--weights lifter.pt]
                                      [--detector blazepose-full] [--json out.json]
    python benchmarks/e2e_accuracy.py ... --detector hrnet --pose-model hrnet.pth|hrnet.onnx

The clips are made by ``tools/render_clips.py`` (an Anny body posed by held-out CMU mocap,
filmed by a known camera; ``<clip>.mp4`` + ``<clip>.truth.npz``). Generate the benchmark set
once, outside git (see tools/README.md)::

    /work/venvs/render/bin/python tools/render_clips.py bench --out /work/cache/rendered

Default input: /work/cache/rendered if it holds clips, else the shipped ``examples/``.

Per clip, it reports
- det%: frames where the detector found the person;
- 2D px: the detector's error (its own keypoints, before any gap filling) against the
  projected truth on the 12 limb joints (shoulders, elbows, wrists, hips, knees, ankles), mean
  over detected frames; 2D17 px: the same for the 17 H36M joints posecli feeds the lifter
  (head, neck, thorax, spine, pelvis synthesised from the landmarks, gaps filled);
- P1 / P2 / MPJVE (mm) of the full pipeline (video -> detector -> lifter) against the truth,
  root-relative (MPJPE, Procrustes-aligned MPJPE, velocity error per frame);
- the same three for the lifter fed the ground-truth 2D (``joints2d``, confidence 1), so one
  sees what the lifter costs on its own and what the detector adds;
- P1/P2/MPJVE on the 14 joints MediaPipe's world landmarks also measure (``P1/14`` ...);
- knee: the median knee flexion (degrees, both legs, all frames; 0 = straight leg) of the
  pipeline's 3D, and kneeT the truth's (a crouching lifter shows as knee >> kneeT).

``--mediapipe DIR`` puts MediaPipe's figures for the same clips beside ours: DIR holds the
per-clip JSON files written by ``benchmarks/mediapipe_accuracy.py --out-dir DIR``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # this checkout's posecli, whichever one is installed
from posecli.training.metrics import knee_flexion_deg, median_knee  # noqa: E402,F401  (numpy only)
DEFAULT_DIR = Path("/work/cache/rendered")

# BlazePose landmark -> H36M joint, for the 12 limb joints both layouts measure directly.
LIMB_NAMES = ("l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
              "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle")


def limbs(layout: str) -> dict[int, int]:
    """The 12 limb joints: detector layout index -> H36M index (BlazePose-33 or COCO-17)."""
    from posecli.skeleton import H36M17, LAYOUTS
    src = LAYOUTS[layout].names
    return {src.index(n): H36M17.names.index(n) for n in LIMB_NAMES}
# H36M joints that MediaPipe's world landmarks measure or build as we do (pelvis, hips, knees,
# ankles, thorax, shoulders, elbows, wrists): the comparison with benchmarks/mediapipe_accuracy.py
SHARED14 = [0, 1, 2, 3, 4, 5, 6, 8, 11, 12, 13, 14, 15, 16]


def score14(pred: np.ndarray, gt: np.ndarray) -> dict:
    """pred, gt (N, 17, 3) metres -> P1, P2, MPJVE (mm) on the 14 shared joints, pelvis-aligned."""
    from posecli.training.metrics import mpjpe, mpjve, p_mpjpe

    p = pred[:, SHARED14] - pred[:, :1]
    g = gt[:, SHARED14] - gt[:, :1]
    return {"p1_14": mpjpe(p, g) * 1e3, "p2_14": p_mpjpe(p, g) * 1e3, "mpjve_14": mpjve(p, g) * 1e3}


def find_clips(paths: list[str]) -> list[Path]:
    if not paths:
        paths = [str(DEFAULT_DIR)] if any(DEFAULT_DIR.glob("*.truth.npz")) else [str(REPO / "examples")]
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.glob("*.mp4") if truth_path(q).exists())
        else:
            out.append(p)
    return out


def truth_path(video: Path) -> Path:
    return video.with_name(video.stem + ".truth.npz")


def load_truth(video: Path) -> dict:
    with np.load(truth_path(video), allow_pickle=False) as t:
        return {k: t[k] for k in t.files}


def evaluate_clip(video: Path, lifter, detector: str, pose_model: str | None = None) -> dict:
    from posecli.training.metrics import mpjpe, mpjve, p_mpjpe
    from posecli.pipeline import lift_keypoints, lift_video

    tr = load_truth(video)
    gt = tr["joints3d_cam"] - tr["joints3d_cam"][:, :1]
    t0 = time.time()
    res = lift_video(video, detector=detector, lifter=lifter, pose_model=pose_model)
    seconds = time.time() - t0
    n = min(len(gt), len(res.pose3d))
    if n != len(gt):
        print(f"warning: {video.name}: {len(res.pose3d)} frames decoded, truth has {len(gt)}",
              file=sys.stderr)
    gt, pred = gt[:n], res.pose3d[:n]
    found = np.asarray(res.flags[:n]) == "detected"
    lm = np.asarray(res.landmarks[:n], float)
    j2d = tr["joints2d"][:n]
    err2d = np.array([np.linalg.norm(lm[:, b] - j2d[:, h], axis=-1) for b, h in limbs(res.detector["layout"]).items()]).T
    err17 = np.linalg.norm(np.asarray(res.keypoints[:n]) - j2d, axis=-1)
    height_px = np.ptp(j2d[..., 1], axis=1)
    gt_res = lift_keypoints(j2d, np.ones(j2d.shape[:2]), int(tr["width"]), int(tr["height"]),
                            float(tr["fps"]), lifter=lifter)
    g = gt_res.pose3d[:n]
    mm = 1000.0
    return {
        "clip": video.stem, "subject": str(tr.get("subject", "")), "mocap": str(tr.get("clip", "")),
        "frames": int(n), "detected": float(found.mean()),
        "person_px": float(height_px.mean()),
        "err2d_limbs_px": float(np.nanmean(err2d[found])) if found.any() else float("nan"),
        "err2d_17_px": float(err17[found].mean()) if found.any() else float("nan"),
        "p1": mpjpe(pred, gt) * mm, "p2": p_mpjpe(pred, gt) * mm, "mpjve": mpjve(pred, gt) * mm,
        "gt2d_p1": mpjpe(g, gt) * mm, "gt2d_p2": p_mpjpe(g, gt) * mm, "gt2d_mpjve": mpjve(g, gt) * mm,
        "per_joint_p1": (np.linalg.norm(pred - gt, axis=-1).mean(0) * mm).tolist(),
        "per_joint_gt2d_p1": (np.linalg.norm(g - gt, axis=-1).mean(0) * mm).tolist(),
        "per_joint_2d17_px": err17[found].mean(0).tolist() if found.any() else [],
        **score14(pred, gt),
        "knee_med": median_knee(pred), "knee_med_gt": median_knee(gt), "gt2d_knee_med": median_knee(g),
        "seconds": seconds,
    }


COLS = [("clip", "{:<22}", 22), ("frames", "{:>6}", 6), ("detected", "{:>5.0%}", 5),
        ("person_px", "{:>6.0f}", 6), ("err2d_limbs_px", "{:>6.1f}", 6), ("err2d_17_px", "{:>6.1f}", 6),
        ("p1", "{:>6.1f}", 6), ("p2", "{:>6.1f}", 6), ("mpjve", "{:>6.1f}", 6),
        ("gt2d_p1", "{:>6.1f}", 6), ("gt2d_p2", "{:>6.1f}", 6), ("gt2d_mpjve", "{:>6.1f}", 6),
        ("p1_14", "{:>6.1f}", 6), ("p2_14", "{:>6.1f}", 6), ("mpjve_14", "{:>6.1f}", 6),
        ("knee_med", "{:>5.1f}", 5), ("knee_med_gt", "{:>5.1f}", 5)]
HEAD = ("clip", "frames", "det%", "height", "2D px", "2D17", "P1", "P2", "MPJVE", "gtP1", "gtP2",
        "gtVE", "P1/14", "P2/14", "VE/14", "knee", "kneeT")
# MediaPipe's columns (benchmarks/mediapipe_accuracy.py rows), shown with --mediapipe
MP_COLS = [("clip", "{:<22}", 22), ("mediapipe_found", "{:>5.0%}", 5), ("err2d_limbs_px", "{:>6.1f}", 6),
           ("p1_14", "{:>6.1f}", 6), ("p2_14", "{:>6.1f}", 6), ("mpjve_14", "{:>6.1f}", 6),
           ("knee_med", "{:>5.1f}", 5), ("knee_med_gt", "{:>5.1f}", 5)]
MP_HEAD = ("clip", "found", "2D px", "P1/14", "P2/14", "VE/14", "knee", "kneeT")


def table(rows: list[dict], cols: list = COLS, head: tuple = HEAD) -> str:
    """Rows (dicts) -> a fixed-width table with per-subject and overall means (NaN: missing)."""
    def cell(r, k, fmt):
        v = r.get(k, float("nan"))
        return fmt.format(v) if k == "clip" or np.isfinite(v) else fmt.format(float("nan"))

    lines = [" ".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, (_, _, w)) in enumerate(zip(head, cols)))]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(" ".join(cell(r, k, fmt) for k, fmt, _ in cols))
    if len(rows) > 1:
        groups = {}
        for r in rows:
            groups.setdefault(r.get("subject", ""), []).append(r)
        lines.append("-" * len(lines[0]))
        for label, sel in ([(f"mean subject {g} ({len(v)})", v) for g, v in sorted(groups.items())]
                           if len(groups) > 1 else []) + [(f"mean of {len(rows)} clips", rows)]:
            mean = {k: float(np.nanmean([r.get(k, np.nan) for r in sel])) for k, _, _ in cols[1:]}
            mean["clip"] = label
            if "frames" in mean:
                mean["frames"] = int(sum(r["frames"] for r in sel))
            lines.append(" ".join(cell(mean, k, fmt) for k, fmt, _ in cols))
    return "\n".join(lines)


def mediapipe_rows(rows: list[dict], folder: Path) -> list[dict]:
    """MediaPipe's per-clip rows (``folder/<clip>.json``) for our rows' clips, with the subject."""
    out = []
    for r in rows:
        f = folder / f"{r['clip']}.json"
        m = json.loads(f.read_text()) if f.is_file() else {"clip": r["clip"]}
        out.append({**m, "subject": r.get("subject", "")})
    return out


def mediapipe_table(rows: list[dict], folder: Path) -> str:
    """Ours and MediaPipe's on the same clips: P1/P2/MPJVE on 14 joints, 2D limbs, knees."""
    mp = mediapipe_rows(rows, folder)
    ratio = [{"clip": r["clip"], "subject": r.get("subject", ""),
              **{k: r[k] / m[k] for k in ("p1_14", "p2_14", "mpjve_14") if k in m and m[k]}}
             for r, m in zip(rows, mp)]
    rcols = [("clip", "{:<22}", 22), ("p1_14", "{:>6.2f}", 6), ("p2_14", "{:>6.2f}", 6), ("mpjve_14", "{:>6.2f}", 6)]
    both = [(r, m) for r, m in zip(rows, mp) if "p1_14" in m]
    overall = "  ".join(f"{k} {np.mean([r[k] for r, _ in both]) / np.mean([m[k] for _, m in both]):.2f}"
                        for k in ("p1_14", "p2_14", "mpjve_14")) if both else "no MediaPipe rows"
    return (f"\nMediaPipe on the same clips ({folder})\n" + table(mp, MP_COLS, MP_HEAD)
            + "\n\nours / MediaPipe per clip (below 1: ours better)\n"
            + table(ratio, rcols, ("clip", "P1/14", "P2/14", "VE/14"))
            + f"\nratio of the means over {len(both)} clips: {overall}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", help="folders of rendered clips or .mp4 files")
    ap.add_argument("--weights", default=None, help="lifter checkpoint (default: shipped lifter.pt)")
    ap.add_argument("--detector", default="blazepose-full", help="blazepose-lite|full|heavy or hrnet")
    ap.add_argument("--pose-model", default=None, help="hrnet: an ONNX file or MMPose .pth checkpoint")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--cache", type=Path, default=None,
                    help="per-clip rows kept here (<clip>.json) and reused when the lifter and "
                         "detector match: a long run resumes, and a table is one command")
    ap.add_argument("--per-joint", action="store_true", help="also print errors per joint")
    ap.add_argument("--mediapipe", type=Path, default=None,
                    help="folder of MediaPipe per-clip JSON (mediapipe_accuracy.py --out-dir): "
                         "print MediaPipe's figures for the same clips beside ours")
    a = ap.parse_args(argv)
    from posecli.lifter import load_lifter

    clips = find_clips(a.clips)
    if not clips:
        print("no rendered clips found; make them with tools/render_clips.py (see tools/README.md)",
              file=sys.stderr)
        return 2
    lifter = load_lifter(a.weights)
    rows = []
    for v in clips:
        key = {"lifter_sha256": str(lifter.info.get("sha256")), "detector": a.detector}
        kept = a.cache / f"{v.stem}.json" if a.cache else None
        r = json.loads(kept.read_text()) if kept and kept.is_file() else {}
        if {k: r.get(k) for k in key} != key:
            r = {**evaluate_clip(v, lifter, a.detector, a.pose_model), **key}
            if kept:
                a.cache.mkdir(parents=True, exist_ok=True)
                tmp = kept.with_suffix(".tmp")
                tmp.write_text(json.dumps(r))
                tmp.replace(kept)   # atomic: never a half-written row
        rows.append(r)
        print(f"{r['clip']}: det {r['detected']:.0%}, 2D {r['err2d_limbs_px']:.1f} px, "
              f"P1 {r['p1']:.1f} mm (GT 2D: {r['gt2d_p1']:.1f} mm), {r['seconds']:.0f} s",
              file=sys.stderr, flush=True)
    print(f"posecli end-to-end accuracy on {len(rows)} rendered clips "
          f"(detector {a.detector}, lifter {lifter.info.get('weights')}); "
          "2D errors in px, 3D errors in mm, root-relative")
    print(table(rows))
    print("height: mean projected head-top-to-ankle span (px); det%: frames detected; "
          "2D px: detector on 12 limb joints; 2D17: the 17 joints fed to the lifter; "
          "P1/P2/MPJVE: video -> detector -> lifter; gt*: lifter on ground-truth 2D; "
          "/14: the 14 joints MediaPipe also measures; knee/kneeT: median knee flexion (deg), ours/truth")
    if a.mediapipe:
        print(mediapipe_table(rows, a.mediapipe))
    if a.per_joint:
        from posecli.skeleton import JOINTS
        print("\nper joint, mean over clips: 2D17 px | P1 mm (video) | P1 mm (GT 2D)")
        for j, name in enumerate(JOINTS):
            vals = [np.mean([r[k][j] for r in rows if r[k]]) for k in
                    ("per_joint_2d17_px", "per_joint_p1", "per_joint_gt2d_p1")]
            print(f"{name:<11} {vals[0]:6.1f} {vals[1]:7.1f} {vals[2]:7.1f}")
    if a.json:
        a.json.write_text(json.dumps({"detector": a.detector, "lifter": lifter.info.get("weights"),
                                      "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
