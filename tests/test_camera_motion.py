"""Camera motion from the background: a pan is measured, a static camera is not flagged, the
person's own movement is ignored, and the path is corrected on the panning example."""
from __future__ import annotations

import numpy as np

from posecli import camera_motion, trajectory


def _frames(n: int, step: tuple[float, float], size=(240, 320)):
    """A textured background moving by ``step`` px a frame, and a 'person' (bright noise that
    changes every frame) in a box at the centre; the boxes to ignore."""
    import cv2
    rng = np.random.default_rng(0)
    h, w = size
    big = (rng.random((h * 3, w * 3)) * 255).astype(np.uint8)
    big = cv2.GaussianBlur(big, (0, 0), 2.0)
    frames, boxes = [], []
    for i in range(n):
        m = np.float32([[1, 0, -w + step[0] * i], [0, 1, -h + step[1] * i]])
        g = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR)
        box = (w // 2 - 30, h // 2 - 60, w // 2 + 30, h // 2 + 60)
        g[box[1]:box[3], box[0]:box[2]] = (rng.random((120, 60)) * 255).astype(np.uint8)
        frames.append(np.repeat(g[..., None], 3, axis=2))
        boxes.append(box)
    return frames, np.array(boxes, float)


def test_a_pan_is_measured_and_a_still_camera_is_not():
    frames, boxes = _frames(20, (-3.0, 1.0))
    shift, measured = camera_motion.background_shift(frames, boxes)
    assert measured.all()
    np.testing.assert_allclose(shift[-1], [-3.0 * 19, 1.0 * 19], atol=1.5)
    rep = camera_motion.report(shift, measured, 320, 320.0)
    assert rep["camera_motion"] > camera_motion.MOVING_SHARE
    frames, boxes = _frames(20, (0.0, 0.0))
    shift, measured = camera_motion.background_shift(frames, boxes)
    assert np.abs(shift).max() < 0.5
    assert camera_motion.report(shift, measured, 320, 320.0)["camera_motion"] <= camera_motion.MOVING_SHARE


def test_rotations_turn_with_the_camera():
    # the background moved left by f (45 degrees at focal f): the camera turned right, so a
    # point straight ahead now was 45 degrees to the right in the first frame's axes
    r = trajectory.pan_rotations(np.array([[0.0, 0.0], [-500.0, 0.0]]), 500.0)
    np.testing.assert_allclose(r[0], np.eye(3), atol=1e-12)
    ahead = r[1] @ np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(ahead, [np.sqrt(0.5), 0.0, np.sqrt(0.5)], atol=1e-9)


def test_person_boxes_cover_the_keypoints_and_skip_empty_frames():
    xy = np.full((3, 4, 2), np.nan)
    xy[0] = [[100, 100], [140, 100], [120, 200], [110, 220]]
    boxes = camera_motion.person_boxes(xy, 640, 480)
    assert boxes[0, 0] < 100 and boxes[0, 2] > 140 and boxes[0, 1] < 100 and boxes[0, 3] > 220
    np.testing.assert_allclose(boxes[1], [0, 0, 640, 480])
