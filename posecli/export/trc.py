"""TRC: OpenSim's marker file (Motion Analysis "Track Row Column"), read by OpenSim, Pose2Sim and
most sports-science tools.

Conventions (also in the README):
- one marker per Human3.6M joint, named as in the JSON (``pelvis``, ``r_hip``, ... ``r_wrist``);
- the posecli world frame (:mod:`posecli.trajectory`): Y up, floor at Y = 0, millimetres;
- tab-separated: three header lines (``PathFileType``; the names ``DataRate CameraRate
  NumFrames NumMarkers Units OrigDataRate OrigDataStartFrame OrigNumFrames``; their values),
  two label lines (``Frame# Time`` + marker names; ``X1 Y1 Z1 ...``), a blank line, then one
  row per frame: ``Frame#`` (from 1), ``Time`` (the frame's own presentation time, seconds),
  X Y Z of every marker;
- ``DataRate`` / ``CameraRate`` are the clip's frame rate; for a variable-rate clip the Time
  column, not ``(Frame# - 1) / DataRate``, is the truth;
- frames without a person (flag ``missing``) are gaps: every coordinate field empty, never 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from posecli import skeleton
from posecli.files import atomic_path
from posecli.result import LiftResult


def to_text(world_mm: np.ndarray, times: np.ndarray, seen: np.ndarray, fps: float,
            names: list[str], file_name: str) -> str:
    """The TRC file.

    Args:
        world_mm: (N, M, 3) marker positions, millimetres; times: (N,) seconds;
        seen: (N,) bool, False where the frame is a gap; names: the M marker names.
    """
    n, m = world_mm.shape[:2]
    rate = f"{fps:.6g}"
    lines = [f"PathFileType\t4\t(X/Y/Z)\t{file_name}",
             "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
             f"{rate}\t{rate}\t{n}\t{m}\tmm\t{rate}\t1\t{n}",
             "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t",
             "\t\t" + "\t".join(f"X{k}\tY{k}\tZ{k}" for k in range(1, m + 1)),
             ""]  # OpenSim's layout: a blank line before the data
    gap = "\t" * (3 * m - 1)
    for i in range(n):
        head = f"{i + 1}\t{times[i]:.6f}\t"
        body = "\t".join(f"{v:.2f}" for v in world_mm[i].ravel()) if seen[i] else gap
        lines.append(head + body)
    return "\n".join(lines) + "\n"


def write(result: LiftResult, path: str | Path) -> None:
    """Write ``result``'s world joints as a TRC marker file, atomically."""
    path = Path(path)
    seen = np.asarray(result.flags) != skeleton.MISSING
    text = to_text(result.world_joints() * 1000.0, result.frame_times(), seen, result.fps,
                   list(skeleton.JOINTS), path.name)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
