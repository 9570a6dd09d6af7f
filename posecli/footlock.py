"""Foot locking: a foot in contact with the floor stays where it was put down.

The world joints (:mod:`posecli.trajectory`) come from a lifted pose placed along a smoothed
root path, so a planted ankle drifts by centimetres a frame. Here each contact (a run of frames
flagged by :func:`posecli.trajectory.foot_contacts`) gets one point on the floor: the ankle's
mean horizontal position over the run, at the flat-foot ankle height. Over the run the ankle is
moved there, with a smooth ramp in and out over :data:`BLEND_S` either side, and each leg is
re-solved with two-bone IK (hip fixed, thigh and shank lengths kept, the knee in the plane it
had). The rest of the body is untouched. Small pure numpy functions, world frame (metres,
Y up, floor at Y = 0).
"""
from __future__ import annotations

import numpy as np

from posecli.trajectory import ANKLE_HEIGHT

BLEND_S = 0.1          # seconds to ramp a lock in and out
MIN_CONTACT_S = 0.05   # shorter contacts are not locked (a foot brushing the floor)
LEGS = ((1, 2, 3), (4, 5, 6))  # (hip, knee, ankle), right then left: contacts' column order


def contact_runs(contact: np.ndarray) -> list[tuple[int, int]]:
    """(N,) bool -> [(start, stop)) of every run of True."""
    c = np.concatenate([[False], np.asarray(contact, bool), [False]])
    edges = np.flatnonzero(np.diff(c.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


def lock_targets(ankle: np.ndarray, contact: np.ndarray, fps: float,
                 blend_s: float = BLEND_S, min_s: float = MIN_CONTACT_S) -> tuple[np.ndarray, np.ndarray]:
    """Where each frame's ankle should be and how strongly.

    Args:
        ankle: (N, 3) world metres; contact: (N,) bool; fps: frames per second.
    Returns:
        target: (N, 3) the locked ankle (the run's mean horizontal position, at
        :data:`~posecli.trajectory.ANKLE_HEIGHT`) near each run; weight: (N,) in [0, 1]: 1 in
        a run, a cosine ramp over ``blend_s`` either side, 0 elsewhere (where two runs' ramps
        meet, the nearer run wins).
    """
    n = len(ankle)
    target = ankle.copy()
    weight = np.zeros(n)
    k = max(1, int(round(blend_s * fps)))
    for a, b in contact_runs(contact):
        if b - a < max(1, round(min_s * fps)):
            continue
        point = np.array([ankle[a:b, 0].mean(), ANKLE_HEIGHT, ankle[a:b, 2].mean()])
        lo, hi = max(0, a - k), min(n, b + k)
        idx = np.arange(lo, hi)
        dist = np.where(idx < a, a - idx, np.where(idx >= b, idx - b + 1, 0))
        w = 0.5 * (1 + np.cos(np.pi * dist / (k + 1)))
        take = w > weight[idx]
        weight[idx[take]] = w[take]
        target[idx[take]] = point
    return target, weight


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Move a leg's ankle to ``target`` with the hip fixed and both bone lengths kept.

    The knee stays in the plane through the hip, the target and the old knee (it bends the way
    it bent). A target out of reach is pulled towards the hip until the leg reaches it, nearly
    straight.

    Args:
        hip, knee, ankle, target: (N, 3).
    Returns:
        new knee, new ankle: (N, 3).
    """
    l1 = np.linalg.norm(knee - hip, axis=-1, keepdims=True)
    l2 = np.linalg.norm(ankle - knee, axis=-1, keepdims=True)
    d = target - hip
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    reach = np.clip(dist, np.abs(l1 - l2) + 1e-6, (l1 + l2) * 0.9999)
    u = d / np.maximum(dist, 1e-9)
    # the knee's side: the old knee's offset from the hip -> target line
    pole = (knee - hip) - ((knee - hip) * u).sum(-1, keepdims=True) * u
    pn = np.linalg.norm(pole, axis=-1, keepdims=True)
    fallback = np.cross(u, np.array([1.0, 0.0, 0.0]))  # any perpendicular where the leg was straight
    pole = np.where(pn > 1e-6, pole / np.maximum(pn, 1e-9), fallback / np.maximum(
        np.linalg.norm(fallback, axis=-1, keepdims=True), 1e-9))
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


def stance_path(world: np.ndarray, contacts: np.ndarray, fps: float, blend_s: float = BLEND_S
                ) -> np.ndarray:
    """(N, 3) horizontal shift of the whole body per frame that keeps the feet in contact still.

    The root path comes from the 2D track under a static camera and a guessed focal length;
    the lifted legs carry their own stride. Where they disagree (a panning camera, a wrong
    focal length) a planted foot slides. Each frame's shift cancels the horizontal movement of
    the feet in contact (weighted by their contact ramps, averaged over both feet in double
    support); frames without contact keep the path's own movement (a jump, a flight phase).
    The shifts accumulate: the path becomes the feet's own, which moves the body as a whole
    and leaves every root-relative joint (and the accuracy measured on them) unchanged.
    """
    w = contact_weights(contacts, fps, blend_s)
    ank = np.asarray(world, float)[:, [3, 6]]            # (N, 2, 3) right, left
    step = np.diff(ank, axis=0)                          # (N-1, 2, 3)
    wm = np.minimum(w[1:], w[:-1])                        # both ends of the step in contact
    total = wm.sum(axis=1, keepdims=True)
    d = -(wm[..., None] * step).sum(axis=1) / np.maximum(total, 1.0)
    d[:, 1] = 0.0                                        # horizontal only: the floor stays
    return np.concatenate([np.zeros((1, 3)), np.cumsum(d, axis=0)])


def lock_feet(world: np.ndarray, contacts: np.ndarray, fps: float, blend_s: float = BLEND_S
              ) -> np.ndarray:
    """Pin each foot in contact to the floor (see the module docstring).

    Args:
        world: (N, 17, 3) world joints, metres, Y up, floor at 0.
        contacts: (N, 2) bool, (right, left).
    Returns:
        (N, 17, 3): the body shifted along the feet's path (:func:`stance_path`), then legs
        re-solved where locked; every bone length kept.
    """
    out = np.array(world, dtype=np.float64) + stance_path(world, contacts, fps, blend_s)[:, None]
    goals = []
    for (hip, knee, ankle), c in zip(LEGS, np.asarray(contacts, bool).T):
        target, w = lock_targets(out[:, ankle], c, fps, blend_s)
        goals.append((w > 0, out[:, ankle] + w[:, None] * (target - out[:, ankle])))
    out[:, :, 1] -= reach_drop(out, goals, fps)[:, None]
    for (hip, knee, ankle), (on, goal) in zip(LEGS, goals):
        if on.any():
            out[on, knee], out[on, ankle] = two_bone_ik(out[on, hip], out[on, knee], out[on, ankle],
                                                        goal[on])
    return out


def reach_drop(world: np.ndarray, goals: list, fps: float) -> np.ndarray:
    """(N,) metres to lower the whole body so that every locked foot can reach its floor point.

    A lifted leg that is a little short, or a pelvis a little high, leaves a planted foot
    hanging above the floor; lowering the body as a whole (smoothly, ~0.05 s) keeps every
    root-relative joint as it was. ``goals``: per leg (locked frames (N,) bool, ankle goals (N, 3)).
    """
    from posecli.trajectory import smooth

    need = np.zeros(len(world))
    for (hip, knee, ankle), (on, goal) in zip(LEGS, goals):
        leg = (np.linalg.norm(world[:, knee] - world[:, hip], axis=-1)
               + np.linalg.norm(world[:, ankle] - world[:, knee], axis=-1)) * 0.999
        d = goal - world[:, hip]
        horiz = np.linalg.norm(d[:, [0, 2]], axis=-1)
        # lowering the hip by y shortens the distance to sqrt(horiz^2 + (|dy| - y)^2)
        fit = np.sqrt(np.maximum(leg ** 2 - horiz ** 2, 0.0))
        need = np.maximum(need, np.where(on, np.maximum(np.abs(d[:, 1]) - fit, 0.0), 0.0))
    k = max(1, int(round(0.05 * fps)))
    pad = np.pad(need, k, mode="edge")
    wide = np.max(np.stack([pad[s:s + len(need)] for s in range(2 * k + 1)]), axis=0)  # cover ramps
    return np.maximum(smooth(wide, k), need)


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
