"""Root trajectory, floor, world frame, contacts, bone plausibility and the quality report."""
from __future__ import annotations

import numpy as np
import pytest

from export_helpers import REPO, truth_result
from posecli import quality, skeleton, trajectory


@pytest.fixture(scope="module")
def truth():
    with np.load(REPO / "examples" / "walk_07_05.truth.npz") as t:
        return {k: t[k] for k in t.files}


def test_root_translation_recovers_the_true_pelvis(truth):
    cam = truth["joints3d_cam"]
    t = trajectory.root_translation(cam - cam[:, :1], truth["joints2d"], np.ones(cam.shape[:2]),
                                    640, 480, float(truth["K"][0, 0]))
    assert np.abs(t - cam[:, 0]).max() < 1e-6  # metres: exact with true 2D, 3D and focal


def test_world_frame_floor_and_contacts_on_the_truth(truth):
    res = truth_result()
    w = res.trajectory.world
    # true world (the rendering camera pans: p_cam = R p_world + t per frame); floor at Y = 0
    cam, r, tt = truth["joints3d_cam"], truth["cam_R"], truth["cam_t"]
    true_world = np.einsum("nji,nkj->nki", r, cam - tt[:, None])
    # the rendering camera pans to follow the walker and its pitch changes by ~4 degrees over
    # the clip, so a static-camera floor cannot match every frame: loose bounds
    assert np.abs(w[:, 0, 1] - true_world[:, 0, 1]).mean() < 0.05  # pelvis height above floor, m
    up_true = r[:, :, 1].mean(axis=0)
    angle = np.degrees(np.arccos(res.trajectory.rotation[1] @ up_true / np.linalg.norm(up_true)))
    assert angle < 8.0  # measured 6.4
    rot = res.trajectory.rotation
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    assert np.allclose(w[0, 0, [0, 2]], 0)  # origin under the first pelvis
    c_true = trajectory.foot_contacts(true_world, 30.0, height=0.15, speed=0.5, smooth_s=0)
    c = res.trajectory.contacts
    tp = (c & c_true).sum()
    # measured precision 0.59, recall 0.86: a planted foot moves in the frame of a panning camera
    assert tp / c.sum() > 0.5 and tp / c_true.sum() > 0.75


def test_a_jump_stays_a_jump(truth):
    cam = truth["joints3d_cam"].copy()
    f = truth["K"][0, 0]
    n = len(cam)
    lift = np.zeros(n)
    lift[60:70] = 0.3 * np.sin(np.linspace(0, np.pi, 10))  # 0.3 m jump, in camera -y
    cam[:, :, 1] -= lift[:, None]
    kp = cam[..., :2] / cam[..., 2:] * f + np.array([320, 240])
    flags = np.array([skeleton.DETECTED] * n, dtype=object)
    t = trajectory.estimate(cam - cam[:, :1], kp, np.ones((n, 17)), flags, 640, 480, 30.0, focal=f,
                            smooth_s=(0, 0, 0))
    h = t.world[:, 0, 1]
    base = np.median(h[40:55])
    assert h[64:66].max() - base > 0.25  # the floor is not rebased per frame


def test_plausible_bone_lengths_clamp_and_keep_the_limb():
    lengths = np.full(16, 0.2)
    lengths[[1, 4]] = 0.37   # thighs
    lengths[[2, 5]] = 0.48   # shins: ratio 1.30, as measured on real videos
    out, rep = trajectory.plausible_bone_lengths(lengths)
    assert rep["shin_thigh"][0] == pytest.approx(1.2973, abs=1e-3)
    assert out[2] / out[1] == pytest.approx(trajectory.SHIN_THIGH_RANGE[1])
    assert out[1] + out[2] == pytest.approx(0.85)
    assert out[4] == out[1] and out[5] == out[2]
    ok = lengths.copy()
    ok[[2, 5]] = 0.38
    ok[[12, 15]] = 0.18  # forearm / upper arm 0.9
    assert np.allclose(trajectory.plausible_bone_lengths(ok)[0], ok)


def test_symmetric_hips(truth):
    cam = truth["joints3d_cam"].copy()
    cam[:, 0] += 0.01  # pelvis off mid-hips by 1 cm
    p = trajectory.symmetric_hips(cam)
    assert np.allclose(p[:, 0], (p[:, 1] + p[:, 4]) / 2)
    # legs move rigidly with their hip; the rest stays
    b0, b1 = skeleton.bone_lengths(cam), skeleton.bone_lengths(p)
    assert np.allclose(b0[:, [1, 2, 4, 5]], b1[:, [1, 2, 4, 5]])
    assert np.allclose(p[:, 7:], cam[:, 7:])


def test_quality_report_on_the_truth():
    res = truth_result()
    q = quality.report(res, res.pose3d)
    assert q["detected"] == 1.0 and q["missing"] == 0.0
    assert q["bone_drift"] < 1e-9
    assert 0 < q["jitter_ms2"] < quality.THRESHOLDS["jitter_ms2"]
    assert q["foot_slide_mm"] < quality.THRESHOLDS["foot_slide_mm"]
    assert q["warnings"] == []
    assert quality.one_line(q).startswith("quality: detected 100%")


def test_flip_disagreement_is_measured_by_the_runtime():
    from posecli.lifter.runtime import Lifter
    from posecli.skeleton import layout_for

    def equivariant(x):  # lifts x to (x, y, 0): mirroring commutes with it
        return np.concatenate([x, np.zeros(x.shape[:-1] + (1,), np.float32)], axis=-1)

    def biased(x):  # always leans to +x: disagrees with its mirror by 2 * 0.05 m
        out = equivariant(x)
        out[..., 0] += 0.05
        return out

    x = np.random.default_rng(0).normal(size=(40, 17, 2)).astype(np.float32)
    for fn, expected in ((equivariant, 0.0), (biased, 0.1)):
        lifter = Lifter(fn, 9, layout_for(17), flip=True)
        lifter(x)
        assert lifter.flip_disagreement() == pytest.approx(expected, abs=1e-6)
        assert lifter.flip_disagreement() is None  # reset after reading
