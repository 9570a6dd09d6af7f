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

import numpy as np

MAX_SIDE = 320          # px: frames are measured at this size (flow is smooth; speed matters)
MIN_POINTS = 12         # background corners needed to trust a frame pair
LK_WINDOW = (15, 15)    # px: Lucas-Kanade window and pyramid levels (motion up to ~100 px/frame)
LK_LEVELS = 3
REFRESH_FRAMES = 10     # corners are searched afresh at least this often (new background)
MAX_CORNERS = 300       # corners followed at most
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
    motion, boxes = BackgroundMotion(max_side), np.asarray(boxes, float)
    for i, frame in enumerate(frames):
        motion.add(frame, boxes[i:i + 1])
    return motion.result()


class BackgroundMotion:
    """:func:`background_shift` one frame at a time, as the frames are decoded for tracking:
    only the previous frame (shrunk to ``max_side``, grey), its mask and
    the background corners followed into it are kept, so memory does not grow with the video
    and the video is decoded once for tracking and this.

    Corners are followed from pair to pair and found afresh (the costliest step) only every
    :data:`REFRESH_FRAMES` frames or when too few are left, as a pan brings in new background.

    ``total`` is the shift (2,) px since the first frame after the latest frame;
    ``history=False`` keeps only that (a live stream with no end), not :meth:`result`'s rows.
    """

    def __init__(self, max_side: int = MAX_SIDE, history: bool = True) -> None:
        self.max_side, self.history = max_side, history
        self.total = np.zeros(2)
        self._steps: list[np.ndarray] = []
        self._measured: list[bool] = []
        self._prev: tuple | None = None       # (gray, mask) of the previous frame
        self._pts: np.ndarray | None = None   # (P, 1, 2) corners in the previous frame
        self._found = 0                       # corners at the last fresh search
        self._age = 0                         # pairs since then

    def add(self, frame: np.ndarray, boxes: np.ndarray) -> None:
        """Take the next (H, W, 3) uint8 RGB frame and the (M, 4) px boxes (x0, y0, x1, y1) of
        the people in it, whose movement is not the camera's; M = 0 (nobody found, so the
        person could be anywhere) masks the whole frame: that pair is not measured."""
        import cv2

        h, w = frame.shape[:2]
        k = min(1.0, self.max_side / max(h, w))
        # grey first: shrinking one channel is a third of the work
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if k < 1.0:
            gray = cv2.resize(gray, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        mask = np.full(gray.shape, 0 if len(boxes) == 0 else 255, np.uint8)
        for box in np.asarray(boxes, float).reshape(-1, 4):
            x0, y0, x1, y1 = np.round(box * k).astype(int)
            mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 0
        if self._prev is None:
            step, ok = np.zeros(2), True
        else:
            prev_gray, prev_mask = self._prev
            both = prev_mask & mask
            pts = _inside(self._pts, both)
            if (self._age >= REFRESH_FRAMES or len(pts) < max(2 * MIN_POINTS, self._found // 2)):
                found = cv2.goodFeaturesToTrack(prev_gray, maxCorners=MAX_CORNERS,
                                                qualityLevel=0.01, minDistance=6, mask=both)
                pts = np.zeros((0, 1, 2), np.float32) if found is None else found
                self._found, self._age = len(pts), 0
            step, ok, self._pts = _pair_shift(prev_gray, gray, pts)
            self._age += 1
            step = step / k
        self.total = self.total + step
        if self.history:
            self._steps.append(step)
            self._measured.append(ok)
        self._prev = gray, mask

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """shift (N, 2) px since the first frame and measured (N,) bool, as
        :func:`background_shift` returns them."""
        if not self._steps:
            return np.zeros((0, 2)), np.zeros(0, bool)
        return np.cumsum(np.array(self._steps), axis=0), np.array(self._measured)


def _inside(pts: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """The (P, 1, 2) points that fall where ``mask`` is set (and inside it)."""
    if pts is None or len(pts) == 0:
        return np.zeros((0, 1, 2), np.float32)
    xy = np.round(pts.reshape(-1, 2)).astype(int)
    h, w = mask.shape
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    ok[ok] = mask[xy[ok, 1], xy[ok, 0]] > 0
    return pts[ok]


def frame_boxes(xys: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """The (M, 4) px boxes to leave out of one frame's background, one per person found in it
    (``xys``: each person's (K, 2) px keypoints, NaN where unseen)."""
    if not xys:
        return np.zeros((0, 4))
    return person_boxes(np.stack([np.asarray(p, float) for p in xys]), width, height)


def _pair_shift(a: np.ndarray, b: np.ndarray, pts: np.ndarray
                ) -> tuple[np.ndarray, bool, np.ndarray]:
    """Displacement (px at this size) of the image centre's background point from grey frame
    ``a`` to ``b``, from the background corners ``pts`` (P, 1, 2) in ``a``. Returns the displacement ((0, 0), False
    when too few corners agree) and the agreeing corners where they are in the second frame."""
    import cv2

    none = np.zeros((0, 1, 2), np.float32)
    if len(pts) < MIN_POINTS:
        return np.zeros(2), False, none
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None, winSize=LK_WINDOW, maxLevel=LK_LEVELS)
    good = st.ravel() == 1
    if good.sum() < MIN_POINTS:
        return np.zeros(2), False, none
    m, inliers = cv2.estimateAffinePartial2D(pts[good], nxt[good], method=cv2.RANSAC,
                                             ransacReprojThreshold=1.0)
    if m is None or inliers is None or inliers.sum() < MIN_POINTS:
        return np.zeros(2), False, none
    c = np.array([a.shape[1] / 2, a.shape[0] / 2, 1.0])
    return m @ c - c[:2], True, nxt[good][inliers.ravel() == 1]


def report(shift: np.ndarray, measured: np.ndarray, width: int, focal: float) -> dict:
    """The ``camera`` facts for the quality block: ``camera_motion`` (the largest background
    displacement as a share of the image width), the pan and tilt reached (degrees), and the
    share of frame pairs that could be measured."""
    reach = float(np.abs(shift).max(axis=0).max()) if len(shift) else 0.0
    return {"camera_motion": round(reach / max(width, 1), 4),
            "camera_pan_deg": round(float(np.degrees(np.arctan2(np.abs(shift[:, 0]).max(), focal))), 2),
            "camera_tilt_deg": round(float(np.degrees(np.arctan2(np.abs(shift[:, 1]).max(), focal))), 2),
            "camera_measured": round(float(np.mean(measured)), 3)}
