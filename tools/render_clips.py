#!/usr/bin/env python3
"""Render people with known 3D truth: an Anny body posed by CMU motion capture, filmed by a
pinhole camera, written as an H.264 mp4 plus a ``<clip>.truth.npz`` ground-truth file.

Setup (a separate virtualenv, so the main environment stays clean; see tools/README.md)::

    apt-get install -y libosmesa6
    python3 -m venv /work/venvs/render
    /work/venvs/render/bin/pip install torch==2.13.0 anny==0.6.2 "numpy<2" pyrender trimesh \
        imageio imageio-ffmpeg
    /work/venvs/render/bin/pip install PyOpenGL==3.1.7   # after pyrender, which pins 3.1.0
    export ANNY_CACHE_DIR=/work/cache/anny               # ~790 MB, keep it outside the repo

Run (``PYOPENGL_PLATFORM=osmesa`` is set by the script itself)::

    /work/venvs/render/bin/python tools/render_clips.py example --out examples
    /work/venvs/render/bin/python tools/render_clips.py bench --out /work/cache/rendered
    /work/venvs/render/bin/python tools/render_clips.py one --clip 07_05 --source cmu_iclone_cc \
        --seed 3 --out /tmp/r

Truth file (all arrays float64 unless said otherwise):
    joints3d_cam (N,17,3)  metres, camera frame, OpenCV axes (x right, y down, z forward),
                           Human3.6M 17-joint order of ``posecli.skeleton.JOINTS`` (absolute,
                           not root-relative: subtract joint 0 to compare with the lifter)
    joints2d (N,17,2)      pinhole projections of joints3d_cam with K, pixels (continuous
                           coordinates: the top-left corner of the image is (0, 0))
    coco2d (N,17,2)        projected COCO keypoints (Anny's COCO regressor on the posed mesh)
    coco3d_cam (N,17,3)    the same in 3D
    skull_base_cam (N,3)   the rig's anatomical skull base (see neck_nose below)
    K (3,3), fps, width, height
    cam_R (N,3,3), cam_t (N,3)  world -> camera (x_cam = R x_world + t); world is Y up,
                           metres, floor at y = 0. The camera stays in place and pans.
    phenotype_names, phenotype_values  Anny body-shape parameters; body_height_m
    clip, subject, source, mocap_frames (first, last+1 in cmu_h36m.npz), seed, colours

Joint definitions (from the posed Anny rig, matching the CMU conversion of the training data):
pelvis = midpoint of the hip joints; hips/knees/ankles/shoulders/elbows/wrists = heads of the
upperleg01/lowerleg01/foot/upperarm01/lowerarm01/wrist bones; thorax = head of neck01 (neck
base); head = top of the scalp (the highest rest-pose vertex, skinned with the body);
neck_nose = 0.665 of the way from thorax to head top (CMU's "Head" joint sits there on the
cgspeed MB skeleton; the anatomical skull base of Anny's rig, its ``head`` bone, stored as
``skull_base_cam``, is only ~0.39 of the way); spine = the point at 50 % arc length of the
polyline pelvis -> spine05 .. spine01 -> thorax (the CMU rule).

The code lives in ``tools/render/`` (geometry, camera, mocap, rig, looks, body); only ``render.body``
needs anny, torch and pyrender (imported inside its functions), so the tests can import the rest
from the main environment.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the render/ package beside this script
from render.constants import HEIGHT, HELD_OUT
from render.camera import CameraSpec
from render.mocap import load_mocap_clip
from render.looks import sample_looks
from render.body import render_clip

# Clips of the benchmark: held-out subjects only (07 walks, 13 everyday/jumps, 85 acrobatics).
# Not 07_12 from cmu_przestr: that copy is corrupt (joint speeds ~3x the other sources' copy,
# accelerations ~5x: jitter), so the clean cmu_iclone_cc copy is used.
BENCH = [
    # (clip, source, start s, max frames)
    ("07_01", "cmu_iclone_cc", 0.0, 240), ("07_04", "cmu_przestr", 0.0, 240),
    ("07_08", "cmu_iclone_cc", 0.0, 240), ("07_12", "cmu_iclone_cc", 0.0, 240),
    ("13_10", "cmu_przestr", 2.0, 240), ("13_13", "cmu_przestr", 0.0, 240),
    ("13_40", "cmu_przestr", 0.0, 240), ("13_19", "cmu_deepmimic_jump", 0.0, 240),
    ("13_32", "cmu_przestr", 0.0, 240), ("85_01", "cmu_deepmimic_jump", 0.0, 240),
    ("85_02", "cmu_deepmimic_jump", 0.0, 240), ("85_06", "cmu_deepmimic_jump", 0.0, 240),
    # breakdance (the held-out stand-in for dancing): handstand kicks, "helicopter"
    ("85_05", "cmu_deepmimic_jump", 2.0, 240), ("85_08", "cmu_deepmimic_jump", 0.0, 240),
]
EXAMPLE = ("07_05", "cmu_iclone_cc", 0.0, 150)

# Clips for fitting and for choosing models (issue 25): TRAINING subjects only (never the held-out
# 07/13/85, never HumanEva), gestures, fighting, dance, inverted and floor motion, walks and runs,
# high cameras (2.5-4 m, looking down) and low ones (0.4-0.6 m); a new random body per clip. The
# two sets share no take (and few subjects), so choosing on one is not fitting on the other.
# (clip, source, start s, max frames, camera height m or None = drawn 0.7-1.8 m); starts are where
# the take moves most (mean joint speed over the clip's frames).
FIT = [
    ("02_05", "cmu_iclone_cc", 9.5, 130, 3.2),       # punch/strike, from above
    ("135_04", "cmu_daz_acrnn", 2.7, 130, None),     # karate front kick
    ("135_07", "cmu_daz_acrnn", 0.5, 130, 0.4),      # karate roundhouse kick, from the floor
    ("14_12", "cmu_daz_atelier", 10.7, 130, 3.5),    # wash windows: arms overhead, from above
    ("14_17", "cmu_daz_atelier", 12.1, 130, None),   # laugh: standing, gesturing
    ("05_12", "cmu_iclone_cc", 6.9, 130, 2.8),       # dance, arms held high
    ("05_06", "cmu_iclone_cc", 0.6, 130, None),      # dance: cartwheel-like start, pirouettes
    ("60_03", "cmu_daz_acrnn", 11.0, 130, 0.5),      # salsa
    ("94_06", "cmu_daz_acrnn", 3.5, 130, None),      # Indian dance
    ("49_06", "cmu_deepmimic_jump", 0.0, 130, None),  # cartwheel (inverted)
    ("49_08", "cmu_deepmimic_jump", 0.0, 130, 3.0),   # cartwheels, from above
    ("140_01", "cmu_deepmimic_jump", 1.2, 130, 3.0),  # get up from lying face down (floor)
    ("139_16", "cmu_deepmimic_jump", 1.0, 130, 0.5),  # get up from the ground, low camera
    ("08_04", "cmu_przestr", 0.0, 130, 4.0),          # slow walk, from 4 m up
    ("127_04", "cmu_deepmimic_jump", 0.0, 130, 0.6),  # walk to run, low camera
    ("06_02", "cmu_iclone_cc", 1.0, 130, None),       # basketball dribble
]
CHOOSE = [
    ("02_10", "cmu_iclone_cc", 5.6, 130, 3.0),       # wash self: arm gestures, from above
    ("90_05", "cmu_deepmimic_jump", 0.0, 130, None),  # jump kick
    ("61_05", "cmu_daz_acrnn", 18.0, 130, 0.4),      # salsa (the other partner), from the floor
    ("88_09", "cmu_deepmimic_jump", 0.0, 130, 3.0),   # stretch and cartwheel, from above
    ("90_16", "cmu_deepmimic_jump", 0.0, 130, 0.6),   # fall on the face (floor), low camera
    ("12_02", "cmu_przestr", 1.0, 130, 4.0),          # walk, from 4 m up
    ("131_01", "cmu_cgspeed", 2.3, 130, None),        # stylised walk (the subject's own bones)
    ("10_01", "cmu_daz_atelier", 2.3, 130, 2.5),      # soccer kick, from above
]
SEED0 = {"fit": 200, "choose": 300}


def claim(out: Path, name: str) -> bool:
    """True if this process may render ``out/name``: not rendered yet (no truth file) and not
    being rendered by another live process (``name.lock`` holds its pid). Lets several
    processes share one list, and an interrupted run resume."""
    if (out / f"{name}.truth.npz").exists():
        return False
    out.mkdir(parents=True, exist_ok=True)
    lock = out / f"{name}.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False                      # a live process has it
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)       # stale: its process is gone
                continue
            except PermissionError:
                return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def render_list(out: Path, clips: list, seed0: int, crf: int, only: set | None,
                training_only: bool) -> None:
    """Render (clip, source, start s, max frames[, camera height]) entries into ``out``; seeds
    seed0 + index in the list. ``training_only``: refuse held-out subjects."""
    for i, (clip, src, start, n, *cam) in enumerate(clips):
        name = f"{clip}_{src.split('_')[1]}"
        if (only and clip not in only) or not claim(out, name):
            continue
        try:
            mo = load_mocap_clip(clip, src, start, n)
            if training_only and mo.subject in HELD_OUT:   # belt and braces
                raise SystemExit(f"error: {clip} is a held-out subject's take")
            render_clip(out, name, mo, seed=seed0 + i, crf=crf, camera_height=cam[0] if cam else None)
        finally:
            (out / f"{name}.lock").unlink(missing_ok=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["example", "bench", "fit", "choose", "one"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clip", help="CMU take for 'one', e.g. 07_05")
    ap.add_argument("--source", default=None)
    ap.add_argument("--start", type=float, default=0.0)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--only", default=None, help="bench/fit/choose: comma-separated clip names")
    ap.add_argument("--camera-height", type=float, default=None,
                    help="'one': camera height above the floor, metres (default: drawn 0.7-1.8)")
    ap.add_argument("--variant", default="full", choices=["full", "plain_head", "mannequin", "flat"],
                    help="'one': an ablation of the looks")
    ap.add_argument("--person-frac", type=float, default=None,
                    help="'one': person height as a fraction of the frame height")
    a = ap.parse_args(argv)
    if a.what == "example":
        clip, src, start, n = EXAMPLE
        mo = load_mocap_clip(clip, src, start, n)
        rng = np.random.default_rng(a.seed or 7)
        looks = sample_looks(rng)
        # a three-quarter front view, the person ~60 % of the frame height
        cam = CameraSpec(focal=600.0, distance=600.0 * 1.7 / (0.6 * HEIGHT), height=1.4, yaw_deg=35.0)
        render_clip(a.out, "walk_" + clip, mo, seed=a.seed or 7, crf=a.crf, looks=looks, camera=cam)
    elif a.what == "one":
        mo = load_mocap_clip(a.clip, a.source, a.start, a.frames)
        tag = "" if a.variant == "full" else "_" + a.variant
        tag += f"_h{int(a.person_frac * 100)}" if a.person_frac else ""
        tag += f"_c{a.camera_height:g}" if a.camera_height is not None else ""
        render_clip(a.out, f"{a.clip}_s{a.seed}{tag}", mo, seed=a.seed, crf=a.crf,
                    variant=a.variant, person_frac=a.person_frac, camera_height=a.camera_height)
    else:
        only = set(a.only.split(",")) if a.only else None
        if a.what == "bench":
            render_list(a.out, BENCH, 100, a.crf, only, training_only=False)
        else:
            render_list(a.out, FIT if a.what == "fit" else CHOOSE, SEED0[a.what], a.crf, only,
                        training_only=True)


if __name__ == "__main__":
    main()
