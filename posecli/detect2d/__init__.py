"""2D keypoint detectors: a video frame in, one person's keypoints out.

The default backend is BlazePose (MediaPipe Pose, two stages: person detector + landmark
model) run with ai-edge-litert; see :mod:`posecli.detect2d.blazepose`. This package depends
on numpy, OpenCV and ai-edge-litert only (the latter imported when a detector is created).

Example::

    det = create_detector("blazepose-full")
    det.reset()
    for frame in frames:          # (H, W, 3) uint8 RGB
        d = det(frame)            # Detection or None
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Detection", "Detector", "available_detectors", "create_detector", "download_model"]


@dataclass
class Detection:
    """One person in one frame."""
    xy: np.ndarray     # (K, 2) float64 pixels in the full frame, x right, y down
    conf: np.ndarray   # (K,) per-keypoint confidence in [0, 1]
    score: float       # person presence score in [0, 1]


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
    from posecli.detect2d.blazepose import BlazePose

    return BlazePose(name, threads=threads)


def download_model(name: str = "blazepose-heavy"):
    """Fetch a model that is not shipped (network needed); see blazepose.download_model."""
    from posecli.detect2d.blazepose import download_model as _dl

    return _dl(name)
