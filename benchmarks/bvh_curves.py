"""Rotation-curve jumps of BVH files (what an animator's graph editor shows).

    python benchmarks/bvh_curves.py out/*.bvh

For each file: channel steps above 40 degrees between frames, those that are the same pose
written another way (the joint's rotation turned less), twist flips (a joint turned over 40
degrees while its bones moved under 10), and the largest step. Reads the files' own channel
orders, so it measures files from older versions too (same joints).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from export_helpers import parse_bvh  # noqa: E402

from posecli.export import bvh  # noqa: E402


def measure(path: Path) -> dict:
    names, _, offsets, channels, frames, _, motion = parse_bvh(path.read_text())
    orders = ["".join(c[0] for c in ch[-3:]) for ch in channels]
    angles = np.radians(motion[:, 3:].reshape(frames, len(names), 3))
    return bvh.curve_jumps(angles, offsets, orders)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, measure(Path(arg)))
