"""Motion capture clips from cmu_h36m.npz, resampled to the render frame rate."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from render.constants import FPS, MOCAP, MOCAP_MORE


@dataclass
class MocapClip:
    name: str
    subject: str
    source: str
    first: int
    world: np.ndarray    # (N,19,3) metres, Y up


def mocap_file(source: str | None) -> Path:
    """The npz holding a source's clips: cmu_more.npz for 'cmu_daz_atelier', else cmu_h36m.npz."""
    return MOCAP_MORE if source == "cmu_daz_atelier" else MOCAP


def load_mocap_clip(name: str, source: str | None = None, start: float = 0.0,
                    max_frames: int | None = None, path: Path | None = None) -> MocapClip:
    d = np.load(path or mocap_file(source), allow_pickle=True)
    s = d["clip_start"]
    e = np.r_[s[1:], len(d["positions"])]
    idx = [i for i in range(len(s)) if d["clip_name"][i] == name
           and (source is None or d["source"][i] == source)]
    if not idx:
        raise SystemExit(f"no mocap clip {name} (source {source})")
    i = idx[0]
    a = s[i] + max(1, int(round(start * FPS)))   # frame 0 is often the calibration T-pose
    b = e[i] if max_frames is None else min(e[i], a + max_frames)
    world = d["positions"][a:b].astype(np.float64) + d["root"][a:b, None].astype(np.float64)
    return MocapClip(name, str(d["subject"][i]), str(d["source"][i]), int(a), world)
