"""CPU threads and onnxruntime sessions: one rule for every model (lifter, HRNet).

The thread rule: a model runs on ``threads`` intra-op threads and one inter-op thread (the
graphs here are a chain, so parallel branches gain nothing and would oversubscribe the cores
that ``--jobs`` workers share); torch's process-wide pool gets the same count. OpenCV, which
only prepares small images between model runs, gets one thread.
Imported by both ``posecli.lifter`` and ``posecli.detect2d``, which do not import each other.
"""
from __future__ import annotations

from pathlib import Path

from posecli.errors import WeightsError


def set_torch_threads(threads: int) -> None:
    """Size torch's (process-wide) intra-op pool: the one place it is set."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(max(1, int(threads)))


def set_opencv_threads(threads: int = 1) -> None:
    """Size OpenCV's (process-wide) pool. Its work per frame (crops, the background's flow) is
    small, and its idle workers compete with the landmark model's threads: on 2 cores, 1,000
    frames were tracked in 12.0 s with one OpenCV thread against 12.9 s with two, and with the
    camera's motion measured too in 13.8 against 15.6 s (scratch benchmark, load ~4 niced)."""
    import cv2

    if cv2.getNumThreads() != threads:
        cv2.setNumThreads(max(1, int(threads)))


def onnx_session(path: str | Path, threads: int):
    """An onnxruntime CPU session for ``path`` with the thread rule above; a one-line
    :class:`WeightsError` when onnxruntime cannot load the file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = max(1, int(threads)), 1
    # onnxruntime's memory patterns (planned per input shape) kept growing the arena with the
    # clip's length: the lifter on 4,000 frames held 458 MiB with them, 287 without, no slower
    opts.enable_mem_pattern = False
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise WeightsError(f"{path}: not a usable ONNX model ({first[:200]})") from None
