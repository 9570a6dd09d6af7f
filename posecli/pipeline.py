"""The one entry point: video (or 2D keypoints) in, :class:`LiftResult` out.

Data flows one way: frames -> 2D keypoints (detect2d) -> H36M-17 keypoints with gaps filled
(skeleton) -> 3D (lifter over blended windows) -> a LiftResult that every writer can use.
Only keypoints are kept per frame, never frames, so memory does not grow with video length.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from posecli import skeleton
from posecli.errors import NoPersonError, UsageError
from posecli.lifter import Lifter, load_lifter
from posecli.result import LiftResult

# progress(stage, done, total): called as work advances; total is None when unknown.
Progress = Callable[[str, int, "int | None"], None]

DEFAULT_DETECTOR = "blazepose-full"
MAX_GAP_SECONDS = 0.5  # gaps up to this long are interpolated; longer ones are flagged missing


def lift(source: "str | Path", *, detector: str = DEFAULT_DETECTOR, lifter: Lifter | None = None,
         weights: "str | Path | None" = None, backend: str = "torch", flip: bool = True,
         stride: int | None = None, rigid: bool = True, threads: int = 2,
         progress: Progress | None = None) -> LiftResult:
    """Lift a video or a 2D keypoint file (``.json``) to 3D; the one entry point.

    Args:
        source: a video file (anything ffmpeg decodes) or a posecli keypoint / result JSON.
        detector: 2D detector for videos (``posecli.detect2d.available_detectors()``).
        lifter: an already loaded :class:`posecli.lifter.Lifter` (batches load it once);
            otherwise one is loaded from ``weights`` (default: the shipped ``lifter.pt``)
            with ``backend`` ("torch" or "onnx"), ``flip`` test-time augmentation and
            ``stride`` (frames between window starts, 1..T; default T // 2).
        rigid: one set of bone lengths for the whole clip.
        threads: CPU threads of the detector and of onnxruntime.
        progress: ``progress(stage, done, total)`` callback.
    Returns:
        a :class:`LiftResult`: 2D keypoints (pixels), flags and root-relative 3D (metres).
    """
    if lifter is None:
        lifter = load_lifter(weights, backend=backend, flip=flip, stride=stride, threads=threads)
    if Path(source).suffix.lower() == ".json":
        from posecli.keypoints import read_keypoints
        kp = read_keypoints(source)
        xy, conf = to_h36m(kp.xy, kp.conf, kp.layout)
        return lift_keypoints(xy, conf, kp.width, kp.height, kp.fps, valid=kp.valid, lifter=lifter,
                              source=str(source), progress=progress, rigid=rigid)
    return lift_video(source, detector, lifter, threads, progress, rigid)


def detect_video(path: str | Path, detector: str = DEFAULT_DETECTOR, threads: int = 2,
                 progress: Progress | None = None):
    """Run the 2D detector over every frame of a video, keeping only keypoints.

    Returns (info, landmarks (N, K, 2) px with NaN where no person, conf (N, K), found (N,),
    detector description dict).
    """
    from posecli.detect2d import create_detector
    from posecli.video import iter_frames, probe

    info = probe(path)
    det = create_detector(detector, threads=threads)
    det.reset()
    xs, cs, found = [], [], []
    for i, frame in enumerate(iter_frames(path, info)):
        d = det(frame)
        if d is None:
            xs.append(None), cs.append(None), found.append(False)
        else:
            xs.append(d.xy), cs.append(d.conf), found.append(True)
        if progress:
            progress("detect", i + 1, info.num_frames)
    k = next((x.shape[0] for x in xs if x is not None), 33)
    xy = np.stack([x if x is not None else np.full((k, 2), np.nan) for x in xs])
    conf = np.stack([c if c is not None else np.zeros(k) for c in cs])
    return info, xy, conf, np.array(found), {"name": det.name, "layout": det.layout}


def to_h36m(xy: np.ndarray, conf: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2), (N, K) in a detector layout -> (N, 17, 2), (N, 17) in the H36M layout."""
    if layout == "h36m17":
        return np.asarray(xy, float), np.asarray(conf, float)
    if layout == "blazepose33":
        return skeleton.blazepose_to_h36m(xy, conf)
    raise UsageError(f"unsupported keypoint layout {layout!r} (h36m17 or blazepose33)")


def lift_keypoints(xy: np.ndarray, conf: np.ndarray, width: int, height: int, fps: float,
                   valid: np.ndarray | None = None, lifter: Lifter | None = None,
                   source: str = "", progress: Progress | None = None,
                   rigid: bool = True) -> LiftResult:
    """Lift a 2D track in the H36M layout to 3D.

    Args:
        xy: (N, 17, 2) pixels; conf: (N, 17); valid: (N,) frames where a person was seen
            (default: frames with any finite keypoint).
        rigid: give the skeleton one set of bone lengths for the whole clip (per-bone median
            over detected frames, left and right averaged), keeping bone directions.
    """
    xy = np.asarray(xy, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[1:] != (skeleton.NUM_JOINTS, 2) or len(xy) == 0:
        raise UsageError(f"expected keypoints of shape (N>0, 17, 2), got {xy.shape}")
    if valid is None:
        valid = np.isfinite(xy).all(axis=(1, 2))
    if not valid.any():
        raise NoPersonError("no person was found in any frame")
    xy = np.where(valid[:, None, None], xy, 0.0)
    xy, conf, flags = skeleton.fill_gaps(xy, conf, valid, max_gap=max(1, round(MAX_GAP_SECONDS * fps)))
    lifter = lifter or load_lifter()
    if progress:
        progress("lift", 0, len(xy))
    pose3d = lifter(skeleton.normalize_to_frame(xy, width, height))
    pose3d = pose3d - pose3d[:, :1]  # exactly root-relative
    if not np.isfinite(pose3d).all():  # never write a NaN pose as if it were measured
        raise FloatingPointError("the lifter produced non-finite 3D joints")
    if rigid:
        lengths = skeleton.symmetric_bone_lengths(pose3d, flags == skeleton.DETECTED)
        pose3d = skeleton.fix_bone_lengths(pose3d, lengths)
    if progress:
        progress("lift", len(xy), len(xy))
    return LiftResult(source=str(source), kind="keypoints", fps=float(fps), width=int(width),
                      height=int(height), keypoints=xy, conf=conf, flags=flags,
                      pose3d=pose3d, lifter={**lifter.info, "rigid_bones": rigid})


def lift_video(path: str | Path, detector: str = DEFAULT_DETECTOR, lifter: Lifter | None = None,
               threads: int = 2, progress: Progress | None = None, rigid: bool = True) -> LiftResult:
    """Detect a person in every frame of a video and lift the track to 3D."""
    lifter = lifter or load_lifter()  # load first: a bad weights file fails before decoding
    info, lm, lm_conf, found, det_info = detect_video(path, detector, threads, progress)
    if not found.any():
        raise NoPersonError(f"{path}: no person was found in any of {len(found)} frames")
    xy, conf = to_h36m(np.nan_to_num(lm), lm_conf, det_info["layout"])
    result = lift_keypoints(xy, conf, info.width, info.height, info.fps, valid=found,
                            lifter=lifter, source=str(path), progress=progress, rigid=rigid)
    result.kind = "video"
    result.detector = det_info
    result.landmarks, result.landmark_conf = lm, lm_conf
    return result
