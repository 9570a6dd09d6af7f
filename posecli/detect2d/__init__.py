"""2D keypoint detectors: a video frame in, people's keypoints out.

Two detectors share the person detector, the crops and the tracker:
- BlazePose (MediaPipe Pose: person detector + landmark model, 33 landmarks), run with
  ai-edge-litert; the default, shipped.
- HRNet-w32 (MMPose's COCO top-down model, 17 keypoints) on the person boxes, run with
  onnxruntime (an ONNX file) or torch (an MMPose checkpoint); weights not shipped.
This package depends on numpy, OpenCV and ai-edge-litert (imported when a detector is created);
HRNet also on onnxruntime or torch. Modules, from the bottom up:

- ``table``: detectors by name (how to build each, its layout, weights, model-file option):
  what the command line, ``posecli info``, the pipeline and ``export-onnx`` ask
- ``boxes``: SSD anchors, box decoding, IoU, NMS (any single-shot detector)
- ``crops``: rotated square regions of interest and the frame <-> crop warps
- ``runtime``: the TFLite runner (one base class for every model)
- ``blazepose``: the two BlazePose models, one class each (PoseDetector, PoseLandmarker)
- ``heatmaps``: keypoints from heatmaps (peaks, DARK refinement, flip test)
- ``hrnet_net``: the HRNet-w32 network (torch) and MMPose checkpoint loading
- ``hrnet``: HRNet top-down keypoints on person boxes (crops, runtimes, decoding)
- ``tracker``: identities across frames, quality gates, left/right consistency (pure numpy)
- ``solution``: models + tracker chained (BlazePose: one person; PoseTracker: everyone, with
  BlazePose's landmark model or HRNet as the second stage)

Example::

    det = create_detector("blazepose-full")        # one person
    det.reset()
    for frame in frames:          # (H, W, 3) uint8 RGB
        d = det(frame)            # Detection or None

    trk = create_tracker("blazepose-full", max_people=5)   # everyone
    for frame in frames:
        for d in trk(frame):      # list[Detection], d.track_id stable across frames
            ...
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Detection", "Detector", "available_detectors", "create_detector", "create_tracker",
           "download_model"]


@dataclass
class Detection:
    """One person in one frame."""
    xy: np.ndarray     # (K, 2) float64 pixels in the full frame, x right, y down
    conf: np.ndarray   # (K,) per-keypoint confidence in [0, 1]
    score: float       # person presence score in [0, 1]
    track_id: int | None = None        # identity (multi-person tracking), from 1
    outside: np.ndarray | None = None  # (K,) bool: keypoint outside the picture (conf lowered)
    #: (K, 3) BlazePose's world landmarks: metres, origin between the hips, x right, y down,
    #: z away from the camera (None for detectors without them, e.g. HRNet)
    world: np.ndarray | None = None
    visibility: np.ndarray | None = None  # (K,) BlazePose's visibility in [0, 1]


@runtime_checkable
class Detector(Protocol):
    name: str          # e.g. "blazepose-full"
    layout: str        # "blazepose33" (BlazePose) or "coco17" (HRNet)

    def reset(self) -> None:
        """Forget tracking (start of a new video)."""

    def __call__(self, frame: np.ndarray) -> Detection | None:
        """frame (H, W, 3) uint8 RGB -> the followed person, or None when there is none."""


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_tracker` (BlazePose's also by :func:`create_detector`):
    the keys of :data:`posecli.detect2d.table.DETECTORS`.

    ``blazepose-heavy`` and ``hrnet`` are listed although their models are not shipped:
    creating them without the file raises a WeightsError that says how to get it.
    """
    from posecli.detect2d.table import DETECTORS
    return list(DETECTORS)


def create_detector(name: str = "blazepose-full", threads: int = 2) -> Detector:
    """Build a single-person detector by name (BlazePose only).

    Raises:
        ValueError: unknown name.
        posecli.weights.WeightsError: a model file is missing or fails its checksum.
    """
    from posecli.detect2d.table import detector_entry

    entry = detector_entry(name)
    if entry.layout != "blazepose33":
        raise ValueError(f"{name} runs in the multi-person tracker only: create_tracker({name!r})")
    from posecli.compute import set_opencv_threads
    from posecli.detect2d.solution import BlazePose

    set_opencv_threads(1)
    return BlazePose(name, threads=threads)


def create_tracker(name: str = "blazepose-full", threads: int = 2, max_people: int = 5,
                   detect_every: int | None = None, pose_model: str | Path | None = None):
    """Build a multi-person tracker (:class:`posecli.detect2d.solution.PoseTracker`) from the
    table (:mod:`posecli.detect2d.table`): called on a frame it returns a list of Detection
    with stable ``track_id``.

    ``pose_model``: for a detector that takes a model file (``hrnet``: an ONNX file or an MMPose
    ``.pth`` checkpoint; default: the model-zoo checkpoint, downloaded once into the user
    cache). ``detect_every``: frames between the person detector's searches for newcomers
    (default: the tracker's, half a second of video). Errors as :func:`create_detector`;
    ValueError when ``pose_model`` is given to a detector that takes none.
    """
    from posecli.compute import set_opencv_threads
    from posecli.detect2d.table import detector_entry

    set_opencv_threads(1)
    return detector_entry(name).build(threads=threads, max_people=max_people,
                                      pose_model=pose_model, detect_every=detect_every)


def download_model(name: str = "blazepose-heavy"):
    """Fetch a model that is not shipped (network needed); see blazepose.download_model."""
    from posecli.detect2d.blazepose import download_model as _dl

    return _dl(name)
