"""Our HRNet-w32 against MMPose's own, on the artefacts of ``mmpose_dump.py``.

    python tools/hrnet_parity/check_parity.py [--dir /work/cache/hrnet_parity]

Loads MMPose's randomly initialised checkpoints (1.x ``head.*`` keys and 0.x ``keypoint_head.*``
keys) with posecli's loader (no mmcv, no mmpose), runs our network on the same input and
prints the largest heatmap difference from MMPose's, in float32 and float64, absolute and
relative to the largest heatmap value (random weights make heatmaps reach ~4e4). Exit status 1
when a relative difference exceeds 1e-5.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/work/cache/hrnet_parity"))
    a = ap.parse_args(argv)
    import torch

    from posecli.detect2d.hrnet import load_checkpoint

    ref = np.load(a.dir / "reference.npz")
    x = torch.from_numpy(ref["input"])
    worst = 0.0
    for name in ("hrnet_w32_random.pth", "hrnet_w32_random_v0.pth"):
        model = load_checkpoint(a.dir / name)
        for dtype, key in ((torch.float32, "heatmaps"), (torch.float64, "heatmaps_f64")):
            with torch.inference_mode():
                ours = model.to(dtype)(x.to(dtype)).numpy()
            theirs = ref[key]
            diff = float(np.abs(ours - theirs).max())
            rel = diff / float(np.abs(theirs).max())
            worst = max(worst, rel)
            print(f"{name:<26} {str(dtype).split('.')[1]:<8} max |ours - MMPose| = {diff:.3g} "
                  f"({rel:.3g} of max |heatmap| {np.abs(theirs).max():.3g})")
    ok = worst <= 1e-5
    print("parity:", "ok" if ok else "FAILED", f"(worst relative difference {worst:.3g}, limit 1e-5)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
