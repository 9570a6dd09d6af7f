"""Foot locking and contacts against the truth of rendered clips, before and after.

    python benchmarks/foot_lock.py [CLIPS_DIR_OR_MP4 ...] [--cache DIR] [--json out.json]

Per clip (``<clip>.mp4`` + ``<clip>.truth.npz`` from ``tools/render_clips.py``), the 2D track is
detected once (kept in ``--cache``) and lifted twice, with ``foot_lock`` off and on:
- P1: root-relative MPJPE (mm) of the 17 joints;
- slide: mean horizontal ankle movement (mm/frame) of the estimate over the frames where the
  truth has that foot planted in this frame and the next (truth contact: ankle under 0.15 m and
  slower than 0.5 m/s in the true world, no smoothing); ``slide_truth`` the truth's own;
- penetration: mean depth (mm) of the BVH's lowest foot point (ankle, ball, toe tip) below the
  floor, over all frames, and the share of frames where it is below by more than 10 mm;
- contacts: precision / recall of the estimated per-foot contact flags against the truth's;
- jumps: BVH rotation-channel steps over 40 degrees between frames, and those that are the same
  pose written another way (:func:`posecli.export.bvh.curve_jumps`);
- path: mean distance (mm) between the estimated and the true world pelvis on the floor after
  aligning the first frame and the best turn about the vertical (the two worlds' axes differ);
- pan: the camera's pan measured from the background (:mod:`posecli.camera_motion`) and the
  truth's (degrees), and ``--static-camera`` to lift without the correction.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def detect_cached(video: Path, cache: Path):
    from posecli import pipeline

    f = cache / (video.stem + ".det.npz")
    if f.exists():
        d = np.load(f, allow_pickle=True)
        return d["xy"], d["conf"], d["found"], int(d["w"]), int(d["h"]), float(d["fps"]), d["times"]
    info, lm, lm_conf, found, det = pipeline.detect_video(video)
    xy, conf = pipeline.to_h36m(np.nan_to_num(lm), lm_conf, det["layout"])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(f, xy=xy, conf=conf, found=found, w=info.width, h=info.height, fps=info.fps,
             times=info.report.times)
    return xy, conf, found, info.width, info.height, info.fps, info.report.times


def path_error(est: np.ndarray, true: np.ndarray) -> float:
    """(N, 3) x2 world pelvis -> mean floor distance (m) after aligning the start and the best
    turn about the vertical."""
    a = est[:, [0, 2]] - est[0, [0, 2]]
    b = true[:, [0, 2]] - true[0, [0, 2]]
    ang = np.arctan2((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum(), (a * b).sum())
    c, s = np.cos(ang), np.sin(ang)
    a = a @ np.array([[c, s], [-s, c]])
    return float(np.linalg.norm(a - b, axis=1).mean())


def measure(res, gt: np.ndarray, world_true: np.ndarray, fps: float) -> dict:
    from posecli import trajectory
    from posecli.export import bvh
    from posecli.training.metrics import mpjpe

    n = min(len(res.pose3d), len(gt))
    t = res.trajectory
    c_true = trajectory.foot_contacts(world_true[:n], fps, height=0.15, speed=0.5, smooth_s=0)
    c_est = t.contacts[:n]
    planted = c_true[1:] & c_true[:-1]
    step = np.linalg.norm(np.diff(t.world[:n][:, [3, 6]][..., [0, 2]], axis=0), axis=-1)
    step_true = np.linalg.norm(np.diff(world_true[:n][:, [3, 6]][..., [0, 2]], axis=0), axis=-1)
    world, weights, lm, trust, rate = bvh.motion(res)
    root, angles, offsets, ends = bvh.solve(world, weights, lm, trust)
    pos = bvh.forward_kinematics(root, angles, offsets)
    feet = bvh.foot_points(root, angles, offsets, ends)             # (N, 2, 2, 3) ball, tip
    # the ankle joint centre sits ANKLE_HEIGHT above the sole: compare it at that height
    low = np.minimum(np.min(pos[:, [bvh.INDEX["RightFoot"], bvh.INDEX["LeftFoot"]], 1], axis=1)
                     - trajectory.ANKLE_HEIGHT, feet[..., 1].min(axis=(1, 2)))
    tp = (c_true & c_est).sum()
    return {"p1_mm": mpjpe(res.pose3d[:n], gt[:n]) * 1000,
            "path_mm": path_error(t.world[:n, 0], world_true[:n, 0]) * 1000,
            "slide_mm": float(step[planted].mean() * 1000) if planted.any() else float("nan"),
            "slide_truth_mm": float(step_true[planted].mean() * 1000) if planted.any() else float("nan"),
            "penetration_mm": float(np.maximum(-low, 0).mean() * 1000),
            "below_10mm_share": float((low < -0.01).mean()),
            "contact_precision": float(tp / max(c_est.sum(), 1)),
            "contact_recall": float(tp / max(c_true.sum(), 1)),
            **{f"jumps_{k}": v for k, v in bvh.curve_jumps(angles, offsets, ends=ends).items()}}


def evaluate(video: Path, lifter, cache: Path, static: bool = False) -> dict:
    from e2e_accuracy import load_truth
    from posecli import camera_motion, pipeline, trajectory

    tr = load_truth(video)
    xy, conf, found, w, h, fps, times = detect_cached(video, cache)
    f = cache / (video.stem + ".shift.npz")
    if not f.exists():
        from posecli.video import iter_frames
        boxes = camera_motion.person_boxes(np.where(found[:, None, None], xy, np.nan), w, h)
        shift, measured = camera_motion.background_shift(iter_frames(video), boxes)
        np.savez(f, shift=shift, measured=measured)
    d = np.load(f)
    camera = camera_motion.report(d["shift"], d["measured"], w, trajectory.default_focal(w, h))
    moving = camera["camera_motion"] > camera_motion.MOVING_SHARE and not static
    cam = tr["joints3d_cam"]
    gt = cam - cam[:, :1]
    n = min(len(xy), len(cam))
    R, tt = tr["cam_R"][:n], tr["cam_t"][:n]
    world_true = np.einsum("nji,nkj->nki", R, cam[:n] - tt[:, None])
    R0 = tr["cam_R"]
    pan_true = max(np.degrees(np.arccos(np.clip((np.trace(R0[0].T @ R0[i]) - 1) / 2, -1, 1))) for i in range(n))
    row = {"clip": video.stem, "frames": int(n), "pan_deg": camera["camera_pan_deg"],
           "pan_true_deg": round(float(pan_true), 2), "pan_corrected": bool(moving)}
    for lock in (False, True):
        res = pipeline.lift_keypoints(xy, conf, w, h, fps, valid=found, lifter=lifter, times=times,
                                      source=str(video), foot_lock=lock,
                                      camera_shift=d["shift"] if moving else None, camera=camera)
        tag = "after" if lock else "before"
        row.update({f"{k}_{tag}": v for k, v in measure(res, gt, world_true, float(tr["fps"])).items()})
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/posecli_footlock_cache"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--static-camera", action="store_true", help="no pan correction")
    a = ap.parse_args(argv)
    from e2e_accuracy import find_clips
    from posecli.lifter import load_lifter

    lifter = load_lifter(a.weights)
    rows = [evaluate(v, lifter, a.cache, a.static_camera) for v in find_clips(a.clips)]
    keys = [k[:-6] for k in rows[0] if k.endswith("_after")] if rows else []
    for r in rows:
        print(r["clip"], r["frames"], f"pan {r['pan_deg']} deg (truth {r['pan_true_deg']}), "
              f"corrected: {r['pan_corrected']}")
        for k in keys:
            print(f"  {k:22s} {r[k + '_before']:9.3f} -> {r[k + '_after']:9.3f}")
    if len(rows) > 1:
        print("mean")
        for k in keys:
            print(f"  {k:22s} {np.nanmean([r[k + '_before'] for r in rows]):9.3f} -> "
                  f"{np.nanmean([r[k + '_after'] for r in rows]):9.3f}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
