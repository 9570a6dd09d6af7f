"""Make a 2D keypoint file (posecli's keypoint JSON) from a motion-capture clip and a virtual camera.

This is how ``examples/cmu_07_05_walk.keypoints.json`` was made (a held-out CMU subject):

    python tools/mocap_to_keypoints.py ../shared/data/mocap/cmu_h36m.npz 07_05 \
        -o examples/cmu_07_05_walk.keypoints.json

The camera stands ``--distance`` metres in front of the clip's mean pelvis position (facing the
performer's first-frame facing direction, rotated by ``--yaw`` degrees), at ``--height`` metres,
looking at the mean pelvis. Mocap is Y-up metres; the camera frame is OpenCV (x right, y down,
z forward). The file also stores the camera-frame 3D truth (root-relative) under ``truth_3d`` so
the lift can be checked.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from posecli.training.cameras import look_at, project


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("npz", type=Path)
    ap.add_argument("clip", help="CMU take name, e.g. 07_05")
    ap.add_argument("--source", default="cmu_iclone_cc")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height-px", type=int, default=480)
    ap.add_argument("--focal", type=float, default=560.0, help="pixels")
    ap.add_argument("--distance", type=float, default=6.0, help="metres")
    ap.add_argument("--height", type=float, default=1.2, help="camera height, metres")
    ap.add_argument("--yaw", type=float, default=60.0, help="degrees around the performer")
    ap.add_argument("--start", type=int, default=1,
                    help="first frame to use (frame 0 of the iClone CMU takes is a stray reset pose)")
    args = ap.parse_args()

    d = np.load(args.npz)
    names, sources = d["clip_name"], d["source"]
    hits = np.flatnonzero((names == args.clip) & (sources == args.source))
    if not len(hits):
        raise SystemExit(f"clip {args.clip} from {args.source} not in {args.npz}")
    i = hits[0]
    starts = d["clip_start"]
    s, e = starts[i], (starts[i + 1] if i + 1 < len(starts) else len(d["positions"]))
    s += args.start
    world = d["positions"][s:e, :17].astype(np.float64) + d["root"][s:e, None].astype(np.float64)

    centre = world[:, 0].mean(axis=0)
    hips = world[0, 1] - world[0, 4]  # r_hip - l_hip: facing = cross(up, hips) direction
    facing = np.cross([0.0, 1.0, 0.0], hips)
    facing /= np.linalg.norm(facing)
    yaw = np.radians(args.yaw)
    c, sn = np.cos(yaw), np.sin(yaw)
    offset = np.array([c * facing[0] + sn * facing[2], 0.0, -sn * facing[0] + c * facing[2]])
    eye = centre + args.distance * offset
    eye[1] = args.height
    rot = look_at(eye, centre, np.array([0.0, 1.0, 0.0]))
    cam = (world - eye) @ rot.T
    px = project(cam, args.focal, np.array([args.width / 2, args.height_px / 2]))
    if not ((px >= 0).all(-1) & (px[..., 0] < args.width) & (px[..., 1] < args.height_px)).all():
        raise SystemExit("the performer leaves the frame: use a larger --distance")

    doc = {
        "input": {"path": f"CMU mocap {args.clip} ({args.source}), virtual camera", "kind": "keypoints",
                  "fps": float(d["fps"]), "width": args.width, "height": args.height_px},
        "skeleton": {"layout": "h36m17"},
        "camera": {"focal_px": args.focal, "eye_world_m": eye.round(4).tolist(),
                   "rotation_world_to_camera": rot.round(6).tolist()},
        "licence": "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu): free for research "
                   "and commercial use. The database was created with funding from NSF EIA-0196217.",
        "frames": [{"keypoints_2d": p.round(2).tolist(), "confidence": [1.0] * 17, "flag": "detected",
                    "truth_3d": (q - q[0]).round(4).tolist()} for p, q in zip(px, cam)],
    }
    args.out.write_text(json.dumps(doc, separators=(",", ":")))
    print(f"wrote {args.out}: {len(px)} frames")


if __name__ == "__main__":
    main()
