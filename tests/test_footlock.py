"""Foot locking: planted feet stay put, legs keep their lengths and bend the way they bent."""
from __future__ import annotations

import numpy as np

from export_helpers import truth_result
from posecli import footlock, skeleton, trajectory


def _slide(world, contacts):
    step = np.linalg.norm(np.diff(world[:, [3, 6]][..., [0, 2]], axis=0), axis=-1)
    both = contacts[1:] & contacts[:-1]
    return step[both].mean()


def test_two_bone_ik_reaches_keeps_lengths_and_the_knee_plane():
    rng = np.random.default_rng(1)
    hip = np.zeros((50, 3))
    knee = np.array([0.0, -0.45, 0.1]) + 0.02 * rng.normal(size=(50, 3))
    ankle = knee + np.array([0.0, -0.44, -0.12])
    target = 0.85 * ankle + 0.02 * rng.normal(size=(50, 3))  # well within reach
    k2, a2 = footlock.two_bone_ik(hip, knee, ankle, target)
    np.testing.assert_allclose(a2, target, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(k2 - hip, axis=1), np.linalg.norm(knee - hip, axis=1))
    np.testing.assert_allclose(np.linalg.norm(a2 - k2, axis=1), np.linalg.norm(ankle - knee, axis=1))
    # the knee bends forward (+Z) as before
    assert (k2[:, 2] > 0).all()
    far = np.array([[0.0, -2.0, 0.0]] * 50)  # out of reach: towards it, the knee still bent
    k3, a3 = footlock.two_bone_ik(hip, knee, ankle, far, hint=np.array([[0.0, 0.0, 1.0]] * 50))
    bend = np.degrees(np.arccos(((k3 - hip) * (a3 - k3)).sum(1) / np.linalg.norm(k3 - hip, axis=1)
                                / np.linalg.norm(a3 - k3, axis=1)))
    assert np.allclose(bend, footlock.MIN_BEND_DEG, atol=0.5) and (k3[:, 2] > 0).all()
    assert np.allclose(a3[:, [0, 2]], 0, atol=1e-9)
    # a knee bent backwards is solved bending forwards (knees do not hyperextend)
    back = knee * np.array([1.0, 1.0, -1.0])
    k4, _ = footlock.two_bone_ik(hip, back, ankle, target, hint=np.array([[0.0, 0.0, 1.0]] * 50))
    assert (k4[:, 2] > 0).all()


def test_locked_feet_do_not_slide_and_the_pose_keeps_its_shape():
    res = truth_result()
    world = res.trajectory.world
    n = len(world)
    # a root path that disagrees with the stride (a panning camera): the feet skate
    drift = np.zeros((n, 1, 3))
    drift[:, 0, 0] = np.linspace(0, 0.6, n)
    skating = world + drift
    contacts = trajectory.foot_contacts(world, res.fps, height=0.15, speed=0.5, smooth_s=0)
    assert _slide(skating, contacts) > 0.004
    locked = footlock.lock_feet(skating, contacts, res.fps)
    assert _slide(locked, contacts) < 0.004  # metres per frame: the target
    # sole on the floor: ankles in contact at the flat-foot height
    held = footlock.contact_weights(contacts, res.fps) == 1  # runs long enough to lock
    assert held.sum() > 0.8 * contacts.sum()
    ank_y = locked[:, [3, 6], 1][held]
    # (where a leg cannot reach, the foot hangs a little above: the path is not moved for it)
    assert np.median(np.abs(ank_y - trajectory.ANKLE_HEIGHT)) < 0.005
    assert np.abs(ank_y - trajectory.ANKLE_HEIGHT).max() < 0.06
    np.testing.assert_allclose(skeleton.bone_lengths(locked), skeleton.bone_lengths(skating), atol=1e-9)
    # the path and everything above the hips stay as they were
    np.testing.assert_allclose(locked[:, [0, 1, 4] + list(range(7, 17))],
                               skating[:, [0, 1, 4] + list(range(7, 17))], atol=1e-12)
    # and the legs changed little (the lock is a correction, not a new motion)
    assert np.linalg.norm((locked - locked[:, :1]) - (skating - skating[:, :1]), axis=-1).mean() < 0.02


def test_lock_blends_in_and_out():
    contact = np.zeros(40, bool)
    contact[15:25] = True
    ankle = np.zeros((40, 3))
    ankle[:, 0] = np.linspace(0, 0.4, 40)
    target, w = footlock.lock_targets(ankle, contact, fps=30.0)
    assert (w[15:25] == 1).all() and w[0] == 0 and w[-1] == 0
    assert 0 < w[13] < w[14] < 1 and 1 > w[25] > w[26] > 0   # ramps, not steps
    assert np.allclose(target[15:25, 0], ankle[15:25, 0].mean())
