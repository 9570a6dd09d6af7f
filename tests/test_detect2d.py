"""Tests of the BlazePose 2D detector (posecli.detect2d)."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from posecli import weights
from posecli.detect2d import Detection, Detector, available_detectors, create_detector
from posecli.detect2d import blazepose as bp
from posecli.detect2d import boxes as bx
from posecli.detect2d import crops, solution

DEMO = "videos/mmh3d_single_person_demo.mp4"


def _shared_data() -> Path | None:
    from posecli.files import shared_data_dir
    d = shared_data_dir()
    return d if d.is_dir() else None


@pytest.fixture(scope="module")
def detector():
    return create_detector("blazepose-full", threads=2)


@pytest.fixture(scope="module")
def demo_run(detector):
    """(frames, detections, detector-ran flags) for the shared single-person demo video."""
    d = _shared_data()
    if d is None or not (d / DEMO).is_file():
        pytest.skip("shared demo video not found (set POSECLI_SHARED_DATA)")
    from posecli.video import iter_frames

    detector.reset()
    frames, dets, detected = [], [], []
    for frame in iter_frames(d / DEMO):
        frames.append(frame)
        dets.append(detector(frame))
        detected.append(detector.last_timing["detect"] > 0)
    return frames, dets, detected


# --- pure functions ------------------------------------------------------------------------

def test_anchors_count_and_layout():
    a = bx.ssd_anchors(**bp.ANCHOR_OPTIONS)
    assert a.shape == (bp.NUM_ANCHORS, 4) == (2254, 4)
    assert np.allclose(a[:, 2:], 1.0)                       # fixed anchor size
    assert np.allclose(a[0, :2], [0.5 / 28, 0.5 / 28])      # first cell of the stride-8 map
    assert np.allclose(a[1, :2], a[0, :2])                  # two anchors per location
    assert np.allclose(a[2, :2], [1.5 / 28, 0.5 / 28])
    assert np.allclose(a[28 * 28 * 2, :2], [0.5 / 14, 0.5 / 14])
    assert np.allclose(a[-1, :2], [6.5 / 7, 6.5 / 7])       # 6 anchors per 7x7 cell at the end
    assert np.allclose(a[-6:, :2], a[-1, :2])
    assert (a[:, :2] > 0).all() and (a[:, :2] < 1).all()
    free = bx.ssd_anchors(**{**bp.ANCHOR_OPTIONS, "fixed_anchor_size": False})
    assert np.isclose(free[0, 2], 0.1484375)


def test_decode_detections():
    anchors = bx.ssd_anchors(**bp.ANCHOR_OPTIONS)
    raw = np.zeros((len(anchors), 12), np.float32)
    raw[5] = [22.4, -11.2, 44.8, 22.4, 0, 0, 22.4, 0, 0, 0, 0, 0]
    scores = np.full(len(anchors), -200.0)
    scores[5] = 2.0
    boxes, kps, s = bx.decode_detections(raw, scores, anchors)
    assert boxes.shape == (2254, 4) and kps.shape == (2254, 4, 2) and s.shape == (2254,)
    ax, ay = anchors[5, :2]
    assert np.allclose(boxes[5], [ax + 0.1 - 0.1, ay - 0.05 - 0.05, ax + 0.1 + 0.1, ay - 0.05 + 0.05])
    assert np.allclose(kps[5, 0], [ax, ay]) and np.allclose(kps[5, 1], [ax + 0.1, ay])
    assert np.isclose(s[5], 1 / (1 + math.exp(-2)))
    assert np.isclose(s[0], 1 / (1 + math.exp(100)))       # clipped at -100


def test_nms_on_hand_made_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9.0]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    keep = bx.nms(boxes, scores, 0.3)
    assert keep.tolist() == [3, 2]
    assert bx.nms(boxes, scores, 0.99).tolist() == [3, 0, 1, 2]
    assert np.allclose(bx.iou(boxes[0], boxes[[0, 2]]), [1, 0])
    b, s, e = bx.weighted_nms(boxes, scores, np.arange(8.0).reshape(4, 2), 0.3)
    assert np.allclose(s, [0.95, 0.7])
    w = scores[[3, 0, 1]]
    assert np.allclose(b[0], (boxes[[3, 0, 1]] * w[:, None]).sum(0) / w.sum())
    assert np.allclose(b[1], boxes[2]) and np.allclose(e[1], [4, 5])
    assert e.shape == (2, 2)


def test_roi_from_points_orientation():
    up = crops.roi_from_points(np.array([100.0, 200]), np.array([100.0, 100]))
    assert np.isclose(up.angle, 0) and np.isclose(up.size, 2 * 100 * 1.25)
    right = crops.roi_from_points(np.array([100.0, 200]), np.array([180.0, 200]))
    assert np.isclose(right.angle, math.pi / 2)
    # the crop's "up" (towards its top edge) points to the scale point in the frame
    top = crops.crop_to_image(np.array([128.0, 0.0]), right, 256)
    assert np.allclose(top, [100 + right.size / 2, 200])


@pytest.mark.parametrize("roi", [crops.Roi(300.0, 200.0, 180.0, 0.4),
                                 crops.Roi(330.0, 210.0, 900.0, -2.5)])  # 900: the shrink path
def test_roi_round_trip(roi):
    pts = np.random.default_rng(0).uniform(0, 256, (20, 2))
    assert np.allclose(crops.image_to_crop(crops.crop_to_image(pts, roi, 256), roi, 256), pts)
    # a bright blob in the frame shows up in the crop where image_to_crop says
    frame = np.zeros((480, 640, 3), np.uint8)
    target = np.array([310.0, 170.0])
    r = 3 if roi.size < 300 else 12
    frame[int(target[1]) - r:int(target[1]) + r, int(target[0]) - r:int(target[0]) + r] = 255
    crop = crops.warp_roi(frame, roi, 256).astype(float)[..., 0]
    ys, xs = np.nonzero(crop > 0)
    w = crop[ys, xs]
    found = np.array([(xs * w).sum() / w.sum() + 0.5, (ys * w).sum() / w.sum() + 0.5])
    back = crops.crop_to_image(found, roi, 256)
    assert np.linalg.norm(back - target) < 0.02 * roi.size


def test_refine_from_heatmap_moves_towards_peak():
    hm = np.full((64, 64, 2), -10.0)
    hm[20, 30, 0] = 10.0                                   # one confident cell
    xy = np.array([[31.5 / 64, 21.5 / 64], [0.5, 0.5]])
    out = bp.refine_from_heatmap(xy, hm)
    assert np.allclose(out[0], [30 / 64, 20 / 64], atol=1e-3)
    assert np.allclose(out[1], xy[1])                      # nothing confident: unchanged


# --- the detector --------------------------------------------------------------------------

def test_interface(detector):
    assert isinstance(detector, Detector)
    assert detector.name == "blazepose-full" and detector.layout == "blazepose33"
    assert available_detectors()[:2] == ["blazepose-lite", "blazepose-full"]
    assert "blazepose-heavy" in available_detectors()


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown detector"):
        create_detector("openpose")


def test_blank_frame_gives_none(detector):
    detector.reset()
    assert detector(np.zeros((480, 640, 3), np.uint8)) is None
    assert detector(np.full((360, 640, 3), 200, np.uint8)) is None


def test_bad_frame_is_refused(detector):
    with pytest.raises(ValueError):
        detector(np.zeros((48, 64), np.uint8))
    with pytest.raises(ValueError):
        detector(np.zeros((48, 64, 3), np.float32))


def test_corrupt_model_is_refused(tmp_path, monkeypatch):
    src = weights.find("pose_detection.tflite")
    bad = tmp_path / "pose_detection.tflite"
    shutil.copy(src, bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("POSECLI_WEIGHTS", str(tmp_path))
    assert weights.find("pose_detection.tflite") == bad
    with pytest.raises(weights.WeightsError, match="checksum"):
        create_detector("blazepose-full")


def test_missing_heavy_model_says_how_to_get_it(tmp_path, monkeypatch):
    if any((d / "pose_landmark_heavy.tflite").is_file() for d in weights.search_dirs()):
        monkeypatch.setenv("POSECLI_CACHE", str(tmp_path / "empty"))
        monkeypatch.delenv("POSECLI_WEIGHTS", raising=False)
        if (weights.REPO_WEIGHTS / "pose_landmark_heavy.tflite").is_file():
            pytest.skip("heavy model present in the repository weights folder")
    with pytest.raises(weights.WeightsError) as e:
        create_detector("blazepose-heavy")
    msg = str(e.value)
    assert "\n" not in msg and "download_model" in msg


def test_demo_video_person_found_and_plausible(demo_run):
    frames, dets, detected = demo_run
    h, w = frames[0].shape[:2]
    found = [d for d in dets if d is not None]
    assert len(found) >= 0.9 * len(frames)
    assert sum(detected) <= 3                              # tracking, not re-detecting each frame
    for d in found:
        assert isinstance(d, Detection)
        assert d.xy.shape == (33, 2) and d.conf.shape == (33,)
        assert d.xy.dtype == np.float64
        assert 0.5 <= d.score <= 1 and ((d.conf >= 0) & (d.conf <= 1)).all()
        body = d.xy[[0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]]
        assert (body[:, 0] >= 0).all() and (body[:, 0] < w).all()
        assert (body[:, 1] >= 0).all() and (body[:, 1] < h).all()
        xy = d.xy
        assert xy[[11, 12], 1].mean() < xy[[23, 24], 1].mean()       # shoulders above hips
        assert xy[[7, 8], 1].mean() < xy[[23, 24], 1].mean()         # ears above hips (he bends)
        assert xy[[23, 24], 1].mean() < xy[[27, 28], 1].mean()       # hips above ankles
        seg = lambda a, b: np.linalg.norm(xy[a] - xy[b])
        thigh, shin = seg(23, 25) / seg(24, 26), seg(25, 27) / seg(26, 28)
        assert 0.6 < thigh < 1.6 and 0.6 < shin < 1.6
        height = xy[:, 1].max() - xy[:, 1].min()
        assert 0.3 * h < height < 1.0 * h                  # the man fills most of the portrait frame
        assert 0.15 < max(seg(23, 25), seg(24, 26)) / height < 0.45  # thigh vs body height


def test_demo_keypoints_lie_on_the_person(demo_run):
    """The person is darker-clothed than the pale pavement: the hips and knees sit on pixels
    that differ from the frame's median colour, and the ankles are near the bottom third."""
    frames, dets, _ = demo_run
    i = next(i for i, d in enumerate(dets) if d is not None)
    frame, d = frames[i], dets[i]
    median = np.median(frame.reshape(-1, 3), axis=0)
    for k in (23, 24, 25, 26):
        x, y = d.xy[k].astype(int)
        patch = frame[y - 5:y + 5, x - 5:x + 5].reshape(-1, 3).astype(float)
        assert np.abs(patch.mean(0) - median).sum() > 30
    assert d.xy[[27, 28], 1].mean() > frame.shape[0] * 0.55


def test_reset_forgets_tracking(detector, demo_run):
    frames, _, _ = demo_run
    detector.reset()
    detector(frames[0])
    assert detector.last_timing["detect"] > 0
    detector(frames[1])
    assert detector.last_timing["detect"] == 0              # tracked from the landmarks
    detector.reset()
    detector(frames[2])
    assert detector.last_timing["detect"] > 0


def test_download_model_offline(tmp_path, monkeypatch):
    """download_model extracts the right member and refuses a file with the wrong checksum
    (the network is replaced by a local tarball)."""
    import hashlib
    import io
    import tarfile

    payload = b"not really a model"
    tgz = tmp_path / "pkg.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("package/pose_landmark_heavy.tflite")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    # the network is a file:// URL: the same urllib path as https, with no server
    monkeypatch.setitem(bp.DOWNLOADABLE, "pose_landmark_heavy.tflite",
                        (tgz.as_uri(), "package/pose_landmark_heavy.tflite"))
    good = {"pose_landmark_heavy.tflite": {"sha256": hashlib.sha256(payload).hexdigest()}}
    monkeypatch.setattr(weights, "load_manifest", lambda: good)
    out = bp.download_model("blazepose-heavy", dest=tmp_path / "cache")
    assert out == tmp_path / "cache" / "pose_landmark_heavy.tflite" and out.read_bytes() == payload
    monkeypatch.setattr(weights, "load_manifest", lambda: {"pose_landmark_heavy.tflite": {"sha256": "0" * 64}})
    with pytest.raises(weights.WeightsError, match="checksum"):
        bp.download_model("blazepose-heavy", dest=tmp_path / "cache2")
    assert not (tmp_path / "cache2" / "pose_landmark_heavy.tflite").exists()
    with pytest.raises(ValueError):
        bp.download_model("blazepose-full")


def test_unreadable_user_model_is_refused(tmp_path):
    junk = tmp_path / "my_landmarks.tflite"        # not in the manifest: no checksum to check
    junk.write_bytes(b"TFL3" + bytes(200))
    with pytest.raises(weights.WeightsError, match="not a usable TFLite model"):
        solution.BlazePose("blazepose-full", landmark_file=junk)


def test_person_leaves_and_returns(detector, demo_run):
    frames, _, _ = demo_run
    detector.reset()
    assert detector(frames[0]) is not None
    assert detector(np.zeros_like(frames[0])) is None      # tracking fails, re-detection finds nobody
    assert detector.last_timing["detect"] > 0
    assert detector(frames[1]) is not None                 # found again by the detector
    assert detector.last_timing["detect"] > 0
