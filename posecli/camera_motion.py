"""Camera motion from the background: does the camera pan or tilt, and by how much.

The root trajectory (:mod:`posecli.trajectory`) assumes a static camera: a camera that pans
to follow a runner turns the run into running on the spot. Here the background's movement
between consecutive frames is measured with sparse optical flow (OpenCV: corners outside the
person's box, pyramidal Lucas-Kanade, a RANSAC similarity per frame pair) and accumulated; with
the focal length it becomes the camera's pan (yaw) and tilt (pitch) from the first frame, which
turns each frame's root position back into the first frame's camera axes
(:func:`posecli.trajectory.pan_rotations`). Only rotation is
modelled (a camera on a tripod or in a hand); a camera that travels (a dolly, a drone) shows
as a pan too, and is only flagged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_SIDE = 320          # px: frames are measured at this size (flow is smooth; speed matters)
MIN_POINTS = 12         # background corners needed to trust a frame pair
BOX_MARGIN = 0.15       # the person's box grown by this share of its size on every side
# The camera "moves" when the background's centre point travels more than this share of the
# image width away from where it started (a static camera's flow noise drifts ~0.1 %).
MOVING_SHARE = 0.03


def person_boxes(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, K, 2) px keypoints (NaN where unseen) -> (N, 4) boxes x0, y0, x1, y1 (px) grown by
    :data:`BOX_MARGIN`; frames without a keypoint get the whole image (nothing measured)."""
    xy = np.asarray(xy, float)
    ok = np.isfinite(xy).all(-1)
    boxes = np.tile([0.0, 0.0, float(width), float(height)], (len(xy), 1))
    for i in np.flatnonzero(ok.any(axis=1)):
        p = xy[i, ok[i]]
        lo, hi = p.min(0), p.max(0)
        pad = BOX_MARGIN * (hi - lo) + 0.02 * max(width, height)
        boxes[i] = [*(lo - pad), *(hi + pad)]
    return boxes


def background_shift(frames, boxes: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """How far the background has moved in the image since the first frame.

    Args:
        frames: iterable of (H, W, 3) uint8 RGB frames; boxes: (N, 4) px regions to ignore
            (the person), one per frame.
    Returns:
        shift: (N, 2) px (full resolution), the image centre's background point's displacement
        from frame 0 (a camera panning right moves the background left: negative x);
        measured: (N,) bool, frame pairs with enough background to measure (others add 0).
    """
    return background_shifts(frames, [boxes], max_side)[0]


def background_shifts(frames, boxes: list[np.ndarray], max_side: int = MAX_SIDE
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`background_shift` for several people at once (one (N, 4) box array each) over
    one pass of ``frames``: each person's result is the same as measured alone, but the video
    is decoded and shrunk once, not once per person."""
    import cv2

    steps = [[np.zeros(2)] for _ in boxes]
    measured = [[True] for _ in boxes]
    prev, prev_masks = None, [None] * len(boxes)
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        k = min(1.0, max_side / max(h, w))
        gray = cv2.cvtColor(cv2.resize(frame, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_RGB2GRAY)
        for j, person in enumerate(boxes):
            mask = np.full(gray.shape, 255, np.uint8)
            if i < len(person):
                x0, y0, x1, y1 = np.round(np.asarray(person[i]) * k).astype(int)
                mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 0
            if prev is not None:
                d, ok = _pair_shift(prev, gray, prev_masks[j] & mask)
                steps[j].append(d / k)
                measured[j].append(ok)
            prev_masks[j] = mask
        prev = gray
    return [(np.cumsum(np.array(s), axis=0), np.array(m)) for s, m in zip(steps, measured)]


def _pair_shift(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, bool]:
    """Displacement (px at this size) of the image centre's background point from gray frame
    ``a`` to ``b``, from corners where ``mask`` is set; (0, 0), False when too few."""
    import cv2

    pts = cv2.goodFeaturesToTrack(a, maxCorners=300, qualityLevel=0.01, minDistance=6, mask=mask)
    if pts is None or len(pts) < MIN_POINTS:
        return np.zeros(2), False
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None, winSize=(15, 15), maxLevel=3)
    good = st.ravel() == 1
    if good.sum() < MIN_POINTS:
        return np.zeros(2), False
    m, inliers = cv2.estimateAffinePartial2D(pts[good], nxt[good], method=cv2.RANSAC,
                                             ransacReprojThreshold=1.0)
    if m is None or inliers is None or inliers.sum() < MIN_POINTS:
        return np.zeros(2), False
    c = np.array([a.shape[1] / 2, a.shape[0] / 2, 1.0])
    return m @ c - c[:2], True


def report(shift: np.ndarray, measured: np.ndarray, width: int, focal: float) -> dict:
    """The ``camera`` facts for the quality block: ``camera_motion`` (the largest background
    displacement as a share of the image width), the pan and tilt reached (degrees), and the
    share of frame pairs that could be measured."""
    reach = float(np.abs(shift).max(axis=0).max()) if len(shift) else 0.0
    return {"camera_motion": round(reach / max(width, 1), 4),
            "camera_pan_deg": round(float(np.degrees(np.arctan2(np.abs(shift[:, 0]).max(), focal))), 2),
            "camera_tilt_deg": round(float(np.degrees(np.arctan2(np.abs(shift[:, 1]).max(), focal))), 2),
            "camera_measured": round(float(np.mean(measured)), 3)}


def measure(path: str | Path, xy: np.ndarray, width: int, height: int, info=None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Background shift (N, 2) px and measured (N,) for a video, ignoring the person whose
    keypoints (N, K, 2) are given. Decodes the video once more."""
    return measure_people(path, [xy], width, height, info)[0]


def measure_people(path: str | Path, xys: list[np.ndarray], width: int, height: int, info=None
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`measure` for each person's keypoints (N, K, 2) in ``xys``, decoding the video
    once for all of them."""
    from posecli.video import iter_frames
    return background_shifts(iter_frames(path, info),
                             [person_boxes(xy, width, height) for xy in xys])
