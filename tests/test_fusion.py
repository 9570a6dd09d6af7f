"""BlazePose's world landmarks carried beside the 2D, and the fusion of the lifter's 3D with them
(posecli.lifter.fusion), on the shipped example (CMU 07_05: a subject the lifter and the fusion
never saw)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from posecli import pipeline
from posecli.export.json import write
from posecli.keypoints import read_keypoints, read_result
from posecli.lifter import fusion as fu
from posecli.weights import WeightsError, load_manifest, sha256

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "walk_07_05.mp4"
SHARED14 = [0, 1, 2, 3, 4, 5, 6, 8, 11, 12, 13, 14, 15, 16]


def p1_mm(pose: np.ndarray, gt: np.ndarray) -> float:
    p, g = pose[:, SHARED14] - pose[:, :1], gt[:, SHARED14] - gt[:, :1]
    return float(np.linalg.norm(p - g, axis=-1).mean() * 1e3)


@pytest.fixture(scope="module")
def lifted(tmp_path_factory):
    """The example lifted the default way, and its result JSON."""
    res = pipeline.lift(EXAMPLE)
    path = tmp_path_factory.mktemp("fusion") / "walk.json"
    write(res, path)
    return res, path


@pytest.fixture(scope="module")
def truth():
    with np.load(EXAMPLE.with_name("walk_07_05.truth.npz")) as t:
        return t["joints3d_cam"]


def test_world_landmarks_are_in_a_lifted_result(lifted):
    res, _ = lifted
    w = res.landmarks_world
    assert w is not None and w.shape == (res.num_frames, 33, 3)
    assert np.isfinite(w).all()  # the person is seen in every frame of the example
    hips = (w[:, 23] + w[:, 24]) / 2
    assert np.abs(hips).max() < 0.05          # hip-centred
    assert (w[:, 0, 1] < w[:, 27, 1]).all()   # y down: the nose above the ankle, upright walker
    thigh = np.median(np.linalg.norm(w[:, 23] - w[:, 25], axis=-1))
    assert 0.3 < thigh < 0.6                  # metres
    assert res.landmarks_visibility.shape == (res.num_frames, 33)
    assert res.lifter["fusion"]["name"] != "off"
    assert res.lifter["fusion"]["sha256"] == load_manifest()["fusion.npz"]["sha256"]


def test_world_landmarks_are_rotated_back_from_the_crop():
    """The same frame turned by 90 degrees gives the same body turned by 90 degrees."""
    from posecli.detect2d import create_detector
    from posecli.video import VideoReader, probe

    frame = next(iter(VideoReader(EXAMPLE, probe(EXAMPLE))))
    det = create_detector("blazepose-full")
    a = det(frame).world
    det.reset()
    b = det(np.ascontiguousarray(np.rot90(frame, k=-1))).world  # turned clockwise on screen
    # clockwise on screen (y down): a direction (x, y) becomes (-y, x)
    turned = np.stack([-a[:, 1], a[:, 0], a[:, 2]], -1)
    err = np.linalg.norm(b - turned, axis=-1)[11:].mean()       # body landmarks
    unturned = np.linalg.norm(b - a, axis=-1)[11:].mean()
    assert err < 0.06 and err < 0.25 * unturned


def test_keypoint_file_round_trip_keeps_world_landmarks(lifted):
    res, path = lifted
    doc = json.loads(path.read_text())
    assert len(doc["frames"][0]["landmarks_world"]) == 33
    kp = read_keypoints(path)
    assert np.abs(kp.world - res.landmarks_world).max() < 1e-4
    assert np.abs(kp.visibility - res.landmarks_visibility).max() < 1e-3
    back = read_result(path)
    assert np.abs(back.landmarks_world - res.landmarks_world).max() < 1e-4
    # lifted again from the file: the same fusion, the same 3D. Foot locking is off on both
    # sides: it works in the world, whose path the video route also corrects for the camera's
    # pan (measured from the frames, which a keypoint file does not have).
    again = pipeline.lift(path, foot_lock=False)
    direct = pipeline.lift(EXAMPLE, foot_lock=False)
    assert again.lifter["fusion"]["name"] == res.lifter["fusion"]["name"]
    assert np.abs(again.pose3d - direct.pose3d).max() < 2e-3


def test_keypoint_file_without_world_landmarks_uses_the_pure_lifter(lifted, tmp_path):
    _, path = lifted
    doc = json.loads(path.read_text())
    for f in doc["frames"]:
        f.pop("landmarks_world"), f.pop("landmarks_visibility")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(doc))
    res = pipeline.lift(bare)
    assert res.lifter["fusion"]["name"] == "off"
    assert "no BlazePose world landmarks" in res.lifter["fusion"]["reason"]
    assert res.landmarks_world is None
    off = pipeline.lift(path, fusion="off")
    assert np.abs(res.pose3d - off.pose3d).max() < 1e-9


def test_fusion_off_is_the_pure_lifter(lifted):
    _, path = lifted
    kp = read_keypoints(path)
    xy, conf = pipeline.to_h36m(kp.xy, kp.conf, kp.layout)
    pure = pipeline.lift_keypoints(xy, conf, kp.width, kp.height, kp.fps, valid=kp.valid,
                                   times=kp.times, fusion=None)  # no world landmarks given
    off = pipeline.lift(path, fusion="off")
    assert off.lifter["fusion"] == {"name": "off"}
    assert np.allclose(off.pose3d, pure.pose3d, atol=1e-5)  # (runtimes differ by float noise)


def test_fusion_improves_p1_on_the_held_out_example(lifted, truth):
    _, path = lifted
    fused, off = pipeline.lift(path), pipeline.lift(path, fusion="off")
    n = min(len(truth), fused.num_frames)
    a, b = p1_mm(fused.pose3d[:n], truth[:n]), p1_mm(off.pose3d[:n], truth[:n])
    assert a < b - 5.0, (a, b)


def test_fusion_weights_are_verified(tmp_path):
    f = fu.load_fusion()
    assert f.info["sha256"] == sha256(REPO / "weights" / "fusion.npz")
    bad = tmp_path / "fusion.npz"  # same name as the shipped file: checked against its entry
    shutil.copy(REPO / "weights" / "fusion.npz", bad)
    with open(bad, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(WeightsError, match="checksum mismatch"):
        fu.load_fusion(bad)


def test_fusion_keeps_the_lifter_where_blazepose_saw_nothing():
    rng = np.random.default_rng(0)
    lifted = rng.normal(size=(40, 17, 3)) * 0.3
    lifted -= lifted[:, :1]
    world = lifted + rng.normal(size=lifted.shape) * 0.05
    has = np.ones(40, bool)
    has[10:20] = False
    f = fu.Fusion({"kind": "weights", "smooth_sigma": 0.0, "scale": "none"},
                  {"w": np.full((17, 3), 0.5)})
    out = f(lifted, world, np.ones((40, 17)), np.zeros((40, 17)), has)
    assert np.allclose(out[10:20], lifted[10:20])
    mid = (lifted + world) / 2
    assert np.allclose(out[:10], mid[:10] - mid[:10, :1])


def test_temporal_network_is_a_replicate_padded_convolution():
    """The numpy network equals a direct sum (the training side checks it against torch)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 12))
    w, b = rng.normal(size=(4, 3, 3)), rng.normal(size=4)
    out = fu.conv1d(x, w, b, dilation=2)
    xp = x[..., np.clip(np.arange(-2, 14), 0, 11)]
    want = np.stack([sum(w[:, :, k] @ xp[i, :, t + 2 * k] for k in range(3)) + b
                     for i in range(2) for t in range(12)]).reshape(2, 12, 4).transpose(0, 2, 1)
    assert np.allclose(out, want)
