"""2D keypoint detectors: a video frame in, people's keypoints out.

The backend is BlazePose (MediaPipe Pose, two stages: person detector + landmark model) run
with ai-edge-litert. This package depends on numpy, OpenCV and ai-edge-litert only (the latter
imported when a detector is created). Modules, from the bottom up:

- ``boxes``: SSD anchors, box decoding, IoU, NMS (any single-shot detector)
- ``crops``: rotated square regions of interest and the frame <-> crop warps
- ``runtime``: the TFLite runner (one base class for every model)
- ``blazepose``: the two BlazePose models, one class each (PoseDetector, PoseLandmarker)
- ``tracker``: identities across frames, quality gates, left/right consistency (pure numpy)
- ``solution``: models + tracker chained (BlazePose: one person; PoseTracker: everyone)

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


@runtime_checkable
class Detector(Protocol):
    name: str          # e.g. "blazepose-full"
    layout: str        # "blazepose33" (later backends: "coco17" for HRNet)

    def reset(self) -> None:
        """Forget tracking (start of a new video)."""

    def __call__(self, frame: np.ndarray) -> Detection | None:
        """frame (H, W, 3) uint8 RGB -> the followed person, or None when there is none."""


_BLAZEPOSE = ("blazepose-lite", "blazepose-full", "blazepose-heavy")


def available_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`.

    ``blazepose-heavy`` is listed although its model is not shipped: creating it without the
    file raises a WeightsError that says how to get it (:func:`download_model`).
    """
    return list(_BLAZEPOSE)


def create_detector(name: str = "blazepose-full", threads: int = 2) -> Detector:
    """Build a detector by name.

    Raises:
        ValueError: unknown name.
        posecli.weights.WeightsError: a model file is missing or fails its checksum.
    """
    if name not in _BLAZEPOSE:
        raise ValueError(f"unknown detector {name!r}; available: {', '.join(_BLAZEPOSE)}")
    from posecli.detect2d.solution import BlazePose

    return BlazePose(name, threads=threads)


def create_tracker(name: str = "blazepose-full", threads: int = 2, max_people: int = 5,
                   detect_every: int = 3):
    """Build a multi-person tracker (:class:`posecli.detect2d.solution.PoseTracker`): called
    on a frame it returns a list of Detection with stable ``track_id``. Errors as
    :func:`create_detector`."""
    if name not in _BLAZEPOSE:
        raise ValueError(f"unknown detector {name!r}; available: {', '.join(_BLAZEPOSE)}")
    from posecli.detect2d.solution import PoseTracker

    return PoseTracker(name, threads=threads, max_people=max_people, detect_every=detect_every)


def download_model(name: str = "blazepose-heavy"):
    """Fetch a model that is not shipped (network needed); see blazepose.download_model."""
    from posecli.detect2d.blazepose import download_model as _dl

    return _dl(name)
