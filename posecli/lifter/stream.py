"""Causal windows: lift a 2D track while it grows, each frame with a fixed look-ahead.

Offline (:mod:`posecli.lifter.windows`) every frame sees context on both sides. Live, a frame
can only be lifted with the frames that have arrived: the lifter gets the window of T frames
*ending at the newest frame*, and a frame ``lookahead`` seconds older than the newest sits
that far before the window's end. A frame is *final* (emitted, never revised) once frames
``lookahead`` seconds after it have arrived; more look-ahead means more context and more delay.

The window is a uniform time grid ending at the newest frame's time, at the stream's own rate
when the lifter knows it (24-36 fps, :mod:`posecli.timing`), else at 30 fps; the 2D track is
sampled onto it linearly and the 3D sampled back at the frames' times. So dropped frames,
jittery timestamps and 60 fps cameras give the lifter motion at the speed it was trained on,
and a uniform 30 fps stream is lifted frame for frame. Before the first frame the window
repeats it (a causal version of :func:`posecli.lifter.windows.pad_to`).

Pure functions over arrays; the window function is the lifter's (``Lifter.windows``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from posecli import timing

# (B, T, J, 2) normalised 2D -> (B, T, J, 3); e.g. posecli.lifter.Lifter.windows (flip inside)
WindowFn = Callable[[np.ndarray], np.ndarray]

#: timestamps are rounded by containers (1 ms in Matroska): a frame counts as ``lookahead``
#: old when it is within this many seconds of it
TIME_SLACK = 2e-3


def lift_rate(times: np.ndarray) -> float:
    """Rate (frames/s) of the window grid for frames at ``times`` (N,) seconds: the stream's
    median rate when the lifter was trained on it (:data:`posecli.timing.LIFTER_FPS_RANGE`),
    else :data:`posecli.timing.LIFT_FPS` (also with fewer than two frames)."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2:
        return timing.LIFT_FPS
    dt = float(np.median(np.diff(times)))
    lo, hi = timing.LIFTER_FPS_RANGE
    return 1.0 / dt if dt > 0 and lo <= 1.0 / dt <= hi else timing.LIFT_FPS


def window_grid(newest: float, rate: float, frames: int) -> np.ndarray:
    """(frames,) seconds: the uniform grid of a causal window ending at ``newest``."""
    return newest - (frames - 1 - np.arange(frames)) / rate


def final_count(times: np.ndarray, start: int, lookahead: float) -> int:
    """How many frames from index ``start`` on are final: their time is at least
    ``lookahead`` seconds before the newest frame's (``times[-1]``). times: (N,) increasing."""
    times = np.asarray(times, dtype=np.float64)
    if start >= len(times):
        return 0
    cut = times[-1] - lookahead + TIME_SLACK
    return int(np.searchsorted(times[start:], cut, side="right"))


def causal_window(times: np.ndarray, x2d: np.ndarray, frames: int,
                  rate: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The lifter's input for the newest frame: (grid (T,) s, window (T, J, 2)).

    times: (N,) increasing seconds of the frames so far (at least the last T / rate seconds);
    x2d: (N, J, 2) normalised 2D, gaps already filled. Grid points before the first frame
    repeat it.
    """
    rate = rate or lift_rate(times)
    grid = window_grid(float(times[-1]), rate, frames)
    return grid, timing.resample(times, x2d, grid).astype(np.float32)


def lift_newest(fn: WindowFn, times: np.ndarray, x2d: np.ndarray, frames: int,
                at: np.ndarray, rate: float | None = None) -> np.ndarray:
    """3D at times ``at`` (M,) from the causal window ending at the newest frame.

    times, x2d as :func:`causal_window`; ``at`` should lie inside the window (earlier times
    get its first frame). Returns (M, J, 3).
    """
    grid, window = causal_window(times, x2d, frames, rate)
    y = fn(window[None])[0]
    return timing.resample(grid, y, np.asarray(at, dtype=np.float64))


def simulate(fn: WindowFn, times: np.ndarray, x2d: np.ndarray, frames: int,
             lookahead: float, batch: int = 32) -> np.ndarray:
    """What a live lift with look-ahead ``lookahead`` (s) gives every frame when the lifter
    runs on every arriving frame: frame i from the window ending at the first frame at least
    ``lookahead`` after it (the last frames, which never get that, from the last window).

    For measuring the look-ahead's cost against the offline lift (benchmarks/bench_live.py).
    times: (N,) s; x2d: (N, J, 2) normalised, gaps filled. Returns (N, J, 3).
    """
    times = np.asarray(times, dtype=np.float64)
    n = len(times)
    # the newest frame index at which each frame becomes final
    ends = np.minimum(np.searchsorted(times, times + lookahead - TIME_SLACK, side="left"), n - 1)
    out = np.zeros((n,) + x2d.shape[1:-1] + (3,))
    needed = np.unique(ends)
    for s in range(0, len(needed), batch):
        chunk = needed[s:s + batch]
        grids, wins = zip(*(causal_window(times[:e + 1], x2d[:e + 1], frames,
                                          lift_rate(times[:e + 1])) for e in chunk))
        ys = fn(np.stack(wins))
        for e, grid, y in zip(chunk, grids, ys):
            sel = np.flatnonzero(ends == e)
            out[sel] = timing.resample(grid, y, times[sel])
    return out
