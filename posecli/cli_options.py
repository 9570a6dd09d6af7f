"""The options ``posecli lift`` and ``posecli live`` share: one declaration each.

Each function returns a fresh ``typer.Option`` (typer reads a command's options from its
parameters' defaults, so two commands must not share one object); a command whose meaning
differs passes its own ``help``.
"""
from __future__ import annotations

import typer

from posecli.detect2d.table import DETECTORS
from posecli.options import LiftOptions

# --help panels
DETECTION, LIFTING, OUTPUT = "Detection", "Lifting", "Output"
FLAG = ""  # metavar of on/off flags: no "<bool>" after them in --help

_MODELS_TAKEN = "; ".join(f"{n}: {e.model_help}" for n, e in DETECTORS.items() if e.takes_model)
POSE_MODEL_HELP = f"The detector's ONNX model, where it takes one ({_MODELS_TAKEN})."
POSE_CHECKPOINT_HELP = (f"The detector's torch checkpoint, where it takes one ({_MODELS_TAKEN}; "
                        "default: its published one, downloaded once).")
DETECTOR_HELP = f"2D detector: {' | '.join(DETECTORS)} (see `posecli info`)."


def detector():
    return typer.Option(LiftOptions.detector, metavar="NAME", rich_help_panel=DETECTION,
                        help=DETECTOR_HELP)


def pose_model():
    return typer.Option(None, metavar="FILE.onnx", rich_help_panel=DETECTION, help=POSE_MODEL_HELP)


def pose_checkpoint():
    return typer.Option(None, metavar="FILE.pth", rich_help_panel=DETECTION,
                        help=POSE_CHECKPOINT_HELP)


def max_people():
    return typer.Option(LiftOptions.max_people, metavar="N", rich_help_panel=DETECTION,
                        help="People followed at once (cost grows with it).")


def weights():
    return typer.Option(None, metavar="FILE", rich_help_panel=LIFTING,
                        help="Lifter checkpoint (default: shipped weights/lifter.pt).")


def backend():
    return typer.Option(LiftOptions.backend, metavar="torch|onnx", rich_help_panel=LIFTING,
                        help="Lifter runtime.")


def flip():
    return typer.Option(LiftOptions.flip, "--flip/--no-flip", metavar=FLAG, rich_help_panel=LIFTING,
                        help="Flip test-time augmentation (twice the lifting work).")


def rigid(help: str = "One set of bone lengths for the whole clip (median, left = right)."):
    return typer.Option(LiftOptions.rigid, "--rigid/--no-rigid", metavar=FLAG,
                        rich_help_panel=LIFTING, help=help)


def plausible():
    return typer.Option(LiftOptions.plausible, "--plausible-bones/--raw-bones", metavar=FLAG,
                        rich_help_panel=LIFTING,
                        help="Clamp shin/thigh and forearm/upper-arm ratios to anthropometric ranges.")


def root_motion():
    return typer.Option(LiftOptions.root_motion, "--root-motion/--no-root-motion", metavar=FLAG,
                        rich_help_panel=LIFTING,
                        help="Move the pelvis along the estimated path (or keep it in place).")


def focal():
    return typer.Option(None, metavar="PX", rich_help_panel=LIFTING,
                        help="Camera focal length in pixels for the root trajectory "
                             "(default: the longer image side).")


def fusion():
    return typer.Option(LiftOptions.fusion, metavar="on|off|FILE", rich_help_panel=LIFTING,
                        help="Combine the lifter's 3D with BlazePose's own 3D (its world "
                             "landmarks) by the shipped learned fusion; off: the pure MixSTE "
                             "lifter; or a fusion file. Inputs without world landmarks (HRNet, "
                             "keypoint files without them) use the pure lifter.")


def foot_lock():
    return typer.Option(LiftOptions.foot_lock, "--foot-lock/--no-foot-lock", metavar=FLAG,
                        rich_help_panel=LIFTING,
                        help="Pin feet in contact to the floor (or keep the raw motion).")


def camera_motion():
    return typer.Option(LiftOptions.camera_motion, "--camera-motion/--static-camera",
                        metavar=FLAG, rich_help_panel=LIFTING,
                        help="Measure the camera's pan from the background, warn and "
                             "correct the path (or assume a static camera).")


def bvh_scale(panel: str = OUTPUT):
    return typer.Option(LiftOptions.bvh_scale, metavar="S", rich_help_panel=panel,
                        help="BVH lengths: 1 = metres, 100 = centimetres.")
