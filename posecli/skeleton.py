"""The Human3.6M 17-joint skeleton, conversion from BlazePose's 33 landmarks, gap filling
and normalisation of pixel coordinates to the frame.

Conventions used throughout posecli:
- 2D keypoints are pixels, x to the right, y down, origin at the top-left corner of the frame.
- 3D joints are metres in the camera frame (x right, y down, z forward: OpenCV axes),
  root-relative (the pelvis is at the origin) unless stated otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# ---------------------------------------------------------------------------------------------
# Layouts, defined once: names, parents, left/right pairs and the flip permutation.

@dataclass(frozen=True)
class Layout:
    """A keypoint layout: joint names, parent of each joint (-1: root) and left/right pairs."""
    name: str
    names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]

    @property
    def joints(self) -> int:
        return len(self.names)

    def flip_permutation(self) -> np.ndarray:
        """(J,) index array swapping left and right: ``x[..., perm, :]`` mirrors the labels."""
        perm = np.arange(self.joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm


# Human3.6M 17 joints: the lifter's layout. "head" is the head top; "neck_nose" the skull base.
H36M17 = Layout(
    "h36m17",
    ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
     "neck_nose", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist"),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    (4, 5, 6, 11, 12, 13), (1, 2, 3, 14, 15, 16))

# HumanEva-I 15 joints (VideoPose3D's humaneva15 files); "head" is the head top.
HUMANEVA15 = Layout(
    "humaneva15",
    ("pelvis", "thorax", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
     "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "head"),
    (-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
    (2, 3, 4, 8, 9, 10), (5, 6, 7, 11, 12, 13))
# H36M-17 index of every HumanEva-15 joint.
HUMANEVA15_TO_H36M17: tuple[int, ...] = (0, 8, 11, 12, 13, 14, 15, 16, 4, 5, 6, 1, 2, 3, 10)

# BlazePose / MediaPipe Pose 33 landmarks (parents: a tree over the body, face to the nose).
BLAZEPOSE33 = Layout(
    "blazepose33",
    ("nose", "l_eye_inner", "l_eye", "l_eye_outer", "r_eye_inner", "r_eye", "r_eye_outer",
     "l_ear", "r_ear", "mouth_l", "mouth_r", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
     "l_wrist", "r_wrist", "l_pinky", "r_pinky", "l_index", "r_index", "l_thumb", "r_thumb",
     "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle", "l_heel", "r_heel",
     "l_foot_index", "r_foot_index"),
    (-1, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16,
     11, 12, 23, 24, 25, 26, 27, 28, 27, 28),
    (1, 2, 3, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
    (4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32))

# COCO 17 keypoints (HRNet / MMPose top-down models).
COCO17 = Layout(
    "coco17",
    ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
     "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle"),
    (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    (1, 3, 5, 7, 9, 11, 13, 15), (2, 4, 6, 8, 10, 12, 14, 16))

LAYOUTS: dict[str, Layout] = {l.name: l for l in (H36M17, HUMANEVA15, BLAZEPOSE33, COCO17)}

# The lifter's layout under short names used across the code.
JOINTS, PARENTS, LEFT, RIGHT = H36M17.names, H36M17.parents, H36M17.left, H36M17.right
NUM_JOINTS = H36M17.joints


def flip_permutation() -> np.ndarray:
    """The H36M-17 left/right swap (see :meth:`Layout.flip_permutation`)."""
    return H36M17.flip_permutation()


def layout_for(joints: int) -> Layout:
    """The layout of a lifter with ``joints`` joints (17: H36M, 15: HumanEva)."""
    for layout in (H36M17, HUMANEVA15):
        if layout.joints == joints:
            return layout
    raise ValueError(f"no known layout has {joints} joints")


# Joints that detectors measure directly: H36M index -> the detector layout's index, by name.
def _direct(layout: Layout) -> dict[int, int]:
    ix = layout.names.index
    return {H36M17.names.index(n): ix(n) for n in
            ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "l_shoulder",
             "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")}


# Head geometry, as fractions (see blazepose_to_h36m): head top lies this many eye-to-mouth
# distances above the ear midpoint; the skull base (neck_nose) sits this fraction of the way from
# the thorax to the head top, the proportion of the CMU skeleton the lifter is trained on.
HEAD_TOP_FROM_EARS = 1.7
NECK_FRACTION = 0.665
# COCO has no mouth: the head top lies this many nose-to-eye distances above the ear midpoint
# (least-squares fit to the BlazePose head top above on the example video: 2.9; eye-to-nose is
# about half of eye-to-mouth there).
HEAD_TOP_FROM_EARS_NOSE = 3.0


def _to_h36m(xy: np.ndarray, conf: np.ndarray, layout: Layout, face_low: tuple[str, ...],
             head_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Shared by the detector layouts: direct joints copied, head top = ear midpoint moved up
    the face (from the midpoint of ``face_low`` to the eyes) by ``head_factor`` times that
    distance, the rest synthesised (:func:`synthesise_h36m`). Confidences of made joints are the
    smallest of their sources'."""
    xy = np.asarray(xy, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    out = np.zeros(xy.shape[:-2] + (NUM_JOINTS, xy.shape[-1]))
    c = np.zeros(conf.shape[:-1] + (NUM_JOINTS,))
    for j, b in _direct(layout).items():
        out[..., j, :] = xy[..., b, :]
        c[..., j] = conf[..., b]
    ix = layout.names.index

    def mid(*names: str) -> tuple[np.ndarray, np.ndarray]:
        idx = [ix(n) for n in names]
        return xy[..., idx, :].mean(-2), conf[..., idx].min(-1)

    c_pelvis = np.minimum(c[..., 1], c[..., 4])      # hips, copied above
    c_thorax = np.minimum(c[..., 11], c[..., 14])    # shoulders
    ears, c_ears = mid("l_ear", "r_ear")
    eyes, c_eyes = mid("l_eye", "r_eye")
    low, c_low = mid(*face_low)
    out[..., 10, :] = ears + head_factor * (eyes - low)
    c_head = np.minimum(np.minimum(c_ears, c_eyes), c_low)
    c[..., 10] = c_head
    synthesise_h36m(out)
    c[..., 0], c[..., 8] = c_pelvis, c_thorax
    c[..., 7] = np.minimum(c_pelvis, c_thorax)
    c[..., 9] = np.minimum(c_thorax, c_head)
    return out, c


def blazepose_to_h36m(xy: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map BlazePose landmarks to the Human3.6M 17-joint layout.

    Args:
        xy: (..., 33, D) landmarks: pixels (D = 2), or metres (D = 3, e.g. MediaPipe's world
            landmarks, for comparisons).
        conf: (..., 33) per-landmark confidence in [0, 1].
    Returns:
        (..., 17, D) joints and (..., 17) confidences.

    Direct joints: hips, knees, ankles, shoulders, elbows, wrists. Synthesised joints:
    pelvis = mid-hips; thorax = mid-shoulders; spine = midpoint of pelvis and thorax;
    head (top) = ear midpoint moved up the face (mouth -> eyes direction) by 1.7 eye-to-mouth
    distances; neck_nose = the skull base, 0.665 of the way from thorax to head top (the
    definition in the CMU training data). A synthesised joint's confidence is the smallest
    confidence of the landmarks it is made from.
    """
    return _to_h36m(xy, conf, BLAZEPOSE33, ("mouth_l", "mouth_r"), HEAD_TOP_FROM_EARS)


def coco_to_h36m(xy: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map COCO-17 keypoints (HRNet) to the Human3.6M 17-joint layout: (..., 17, D), (..., 17)
    -> (..., 17, D), (..., 17). As :func:`blazepose_to_h36m`, with the nose in place of the
    mouth: head top = ear midpoint + 3.0 (eyes - nose)."""
    return _to_h36m(xy, conf, COCO17, ("nose",), HEAD_TOP_FROM_EARS_NOSE)


#: Keypoint layouts a detector may produce -> their conversion to the lifter's layout.
TO_H36M = {BLAZEPOSE33.name: blazepose_to_h36m, COCO17.name: coco_to_h36m}


def synthesise_h36m(pose: np.ndarray, pelvis_thorax: bool = True) -> np.ndarray:
    """Fill the H36M-17 joints that detectors and other skeletons do not measure, in place.

    (..., 17, D) in any units, D = 2 or 3. From the hips, shoulders and head top:
    pelvis = mid-hips and thorax = mid-shoulders (``pelvis_thorax``), spine = mid(pelvis,
    thorax), neck_nose = thorax + 0.665 (head - thorax), the skull base of the CMU skeleton
    the lifter is trained on. Returns ``pose``.
    """
    if pelvis_thorax:
        pose[..., 0, :] = (pose[..., 1, :] + pose[..., 4, :]) / 2
        pose[..., 8, :] = (pose[..., 11, :] + pose[..., 14, :]) / 2
    pose[..., 7, :] = (pose[..., 0, :] + pose[..., 8, :]) / 2
    pose[..., 9, :] = pose[..., 8, :] + NECK_FRACTION * (pose[..., 10, :] - pose[..., 8, :])
    return pose


def normalize_to_frame(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixels to the lifter's input range: ``x/w*2 - 1``, ``y/w*2 - h/w`` (aspect kept).

    Args:
        xy: (..., 2) pixels. Returns the same shape, float32.
    """
    xy = np.asarray(xy, dtype=np.float64)
    out = np.empty_like(xy)
    out[..., 0] = xy[..., 0] / width * 2 - 1
    out[..., 1] = xy[..., 1] / width * 2 - height / width
    return out.astype(np.float32)


def denormalize_from_frame(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Inverse of :func:`normalize_to_frame`. (..., 2) -> (..., 2) pixels."""
    xy = np.asarray(xy, dtype=np.float64)
    out = np.empty_like(xy)
    out[..., 0] = (xy[..., 0] + 1) * width / 2
    out[..., 1] = (xy[..., 1] + height / width) * width / 2
    return out


# Per-frame flags written to the JSON output.
DETECTED, INTERPOLATED, MISSING = "detected", "interpolated", "missing"


def fill_gaps(xy: np.ndarray, conf: np.ndarray, valid: np.ndarray, max_gap: int,
              min_conf: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill short gaps in a keypoint track by linear interpolation, per joint.

    Args:
        xy: (N, J, D) pixels (D = 2), or any per-joint values (e.g. D = 3 world landmarks);
            values in invalid frames are ignored.
        conf: (N, J) confidences.
        valid: (N,) bool, True where a person was detected in the frame.
        max_gap: longest run of missing frames (or low-confidence joint samples) to interpolate.
        min_conf: joint samples below this confidence count as missing for that joint. Low on
            purpose: BlazePose still places self-occluded limbs sensibly at confidence 0.1-0.3.
    Returns:
        xy (N, J, D) filled, conf (N, J) (0 where a joint was invented by interpolation or
        held), and flags (N,) of DETECTED / INTERPOLATED / MISSING strings. Frames in gaps
        longer than ``max_gap`` (or before the first / after the last detection) are MISSING;
        their keypoints are held at the nearest detected value so the lifter still gets a
        continuous input, and their confidence is 0.
    """
    xy = np.array(xy, dtype=np.float64)
    conf = np.where(valid[:, None], np.asarray(conf, dtype=np.float64), 0.0)
    n, j = conf.shape
    flags = np.full(n, MISSING, dtype=object)
    if not valid.any():
        raise ValueError("no person was detected in any frame")
    frame_gap = _short_gaps(valid, max_gap)
    flags[valid] = DETECTED
    flags[frame_gap] = INTERPOLATED
    t = np.arange(n)
    for k in range(j):
        ok = valid & (conf[:, k] >= min_conf)
        if not ok.any():  # joint never seen well: fall back to whatever the detector said
            ok = valid
        for d in range(xy.shape[-1]):
            # np.interp holds the end values outside the known range
            xy[:, k, d] = np.where(ok, xy[:, k, d], np.interp(t, t[ok], xy[ok, k, d]))
        conf[~ok, k] = 0.0
    return xy, conf, flags.astype(str)


def _short_gaps(valid: np.ndarray, max_gap: int) -> np.ndarray:
    """(N,) bool -> (N,) bool marking invalid frames in interior runs of length <= max_gap."""
    out = np.zeros_like(valid)
    idx = np.flatnonzero(valid)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            out[a + 1:b] = True
    return out


def bone_lengths(pose: np.ndarray) -> np.ndarray:
    """(..., 17, 3) joints -> (..., 16) lengths of the bones child -> parent (joints 1..16)."""
    child = np.arange(1, NUM_JOINTS)
    parent = np.asarray(PARENTS[1:])
    return np.linalg.norm(pose[..., child, :] - pose[..., parent, :], axis=-1)


def symmetric_bone_lengths(pose: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """One length per bone for a whole clip: the median over frames, left and right averaged.

    Args:
        pose: (N, 17, 3) joints; weights: (N,) bool frames to use (default all).
    Returns:
        (16,) lengths of the bones child -> parent for joints 1..16.
    """
    b = bone_lengths(pose if weights is None else pose[weights])
    med = np.median(b, axis=0)
    for l, r in zip(LEFT, RIGHT):
        med[l - 1] = med[r - 1] = (med[l - 1] + med[r - 1]) / 2
    return med


def fix_bone_lengths(pose: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Give every frame the same bone lengths, keeping each bone's direction.

    A monocular lifter's bones stretch a little from frame to frame; animation rigs (BVH) and
    most analyses want one rigid skeleton. Joints are rebuilt from the root outwards.

    Args:
        pose: (N, 17, 3) root-relative joints; lengths: (16,) for joints 1..16.
    Returns:
        (N, 17, 3) with ``bone_lengths(out) == lengths`` in every frame.
    """
    out = np.array(pose, dtype=np.float64)
    for j in range(1, NUM_JOINTS):  # parents come before children in PARENTS
        p = PARENTS[j]
        d = pose[:, j] - pose[:, p]
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        out[:, j] = out[:, p] + d / np.maximum(norm, 1e-9) * lengths[j - 1]
    return out


def mirror(a, perm):
    """Mirror poses about the vertical image axis: negate x and swap left/right joints.

    (..., J, D) -> (..., J, D), numpy array or torch tensor; ``perm`` is the layout's
    left/right swap (:meth:`Layout.flip_permutation`). Valid for frame-centred normalised 2D
    and root-relative 3D.
    """
    out = a[..., perm, :]
    out = out.clone() if hasattr(out, "clone") else out.copy()
    out[..., 0] = -out[..., 0]
    return out
