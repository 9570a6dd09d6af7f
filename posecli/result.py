"""The result of a lift: what every writer receives."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posecli import __version__


@dataclass
class LiftResult:
    """Everything a writer needs, in numpy arrays over N frames.

    keypoints: (N, 17, 2) pixels (x right, y down) in the Human3.6M layout, gaps filled.
    conf:      (N, 17) per-joint confidence in [0, 1]; 0 where a joint was interpolated.
    flags:     (N,) "detected" | "interpolated" | "missing".
    pose3d:    (N, 17, 3) metres, camera axes (x right, y down, z forward), pelvis at origin.
    landmarks, landmark_conf: the detector's raw (N, K, 2) / (N, K) output (NaN when no person),
        None for keypoint-file input.
    landmarks_world: (N, 33, 3) BlazePose's world landmarks, metres, BlazePose's world axes
        (origin between the hips, x right, y down, z away from the camera), NaN where missing;
        None when the detector or the keypoint file has none.
    landmarks_visibility: (N, 33) BlazePose's visibility in [0, 1] (0 where missing), or None.
    times:     (N,) seconds, each frame's presentation time (None: index / fps).
    timing:    how the lifter treated the frame rate (see ``posecli.timing.lift_plan``).
    video:     how the video was read: SAR, rotation, frames expected/decoded (None for keypoints).
    trajectory: the estimated placement in the world (:class:`posecli.trajectory.Trajectory`:
        world joints, foot contacts, floor), None when not estimated.
    world:     (N, 17, 3) the rigid world joints (metres, Y up) that the BVH and MP4 writers
        draw: :func:`world_joints`, computed once (by the pipeline, or on first use).
    bones: the clip's bone lengths before / after the plausibility step (None without --rigid).
    quality: the per-clip quality report (:mod:`posecli.quality`).
    provenance: what a batch records so a rerun can skip the clip (see posecli.batch).
    """
    source: str
    kind: str  # "video" or "keypoints"
    fps: float
    width: int
    height: int
    keypoints: np.ndarray
    conf: np.ndarray
    flags: np.ndarray
    pose3d: np.ndarray
    lifter: dict
    detector: dict | None = None
    landmarks: np.ndarray | None = None
    landmark_conf: np.ndarray | None = None
    landmarks_world: np.ndarray | None = None
    landmarks_visibility: np.ndarray | None = None
    provenance: dict | None = None  # batch resume: input file identity and settings (posecli.batch)
    times: np.ndarray | None = None
    timing: dict | None = None
    video: dict | None = None
    version: str = field(default=__version__)
    trajectory: "Trajectory | None" = None  # noqa: F821 (posecli.trajectory)
    world: np.ndarray | None = None  # (N, 17, 3) rigid world joints, metres, Y up: world_joints()
    bones: dict | None = None
    quality: dict | None = None  # posecli.quality.report

    def frame_times(self) -> np.ndarray:
        """(N,) seconds: the stored times, else index / fps."""
        if self.times is not None:
            return np.asarray(self.times, dtype=np.float64)
        return np.arange(self.num_frames) / self.fps

    @property
    def num_frames(self) -> int:
        return len(self.pose3d)

    def world_joints(self) -> np.ndarray:
        """(N, 17, 3) world joints, metres, Y up (:func:`world_joints`), computed once."""
        if self.world is None:
            self.world = world_joints(self)
        return self.world


def world_joints(result: LiftResult) -> np.ndarray:
    """The (N, 17, 3) world joints (metres, Y up) a BVH of ``result`` reproduces.

    The result's estimated world placement when it has one; otherwise the root-relative camera
    pose turned to Y up (x, -y, -z). Made rigid (one length per bone) with the pelvis at
    mid-hips and the hip line square to the lower spine if it is not already, since a BVH
    skeleton has fixed offsets (:func:`posecli.trajectory.square_hips`).
    """
    from posecli import skeleton, trajectory

    if result.trajectory is not None:
        w = np.asarray(result.trajectory.world, float)
    else:
        w = np.asarray(result.pose3d, float) * np.array([1.0, -1.0, -1.0])
    lengths = skeleton.symmetric_bone_lengths(w)
    if (np.abs(skeleton.bone_lengths(w) - lengths).max() > 1e-6
            or np.abs(w[:, 0] - (w[:, 1] + w[:, 4]) / 2).max() > 1e-6
            or np.abs(trajectory.square_hips(w) - w).max() > 1e-6):  # not rigid or not square
        w = skeleton.fix_bone_lengths(trajectory.square_hips(trajectory.symmetric_hips(w)), lengths)
    return w

