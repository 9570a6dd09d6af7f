"""MediaPipe Pose's own 3D (per-frame world landmarks) on rendered clips with known truth: the
yardstick beside ``benchmarks/e2e_accuracy.py``.

Run it in a throw-away environment that has MediaPipe (never a posecli dependency)::

    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.14
    /tmp/mpvenv/bin/python benchmarks/mediapipe_accuracy.py /work/cache/rendered examples --json mp.json

MediaPipe Pose (legacy solution, full model, video mode: its own tracking) gives 33 world
landmarks per frame, metres, origin between the hips, x right, y down, z away from the camera
(OpenCV-like axes, as our camera frame). Both are scored on the 14 joints MediaPipe measures or
builds the same way we do (pelvis = mid-hips, thorax = mid-shoulders, hips, knees, ankles,
shoulders, elbows, wrists), pelvis-aligned: P1 (MPJPE), P2 (after Procrustes), MPJVE, mm.
Frames where MediaPipe finds nobody are skipped for it (their share is reported).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from e2e_accuracy import score14  # noqa: E402  (numpy-only parts of posecli and the e2e benchmark)
from posecli.skeleton import blazepose_to_h36m  # noqa: E402


def mediapipe_world(video: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 33, 3) world landmarks (NaN where nobody) and (N,) found, for every frame."""
    import cv2
    import mediapipe as mp

    cap = cv2.VideoCapture(str(video))
    out, found = [], []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            r = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if r.pose_world_landmarks is None:
                out.append(np.full((33, 3), np.nan))
                found.append(False)
            else:
                out.append(np.array([[p.x, p.y, p.z] for p in r.pose_world_landmarks.landmark]))
                found.append(True)
    return np.array(out), np.array(found)


def evaluate(video: Path) -> dict:
    with np.load(video.with_name(video.stem + ".truth.npz")) as t:
        gt = t["joints3d_cam"]
    world, found = mediapipe_world(video)
    n = min(len(gt), len(world))
    world, found, gt = world[:n], found[:n], gt[:n]
    xyz = blazepose_to_h36m(np.nan_to_num(world), np.ones(world.shape[:2]))[0]
    row = {"clip": video.stem, "frames": int(n), "mediapipe_found": float(found.mean())}
    row.update(score14(xyz[found], gt[found]) if found.sum() > 1 else {})
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="+", help="folders of rendered clips or .mp4 files")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    videos = sorted(v for c in map(Path, a.clips) for v in ([c] if c.is_file() else c.glob("*.mp4"))
                    if v.with_name(v.stem + ".truth.npz").is_file())
    rows = []
    for v in videos:
        r = evaluate(v)
        rows.append(r)
        print(f"{r['clip']:<22} found {r['mediapipe_found']:.0%}  P1 {r.get('p1_14', float('nan')):6.1f}  "
              f"P2 {r.get('p2_14', float('nan')):6.1f}  MPJVE {r.get('mpjve_14', float('nan')):5.1f} mm", flush=True)
    keys = ("p1_14", "p2_14", "mpjve_14")
    print("mean  " + "  ".join(f"{k} {np.mean([r[k] for r in rows if k in r]):.1f}" for k in keys))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
