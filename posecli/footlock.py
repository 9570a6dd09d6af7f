"""Foot locking: a foot in contact with the floor stays where it was put down.

The world joints (:mod:`posecli.trajectory`) come from a lifted pose placed along a smoothed
root path, so a planted ankle drifts by centimetres a frame. Here each contact (a run of frames
flagged by :func:`posecli.trajectory.foot_contacts`) gets one point on the floor: the ankle's
mean horizontal position over the run, at the flat-foot ankle height. Over the run the ankle is
moved there, with a smooth ramp in and out over :data:`BLEND_S` either side, and each leg is
re-solved with two-bone IK (hip fixed, thigh and shank lengths kept, the knee in the plane it
had, bending forwards; a goal out of reach is approached smoothly). The rest of the body and the
path are untouched: the path comes from the image, and on the rendered example the lifted legs
sweep too little for their stride (following the planted feet instead put the path 1.2 m off);
the IK makes them sweep, which also brings them closer to the truth (P1 124.2 -> 115.7 mm). Small pure numpy functions, world frame (metres,
Y up, floor at Y = 0).
"""
from __future__ import annotations

import numpy as np

from posecli.trajectory import ANKLE_HEIGHT

BLEND_S = 0.15         # seconds to ramp a lock in and out
MIN_BEND_DEG = 15.0    # a leg stretched to its limit by a lock keeps the knee this bent
MIN_CONTACT_S = 0.05   # shorter contacts are not locked (a foot brushing the floor)
LEGS = ((1, 2, 3), (4, 5, 6))  # (hip, knee, ankle), right then left: contacts' column order


def contact_runs(contact: np.ndarray) -> list[tuple[int, int]]:
    """(N,) bool -> [(start, stop)) of every run of True."""
    c = np.concatenate([[False], np.asarray(contact, bool), [False]])
    edges = np.flatnonzero(np.diff(c.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def contact_points(ankle: np.ndarray, contact: np.ndarray, fps: float,
                   min_s: float = MIN_CONTACT_S) -> list[tuple[int, int, np.ndarray]]:
    """The contacts worth locking and where: [(start, stop, point)] for every run of
    ``contact`` (N,) bool at least ``min_s`` long; point (3,): the ankle's (N, 3) mean
    horizontal position over the run, at :data:`~posecli.trajectory.ANKLE_HEIGHT`."""
    return [(a, b, np.array([ankle[a:b, 0].mean(), ANKLE_HEIGHT, ankle[a:b, 2].mean()]))
            for a, b in contact_runs(contact) if b - a >= max(1, round(min_s * fps))]


def lock_targets(ankle: np.ndarray, contact: np.ndarray, fps: float,
                 blend_s: float = BLEND_S, min_s: float = MIN_CONTACT_S,
                 points: list[tuple[int, int, np.ndarray]] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Where each frame's ankle should be and how strongly.

    Args:
        ankle: (N, 3) world metres; contact: (N,) bool; fps: frames per second.
        points: the locked contacts (:func:`contact_points`, the default), e.g. with points a
            live run fixed before the whole contact had arrived.
    Returns:
        target: (N, 3) the locked ankle (the run's point) near each run; weight: (N,) in
        [0, 1]: 1 in a run, a cosine ramp over ``blend_s`` either side, 0 elsewhere (where two
        runs' ramps meet, the nearer run wins).
    """
    n = len(ankle)
    target = np.array(ankle, dtype=np.float64)
    weight = np.zeros(n)
    k = max(1, int(round(blend_s * fps)))
    for a, b, point in (contact_points(ankle, contact, fps, min_s) if points is None else points):
        lo, hi = max(0, a - k), min(n, b + k)
        idx = np.arange(lo, hi)
        dist = np.where(idx < a, a - idx, np.where(idx >= b, idx - b + 1, 0))
        w = 0.5 * (1 + np.cos(np.pi * dist / (k + 1)))
        take = w > weight[idx]
        weight[idx[take]] = w[take]
        target[idx[take]] = point
    return target, weight


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray,
                hint: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Move a leg's ankle to ``target`` with the hip fixed and both bone lengths kept.

    The knee stays in the plane through the hip, the target and the old knee (it bends the way
    it bent; with a ``hint``, the body's forward for a knee, never backwards, and where the old
    leg was straight, on the hint's side). A target out of reach is pulled towards the hip until the leg reaches it with the
    knee bent by :data:`MIN_BEND_DEG`.

    Args:
        hip, knee, ankle, target: (N, 3); hint: (N, 3) or None.
    Returns:
        new knee, new ankle: (N, 3).
    """
    l1 = np.linalg.norm(knee - hip, axis=-1, keepdims=True)
    l2 = np.linalg.norm(ankle - knee, axis=-1, keepdims=True)
    d = target - hip
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    longest = np.sqrt(l1 ** 2 + l2 ** 2 + 2 * l1 * l2 * np.cos(np.radians(MIN_BEND_DEG)))
    # towards the limit the reach saturates smoothly (a hard stop would kink the knee's curve)
    knee_room = 0.06 * longest
    soft = longest - knee_room + knee_room * np.tanh((dist - longest + knee_room) / knee_room)
    reach = np.clip(np.where(dist > longest - knee_room, soft, dist), np.abs(l1 - l2) + 1e-6, longest)
    u = d / np.maximum(dist, 1e-9)

    def across(v):  # the part of v square to the hip -> target line
        return v - (v * u).sum(-1, keepdims=True) * u

    # the knee's side: the old knee's offset from the hip -> target line, and where the old
    # leg was (nearly) straight, the hint's
    pole = across(knee - hip)
    if hint is not None:  # a knee bends forwards: a backward pole is mirrored to the front
        h = _unit(across(hint))
        back = (pole * h).sum(-1, keepdims=True)
        pole = np.where(back < 0, pole - 2 * back * h, pole)
        straight = np.linalg.norm(pole, axis=-1, keepdims=True) < 0.1 * l1
        pole = np.where(straight, pole + 0.1 * l1 * h, pole)
    pn = np.linalg.norm(pole, axis=-1, keepdims=True)
    fallback = across(np.broadcast_to(np.array([0.0, 0.0, 1.0]), pole.shape))
    pole = np.where(pn > 1e-6, pole, fallback)
    pole = _unit(pole)
    along = (l1 ** 2 - l2 ** 2 + reach ** 2) / (2 * reach)   # law of cosines
    side = np.sqrt(np.maximum(l1 ** 2 - along ** 2, 0.0))
    new_knee = hip + u * along + pole * side
    new_ankle = hip + u * reach
    return new_knee, new_ankle


def contact_weights(contacts: np.ndarray, fps: float, blend_s: float = BLEND_S) -> np.ndarray:
    """(N, 2) bool -> (N, 2) weights in [0, 1]: 1 in a contact, a cosine ramp over ``blend_s``
    either side."""
    c = np.asarray(contacts, bool)
    return np.stack([lock_targets(np.zeros((len(c), 3)), c[:, k], fps, blend_s)[1]
                     for k in range(c.shape[1])], axis=1)


def lock_feet(world: np.ndarray, contacts: np.ndarray, fps: float, blend_s: float = BLEND_S,
              points: list | None = None) -> np.ndarray:
    """Pin each foot in contact to the floor (see the module docstring).

    Args:
        world: (N, 17, 3) world joints, metres, Y up, floor at 0.
        contacts: (N, 2) bool, (right, left).
        points: per leg (right, left) its locked contacts (:func:`contact_points`), default
            each run's mean.
    Returns:
        (N, 17, 3): legs re-solved where locked (the path, hips and above as given; every bone
        length kept).
    """
    out = np.array(world, dtype=np.float64)
    goals = []
    points = points or (None, None)
    for (hip, knee, ankle), c, pts in zip(LEGS, np.asarray(contacts, bool).T, points):
        target, w = lock_targets(out[:, ankle], c, fps, blend_s, points=pts)
        goals.append((w > 0, out[:, ankle] + w[:, None] * (target - out[:, ankle])))
    forward = np.cross(out[:, 4] - out[:, 1], np.array([0.0, 1.0, 0.0]))  # hip line x up
    for (hip, knee, ankle), (on, goal) in zip(LEGS, goals):
        if on.any():
            out[on, knee], out[on, ankle] = two_bone_ik(out[on, hip], out[on, knee], out[on, ankle],
                                                        goal[on], forward[on])
    return out


def apply(traj, fps: float):
    """Lock the feet of a :class:`posecli.trajectory.Trajectory`.

    Returns (the trajectory with locked world joints, (N, 17, 3) root-relative camera-frame
    joints consistent with them: world = rotation @ camera + pelvis). A trajectory without
    root motion (the pelvis kept in place) is returned as it is: a body that does not travel
    cannot keep its feet still.
    """
    import dataclasses

    if not traj.root_motion:
        world = np.asarray(traj.world, float)
        return traj, (world - world[:, :1]) @ np.asarray(traj.rotation)
    world = lock_feet(traj.world, traj.contacts, fps)
    pose = (world - world[:, :1]) @ np.asarray(traj.rotation)  # row vectors: R^T v
    return dataclasses.replace(traj, world=world), pose
