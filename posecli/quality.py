"""A per-clip quality report: how far to trust a result. Pure numpy, from a LiftResult.

Each measure has a threshold above which a user should look at the clip (:data:`THRESHOLDS`):
- ``detected`` / ``interpolated`` / ``missing``: share of frames (``missing`` above 0.10);
- ``foot_slide_mm``: mean horizontal ankle movement per frame while that foot is in contact
  (estimated contacts, world frame): feet that skate (above 30 mm/frame; the rendered example
  gives 24.5, mostly from the estimated path's noise);
- ``floor_penetration_mm``: mean depth of the lower ankle below its flat-foot height
  (:data:`posecli.trajectory.ANKLE_HEIGHT`) over the frames where it is below (above 30 mm);
- ``jitter_ms2``: mean joint acceleration (m/s^2, second differences of the root-relative 3D
  over frames with a person): shaky output (above 20 m/s^2; on the rendered example the true
  walk gives 6.5 m/s^2 and the pipeline 2.9, the lifter smooths);
- ``bone_drift``: mean relative deviation of the lifter's raw bone lengths from their clip
  medians, before the rigid step (above 0.10: the lifter was unsure of the body's proportions);
- ``flip_disagreement_mm``: mean distance between the lifter's direct and mirrored-back
  predictions (flip test-time augmentation), large where the lifter is unsure (above 40 mm;
  the rendered example gives 19 mm, the shared basketball video 43 mm);
- ``camera_motion``: how far the background moved (the largest displacement of the image
  centre's background point, as a share of the image width; above 0.03 the camera moves), with
  ``camera_pan_deg`` / ``camera_tilt_deg`` reached and ``camera_measured`` (share of frame pairs
  with enough background): :mod:`posecli.camera_motion` (videos only).
"""
from __future__ import annotations

import numpy as np

from posecli import skeleton, trajectory

THRESHOLDS = {"missing": 0.10, "foot_slide_mm": 30.0, "floor_penetration_mm": 30.0,
              "jitter_ms2": 20.0, "bone_drift": 0.10,
              "flip_disagreement_mm": 40.0, "camera_motion": 0.03}


def bone_drift(raw: np.ndarray, seen: np.ndarray) -> float:
    """(N, 17, 3) raw lifter output, (N,) bool -> mean |length / clip median - 1| over bones and frames."""
    b = skeleton.bone_lengths(raw[seen])
    med = np.median(b, axis=0)
    return float(np.mean(np.abs(b / np.maximum(med, 1e-9) - 1)))


def jitter(pose: np.ndarray, fps: float, seen: np.ndarray) -> float:
    """Mean joint acceleration (m/s^2) of (N, 17, 3) metres over runs of seen frames."""
    ok = seen[2:] & seen[1:-1] & seen[:-2]
    if not ok.any():
        return 0.0
    acc = (pose[2:] - 2 * pose[1:-1] + pose[:-2]) * fps ** 2
    return float(np.linalg.norm(acc[ok], axis=-1).mean())


def report(result, raw_pose: np.ndarray | None = None, flip_disagreement: float | None = None,
           camera: dict | None = None) -> dict:
    """The ``quality`` block of a result (see the module docstring), with ``warnings``: the
    names of the measures above their thresholds. ``camera``: :func:`posecli.camera_motion.report`."""
    flags = np.asarray(result.flags)
    n = len(flags)
    seen = flags != skeleton.MISSING
    q = {f: round(float((flags == f).mean()), 4)
         for f in (skeleton.DETECTED, skeleton.INTERPOLATED, skeleton.MISSING)}
    t = result.trajectory
    if t is not None and n > 1:
        ank = t.world[:, [3, 6]]
        step = np.linalg.norm(np.diff(ank[..., [0, 2]], axis=0), axis=-1)  # (N-1, 2)
        both = t.contacts[1:] & t.contacts[:-1] & seen[1:, None] & seen[:-1, None]
        q["foot_slide_mm"] = round(float(step[both].mean() * 1000), 2) if both.any() else 0.0
        low = ank[..., 1].min(axis=1)[seen]
        below = trajectory.ANKLE_HEIGHT - low
        q["floor_penetration_mm"] = round(float(below[below > 0].mean() * 1000), 2) if (below > 0).any() else 0.0
    q["jitter_ms2"] = round(jitter(np.asarray(result.pose3d, float), result.fps, seen), 3)
    if raw_pose is not None and seen.any():
        q["bone_drift"] = round(bone_drift(np.asarray(raw_pose, float), seen), 4)
    if flip_disagreement is not None:
        q["flip_disagreement_mm"] = round(flip_disagreement * 1000, 2)
    if camera:
        q.update(camera)
    q["thresholds"] = THRESHOLDS
    q["warnings"] = [k for k, v in THRESHOLDS.items() if k in q and q[k] > v]
    return q


def camera_warning(q: dict | None) -> str:
    """One line when the camera moved (empty otherwise)."""
    if not q or "camera_motion" not in q.get("warnings", ()):
        return ""
    return (f"the camera moves (pans {q['camera_pan_deg']:.0f} deg, tilts {q['camera_tilt_deg']:.0f} deg): "
            f"the path is corrected for turning; a travelling camera still bends it")


def one_line(q: dict) -> str:
    """A one-line summary for the terminal."""
    parts = [f"detected {q['detected']:.0%}", f"missing {q['missing']:.0%}"]
    for key, label, fmt in (("foot_slide_mm", "foot slide", "{:.1f} mm/frame"),
                            ("floor_penetration_mm", "floor penetration", "{:.0f} mm"),
                            ("jitter_ms2", "jitter", "{:.1f} m/s^2"), ("bone_drift", "bone drift", "{:.0%}"),
                            ("flip_disagreement_mm", "flip disagreement", "{:.0f} mm"),
                            ("camera_pan_deg", "camera pan", "{:.0f} deg")):
        if key in q:
            parts.append(f"{label} {fmt.format(q[key])}")
    tail = f" -- check: {', '.join(q['warnings'])}" if q["warnings"] else ""
    return "quality: " + ", ".join(parts) + tail
