"""Frame timing: a clip's frame rate from its timestamps, and resampling to a rate the lifter knows.

The lifter was trained on 30 fps windows (speed augmentation 0.5-1.5x covers 20-60 fps, but
the same motion lifted at 60 fps as is differs by 9 mm from its 30 fps lift, and by 0.3 mm when
resampled: see tests/test_timing.py). So a clip that is uniform and within 24-36 fps (25, 29.97,
30) is lifted frame by frame as decoded; any other clip (12 fps phone clips, 50-240 fps sports
clips, variable frame rate, dropped frames) has its 2D track linearly resampled to a uniform
30 fps grid over the clip's own timestamps, lifted there, and the 3D sampled back (linearly) at
the video's own frame times. The output keeps one record per decoded frame with its true time,
and the lifter only sees motion at the speed it was trained on.
"""
from __future__ import annotations

import numpy as np

LIFT_FPS = 30.0              # the lifter's training rate
LIFTER_FPS_RANGE = (24.0, 36.0)   # lifted as is; others are resampled to LIFT_FPS
# intervals within this fraction of the median count as the same rate: container time bases
# (1 ms in Matroska) round 1/30 s to 33 or 34 ms
UNIFORM_TOLERANCE = 0.1


def frame_rate(times: np.ndarray) -> tuple[float, bool]:
    """(N,) seconds -> (frames per second, uniform).

    Uniform clips get the mean rate over the whole clip (exact despite rounded timestamps);
    others the median rate (1 / median interval), which ignores dropped frames and bursts.
    """
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2:
        return 0.0, True
    dt = np.diff(times)
    med = float(np.median(dt))
    if med <= 0:
        return 0.0, False
    uniform = bool(np.all(np.abs(dt - med) <= UNIFORM_TOLERANCE * med))
    if uniform:
        return float((len(times) - 1) / (times[-1] - times[0])), True
    return 1.0 / med, False


def lift_plan(times: np.ndarray) -> dict:
    """What the lifter should do with a clip of these frame times (JSON-ready dict).

    fps: the clip's rate (see :func:`frame_rate`); uniform: constant interval; resampled:
    whether the 2D track is resampled to ``lifted_fps``; reason: why (None when not).
    """
    fps, uniform = frame_rate(times)
    lo, hi = LIFTER_FPS_RANGE
    reason = None
    if len(times) >= 2:
        if not uniform:
            reason = "variable frame rate"
        elif not lo <= fps <= hi:
            reason = f"{fps:.3g} fps is outside the lifter's {lo:g}-{hi:g} fps"
    return {"fps": round(fps, 6), "uniform": uniform, "resampled": reason is not None,
            "lifted_fps": LIFT_FPS if reason else round(fps, 6), "reason": reason,
            "exports": None if uniform else
            f"BVH and MP4 are written at a fixed {fps:.6g} fps over the frames' times "
            "(frames not evenly spaced), so they last as long as the clip"}


def export_grid(times: np.ndarray, fps: float) -> tuple[float, np.ndarray | None]:
    """The frame rate and frame times of a fixed-rate file (BVH, MP4) for a clip.

    times: (N,) seconds; fps: the clip's rate. A clip whose frames are evenly spaced is
    written frame by frame at ``fps`` (None: no resampling). Any other (variable frame rate,
    dropped frames) on a uniform grid at its median rate from its first to its last frame time
    (:func:`uniform_grid`), so the file lasts as long as the clip (the JSON's ``timing.exports``
    says so).
    """
    rate, uniform = frame_rate(times)
    if uniform or rate <= 0:
        return float(fps), None
    return rate, uniform_grid(times, rate)


def shown_frames(times: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(M,) index of the frame a player shows at each of ``grid``'s times: the latest frame at
    or before it. times: (N,) increasing seconds."""
    return np.clip(np.searchsorted(times, np.asarray(grid) + 1e-9, side="right") - 1, 0, len(times) - 1)


def uniform_grid(times: np.ndarray, fps: float = LIFT_FPS) -> np.ndarray:
    """(N,) increasing seconds -> (M,) seconds from the first to (at least) the last time."""
    t0, t1 = float(times[0]), float(times[-1])
    m = int(np.ceil((t1 - t0) * fps - 1e-9)) + 1
    return t0 + np.arange(m) / fps


def resample(times: np.ndarray, values: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Linear interpolation of (N, ...) samples at ``times`` to (M, ...) at ``new_times``.

    Values outside [times[0], times[-1]] are held at the ends. Repeated timestamps (broken
    streams) are nudged apart so interpolation stays defined.
    """
    times = _increasing(np.asarray(times, dtype=np.float64))
    flat = np.asarray(values, dtype=np.float64).reshape(len(times), -1)
    out = np.empty((len(new_times), flat.shape[1]))
    for c in range(flat.shape[1]):
        out[:, c] = np.interp(new_times, times, flat[:, c])
    return out.reshape((len(new_times),) + np.shape(values)[1:])


def _increasing(t: np.ndarray) -> np.ndarray:
    """Make a time axis strictly increasing (1 microsecond apart where it is not)."""
    out = t.copy()
    for i in range(1, len(out)):
        if out[i] <= out[i - 1]:
            out[i] = out[i - 1] + 1e-6
    return out
