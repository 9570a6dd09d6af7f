"""Root trajectory, floor and foot contacts against the truth of rendered clips, and what the
bone-length plausibility step does to MPJPE.

    python benchmarks/trajectory_accuracy.py [CLIPS_DIR_OR_MP4 ...] [--focal PX|truth] [--json out.json]

Per clip (``<clip>.mp4`` + ``<clip>.truth.npz`` from ``tools/render_clips.py``):
- P1 (mm, root-relative MPJPE) with the rigid step alone and with the plausible bone lengths;
- shin/thigh ratio of the clip's skeleton before / after;
- path: mean distance (mm) between the estimated and the true pelvis in the camera frame after
  aligning the first frame (the rendered camera pans to follow the person, so the comparison is
  made in the camera frame, where the estimate lives); path_rel: the same as a fraction of the
  true distance travelled in the camera frame;
- depth: mean |estimated - true| pelvis depth (mm), no alignment;
- floor: mean |signed distance| (mm) of the true floor under the pelvis to the estimated floor
  plane, in the camera frame (includes the depth error), and the angle (degrees) between the
  estimated and the true floor normals; pelvis_height: mean |estimated - true| height of the
  pelvis above the floor (mm), each in its own world frame (the floor as the body sees it);
- rise: the pelvis's highest point above its median height, true and estimated (mm): jumps must
  stay jumps (one floor per clip, no per-frame rebase);
- contacts: precision / recall of the per-foot contact flags against flags computed from the
  true world joints with the strict rule (ankle < 0.15 m high, < 0.5 m/s, no smoothing).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def evaluate(video: Path, lifter, focal_mode: str) -> dict:
    from e2e_accuracy import load_truth
    from posecli import pipeline, skeleton, trajectory
    from posecli.training.metrics import mpjpe

    tr = load_truth(video)
    info, lm, lm_conf, found, det = pipeline.detect_video(video)
    xy, conf = pipeline.to_h36m(np.nan_to_num(lm), lm_conf, det["layout"])
    focal = float(tr["K"][0, 0]) if focal_mode == "truth" else (float(focal_mode) if focal_mode else None)
    common = dict(valid=found, lifter=lifter, source=str(video), focal=focal)
    base = pipeline.lift_keypoints(xy, conf, info.width, info.height, info.fps, plausible=False, **common)
    res = pipeline.lift_keypoints(xy, conf, info.width, info.height, info.fps, plausible=True, **common)
    n = min(len(res.pose3d), len(tr["joints3d_cam"]))
    cam = tr["joints3d_cam"][:n]
    gt = cam - cam[:, :1]
    mm = 1000.0
    t = res.trajectory
    est = t.pelvis_camera[:n]
    true = cam[:, 0]
    path = np.linalg.norm((est - est[0]) - (true - true[0]), axis=-1).mean()
    travelled = np.linalg.norm(np.diff(true, axis=0), axis=-1).sum()
    # truth world: p_cam = R p_world + t per frame; floor = world Y = 0
    R, tt = tr["cam_R"][:n], tr["cam_t"][:n]
    world_true = np.einsum("nji,nkj->nki", R, cam - tt[:, None])
    up_true = R[0][:, 1]
    d_true = float(up_true @ tt[0])
    ground = true - ((true @ up_true) - d_true)[:, None] * up_true
    up_est = t.rotation[1]
    d_est = float(up_est @ t.origin)
    floor_err = np.abs(ground @ up_est - d_est).mean()
    # pelvis height above the floor, estimated (own world) vs true
    h_err = np.abs(t.world[:n, 0, 1] - world_true[:, 0, 1]).mean()
    angle = np.degrees(np.arccos(np.clip(up_est @ up_true, -1, 1)))
    c_true = trajectory.foot_contacts(world_true, float(tr["fps"]), height=0.15, speed=0.5, smooth_s=0)
    c_est = t.contacts[:n]
    tp = (c_true & c_est).sum()
    b0, b1 = skeleton.bone_lengths(base.pose3d).mean(0), skeleton.bone_lengths(res.pose3d).mean(0)
    return {
        "clip": video.stem, "frames": int(n), "focal": t.focal,
        "p1_rigid": mpjpe(base.pose3d[:n], gt) * mm, "p1_plausible": mpjpe(res.pose3d[:n], gt) * mm,
        "shin_thigh_before": float(b0[2] / b0[1]), "shin_thigh_after": float(b1[2] / b1[1]),
        "path_mm": path * mm, "path_rel": path / max(travelled, 1e-9),
        "depth_mm": np.abs(est[:, 2] - true[:, 2]).mean() * mm,
        "floor_mm": floor_err * mm, "pelvis_height_mm": h_err * mm, "floor_angle_deg": float(angle),
        "contact_precision": float(tp / max(c_est.sum(), 1)),
        "contact_recall": float(tp / max(c_true.sum(), 1)),
        "contact_true_share": float(c_true.mean()),
        "rise_true_mm": float((world_true[:, 0, 1].max() - np.median(world_true[:, 0, 1])) * mm),
        "rise_est_mm": float((t.world[:n, 0, 1].max() - np.median(t.world[:n, 0, 1])) * mm),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--focal", default="", help="PX, or 'truth' for the rendering camera's (default: from the video size)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    from e2e_accuracy import find_clips
    from posecli.lifter import load_lifter

    lifter = load_lifter(a.weights)
    rows = []
    for v in find_clips(a.clips):
        r = evaluate(v, lifter, a.focal)
        rows.append(r)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()),
              flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
