import numpy as np
import pytest

from posecli import skeleton as sk

BP = sk.BLAZEPOSE33.names.index  # BlazePose landmark index by name


def test_layout_is_consistent():
    assert len(sk.JOINTS) == len(sk.PARENTS) == 17
    assert sk.PARENTS[0] == -1 and all(p < j for j, p in enumerate(sk.PARENTS) if j)
    perm = sk.flip_permutation()
    assert sorted(perm) == list(range(17)) and (perm[perm] == np.arange(17)).all()
    for l, r in zip(sk.LEFT, sk.RIGHT):
        assert sk.JOINTS[l].replace("l_", "") == sk.JOINTS[r].replace("r_", "")


def test_blazepose_mapping_direct_and_synthesised_joints():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (4, 33, 2))
    conf = rng.uniform(0.5, 1, (4, 33))
    out, c = sk.blazepose_to_h36m(xy, conf)
    assert out.shape == (4, 17, 2) and c.shape == (4, 17)
    np.testing.assert_allclose(out[:, sk.JOINTS.index("r_knee")], xy[:, BP("r_knee")])
    np.testing.assert_allclose(out[:, sk.JOINTS.index("l_wrist")], xy[:, BP("l_wrist")])
    np.testing.assert_allclose(out[:, 0], (xy[:, BP("l_hip")] + xy[:, BP("r_hip")]) / 2)
    np.testing.assert_allclose(out[:, 8], (xy[:, BP("l_shoulder")] + xy[:, BP("r_shoulder")]) / 2)
    np.testing.assert_allclose(out[:, 7], (out[:, 0] + out[:, 8]) / 2)
    # a synthesised joint is no more confident than its least confident source
    assert (c[:, 0] == np.minimum(conf[:, BP("l_hip")], conf[:, BP("r_hip")])).all()


def test_head_is_above_neck_for_an_upright_face():
    xy = np.zeros((33, 2))
    xy[[BP("l_shoulder"), BP("r_shoulder")]] = [[120, 200], [80, 200]]
    xy[[BP("l_ear"), BP("r_ear")]] = [[110, 120], [90, 120]]
    xy[[BP("l_eye"), BP("r_eye")]] = [[105, 115], [95, 115]]
    xy[[BP("mouth_l"), BP("mouth_r")]] = [[104, 130], [96, 130]]
    out, _ = sk.blazepose_to_h36m(xy, np.ones(33))
    head, neck, thorax = out[10, 1], out[9, 1], out[8, 1]
    assert head < neck < thorax  # y grows downwards


def test_normalisation_round_trip_and_range():
    xy = np.array([[0, 0], [640, 480], [320, 240]], float)
    n = sk.normalize_to_frame(xy, 640, 480)
    np.testing.assert_allclose(n[0], [-1, -0.75])
    np.testing.assert_allclose(n[1], [1, 0.75])
    np.testing.assert_allclose(n[2], [0, 0], atol=1e-7)
    np.testing.assert_allclose(sk.denormalize_from_frame(n, 640, 480), xy, atol=1e-4)


def test_fill_gaps_interpolates_short_and_flags_long_gaps():
    n = 30
    t = np.arange(n, dtype=float)
    xy = np.repeat(np.stack([t, 2 * t], -1)[:, None], 17, axis=1)
    conf = np.ones((n, 17))
    valid = np.ones(n, bool)
    valid[5:8] = False       # short gap: 3 frames
    valid[12:25] = False     # long gap: 13 frames
    valid[:2] = False        # before the first detection
    out, c, flags = sk.fill_gaps(np.where(valid[:, None, None], xy, 0), conf, valid, max_gap=5)
    np.testing.assert_allclose(out[5:8], xy[5:8])  # linear motion is recovered exactly
    assert list(flags[5:8]) == ["interpolated"] * 3
    assert set(flags[12:25]) == {"missing"} and set(flags[:2]) == {"missing"}
    assert flags[10] == "detected"
    assert (c[5:8] == 0).all() and (c[10] == 1).all()
    assert np.isfinite(out).all()


def test_fill_gaps_replaces_low_confidence_joints():
    xy = np.zeros((5, 17, 2))
    xy[:, 3] = [[0, 0], [1, 1], [99, 99], [3, 3], [4, 4]]
    conf = np.ones((5, 17))
    conf[2, 3] = 0.05
    out, c, flags = sk.fill_gaps(xy, conf, np.ones(5, bool), max_gap=3)
    np.testing.assert_allclose(out[2, 3], [2, 2])
    assert c[2, 3] == 0 and (flags == "detected").all()


def test_fill_gaps_without_any_detection_raises():
    with pytest.raises(ValueError):
        sk.fill_gaps(np.zeros((3, 17, 2)), np.zeros((3, 17)), np.zeros(3, bool), 2)


def test_fixed_bone_lengths_keep_directions():
    rng = np.random.default_rng(3)
    pose = rng.normal(scale=0.3, size=(20, 17, 3))
    pose -= pose[:, :1]
    lengths = sk.symmetric_bone_lengths(pose)
    for l, r in zip(sk.LEFT, sk.RIGHT):
        assert lengths[l - 1] == lengths[r - 1]
    out = sk.fix_bone_lengths(pose, lengths)
    np.testing.assert_allclose(sk.bone_lengths(out), np.broadcast_to(lengths, (20, 16)), rtol=1e-9)
    child, parent = np.arange(1, 17), np.array(sk.PARENTS[1:])
    d_in = pose[:, child] - pose[:, parent]
    d_out = out[:, child] - out[:, parent]
    cos = (d_in * d_out).sum(-1) / np.linalg.norm(d_in, axis=-1) / np.linalg.norm(d_out, axis=-1)
    np.testing.assert_allclose(cos, 1, atol=1e-9)
