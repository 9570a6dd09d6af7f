"""MediaPipe Pose's own 3D (per-frame world landmarks) on rendered clips with known truth: the
yardstick beside ``benchmarks/e2e_accuracy.py``.

Run it in a throw-away environment that has MediaPipe (never a posecli dependency)::

    python3 -m venv /work/venvs/mp && /work/venvs/mp/bin/pip install mediapipe==0.10.14
    /work/venvs/mp/bin/python benchmarks/mediapipe_accuracy.py /work/cache/rendered \\
        --out-dir /work/cache/mp/test [--model-complexity 2] [--json mp.json]

MediaPipe Pose (legacy solution, full model = complexity 1, heavy = 2; video mode: its own
tracking) gives 33 world landmarks per frame, metres, origin between the hips, x right, y down,
z away from the camera (OpenCV-like axes, as our camera frame). Both are scored on the 14 joints
MediaPipe measures or builds the same way we do (pelvis = mid-hips, thorax = mid-shoulders,
hips, knees, ankles, shoulders, elbows, wrists), pelvis-aligned: P1 (MPJPE), P2 (after
Procrustes), MPJVE, mm; ``p1_17`` is all 17 H36M joints as posecli builds them from the
landmarks (head, neck and spine synthesised, so not the same definitions as the truth's).
Also: the 2D error of its image landmarks on the 12 limb joints (px), and the median knee
flexion (degrees) of its 3D and of the truth. Frames where MediaPipe finds nobody are skipped
for it (their share is reported).

The heavy model (``--model-complexity 2``) is not in the wheel, and MediaPipe downloads it from
Google's storage on first use; offline, copy ``pose_landmark_heavy.tflite`` (the same file as
posecli's ``blazepose-heavy``, from npm ``@mediapipe/pose``) into the wheel's
``mediapipe/modules/pose_landmark/`` folder first.

``--out-dir DIR`` writes, per clip, ``DIR/<clip>.json`` (the row) and ``DIR/<clip>.mp.npz``
(``world`` (N,33,3) metres and ``image`` (N,33,2) px, NaN where nobody; ``visibility`` and
``presence`` (N,33); ``found`` (N,) bool) so others can compare with or learn from MediaPipe's
output without running it again. Clips whose JSON is already there are skipped (resumable).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from e2e_accuracy import limbs, median_knee, score14  # noqa: E402  (numpy-only parts)
from posecli.skeleton import blazepose_to_h36m  # noqa: E402


def mediapipe_run(video: Path, complexity: int = 1) -> dict:
    """Run MediaPipe Pose over a video, frame by frame in video mode.

    Returns world (N,33,3) metres and image (N,33,2) px (NaN where nobody), visibility and
    presence (N,33), found (N,) bool, and seconds (the time spent in ``process``).
    """
    import cv2
    import mediapipe as mp

    cap = cv2.VideoCapture(str(video))
    world, image, vis, pres, found = [], [], [], [], []
    spent = 0.0
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=complexity) as pose:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            t0 = time.perf_counter()
            r = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            spent += time.perf_counter() - t0
            if r.pose_world_landmarks is None or r.pose_landmarks is None:
                world.append(np.full((33, 3), np.nan))
                image.append(np.full((33, 2), np.nan))
                vis.append(np.zeros(33))
                pres.append(np.zeros(33))
                found.append(False)
                continue
            world.append(np.array([[p.x, p.y, p.z] for p in r.pose_world_landmarks.landmark]))
            lm = r.pose_landmarks.landmark
            # normalised [0, 1] image coordinates -> pixels (continuous: top-left corner 0, 0)
            image.append(np.array([[p.x * w, p.y * h] for p in lm]))
            vis.append(np.array([p.visibility for p in lm]))
            pres.append(np.array([p.presence for p in lm]))
            found.append(True)
    return {"world": np.array(world), "image": np.array(image), "visibility": np.array(vis),
            "presence": np.array(pres), "found": np.array(found, bool), "seconds": spent}


def score(run: dict, truth: dict, clip: str) -> dict:
    """MediaPipe's run against the truth -> one row of figures (see the module docstring)."""
    from posecli.training.metrics import mpjpe

    gt = truth["joints3d_cam"]
    n = min(len(gt), len(run["found"]))
    found, gt, j2d = run["found"][:n], gt[:n], truth["joints2d"][:n]
    world, image = run["world"][:n], run["image"][:n]
    xyz = blazepose_to_h36m(np.nan_to_num(world), np.ones(world.shape[:2]))[0]
    row = {"clip": clip, "subject": str(truth.get("subject", "")), "frames": int(n),
           "mediapipe_found": float(found.mean()), "knee_med_gt": median_knee(gt),
           "ms_per_frame": 1000.0 * run["seconds"] / max(n, 1)}
    if found.sum() > 1:
        p, g = xyz[found], gt[found]
        row.update(score14(p, g))
        row["p1_17"] = mpjpe(p - p[:, :1], g - g[:, :1]) * 1000.0
        row["knee_med"] = median_knee(p)
        err = np.array([np.linalg.norm(image[:, b] - j2d[:, h], axis=-1) for b, h in limbs("blazepose33").items()]).T
        row["err2d_limbs_px"] = float(np.mean(err[found]))
    return row


def clips_in(paths: list[str]) -> list[Path]:
    return sorted(v for c in map(Path, paths) for v in ([c] if c.is_file() else c.glob("*.mp4"))
                  if v.with_name(v.stem + ".truth.npz").is_file())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="+", help="folders of rendered clips or .mp4 files")
    ap.add_argument("--model-complexity", type=int, default=1, choices=[0, 1, 2],
                    help="0 lite, 1 full (default), 2 heavy")
    ap.add_argument("--out-dir", type=Path, default=None, help="per-clip JSON + landmarks here")
    ap.add_argument("--json", type=Path, default=None, help="all rows in one file")
    a = ap.parse_args(argv)
    if a.out_dir:
        a.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for v in clips_in(a.clips):
        done = a.out_dir / f"{v.stem}.json" if a.out_dir else None
        if done and done.is_file():
            r = json.loads(done.read_text())
        else:
            with np.load(v.with_name(v.stem + ".truth.npz")) as t:
                truth = {k: t[k] for k in t.files}
            run = mediapipe_run(v, a.model_complexity)
            r = {**score(run, truth, v.stem), "model_complexity": a.model_complexity}
            if a.out_dir:
                np.savez_compressed(a.out_dir / f"{v.stem}.mp.npz",
                                    **{k: run[k] for k in ("world", "image", "visibility", "presence", "found")})
                tmp = done.with_suffix(".json.tmp")
                tmp.write_text(json.dumps(r, indent=1))
                tmp.replace(done)   # atomic: a half-written row is never taken as done
        rows.append(r)
        print(f"{r['clip']:<22} found {r['mediapipe_found']:4.0%}  P1 {r.get('p1_14', np.nan):6.1f}  "
              f"P2 {r.get('p2_14', np.nan):6.1f}  MPJVE {r.get('mpjve_14', np.nan):5.1f} mm  "
              f"2D {r.get('err2d_limbs_px', np.nan):5.1f} px  knee {r.get('knee_med', np.nan):5.1f} "
              f"(truth {r['knee_med_gt']:5.1f}) deg  {r['ms_per_frame']:.0f} ms/frame", flush=True)
    keys = ("p1_14", "p2_14", "mpjve_14", "p1_17", "err2d_limbs_px", "knee_med", "knee_med_gt")
    print(f"mean of {len(rows)} clips  " + "  ".join(
        f"{k} {np.mean([r[k] for r in rows if k in r]):.1f}" for k in keys if any(k in r for r in rows)))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
