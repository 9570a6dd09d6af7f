"""Cut a long sequence into overlapping windows and blend the window outputs back together.

MixSTE maps T frames to T frames at once. A video of N frames is covered by windows of T
frames whose starts are ``stride`` apart (the last one flush with the end). Each window's
output is weighted by a ramp that tapers towards the window's edges, where the model sees the
least context, and the weighted outputs are averaged per frame, so no seam shows where one
window hands over to the next. Sequences shorter than T are padded by repeating their end
frames and cropped back.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def window_starts(n: int, frames: int, stride: int) -> list[int]:
    """Start indices of windows of ``frames`` covering ``n >= frames`` frames, ``stride`` apart."""
    if not 0 < stride <= frames:
        raise ValueError(f"stride must be in 1..{frames}, got {stride}")
    if n <= frames:
        return [0]
    starts = list(range(0, n - frames, stride))
    return starts + [n - frames]


def taper(frames: int, ramp: int) -> np.ndarray:
    """(frames,) blending weights: linear ramps of ``ramp`` frames up from each edge, 1 between.

    Weights stay strictly positive so the first and last frames of a sequence, which only one
    window covers, keep a defined value.
    """
    t = np.arange(frames)
    edge = np.minimum(t + 1, frames - t).astype(np.float64)
    return np.minimum(1.0, edge / (ramp + 1))


def pad_to(x: np.ndarray, frames: int) -> tuple[np.ndarray, int]:
    """Pad (N, ...) to at least ``frames`` along axis 0 by repeating edge frames (centred).

    Returns the padded array and the offset of the original first frame in it.
    """
    n = len(x)
    if n >= frames:
        return x, 0
    before = (frames - n) // 2
    after = frames - n - before
    idx = np.r_[np.zeros(before, int), np.arange(n), np.full(after, n - 1)]
    return x[idx], before


def lift_windows(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, frames: int,
                 stride: int | None = None, batch: int = 16) -> np.ndarray:
    """Apply a seq2seq window function to a sequence of any length and blend the outputs.

    Args:
        fn: maps (B, frames, J, Din) to (B, frames, J, Dout).
        x: (N, J, Din) input sequence.
        frames: window length T.
        stride: distance between window starts; default T // 2 (half-overlapping windows).
            ``stride == frames`` gives the paper's non-overlapping evaluation (the last window
            is still flush with the end, so it may overlap its neighbour).
        batch: windows per call of ``fn``.
    Returns:
        (N, J, Dout) blended output.
    """
    n = len(x)
    if n == 0:
        raise ValueError("cannot lift an empty sequence")
    stride = stride or max(1, frames // 2)
    xp, offset = pad_to(x, frames)
    starts = window_starts(len(xp), frames, stride)
    w = taper(frames, ramp=max(0, frames - stride))
    acc = None
    total = np.zeros(len(xp))
    for i in range(0, len(starts), batch):
        chunk = starts[i:i + batch]
        y = fn(np.stack([xp[s:s + frames] for s in chunk]))
        if acc is None:
            acc = np.zeros((len(xp),) + y.shape[2:])
        for s, ys in zip(chunk, y):
            acc[s:s + frames] += w[:, None, None] * ys
            total[s:s + frames] += w
    out = acc / total[:, None, None]
    return out[offset:offset + n]
