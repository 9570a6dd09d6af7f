"""Speed of the MP4 writer (decode the source again, draw 2D + 3D with OpenCV, encode H.264).

    python benchmarks/bench_mp4.py [VIDEO] [--repeat 3]

Lifts VIDEO (default: the shipped example) once, then times ``posecli.export.mp4.write`` and,
for reference, decoding alone. Prints frames/s of output (best of --repeat runs).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", default=str(REPO / "examples" / "walk_07_05.mp4"))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    from posecli.export import mp4
    from posecli.pipeline import lift_video
    from posecli.video import iter_frames

    res = lift_video(a.video)
    n = res.num_frames
    t = time.perf_counter()
    for _ in iter_frames(a.video):
        pass
    decode = n / (time.perf_counter() - t)
    best = 0.0
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out.mp4"
        for _ in range(a.repeat):
            t = time.perf_counter()
            mp4.write(res, out)
            best = max(best, n / (time.perf_counter() - t))
        size = out.stat().st_size
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{Path(a.video).name}: {n} frames {res.width}x{res.height}; decode alone {decode:.0f} frames/s; "
          f"mp4 writer {best:.0f} frames/s (best of {a.repeat}); {size / 1e6:.2f} MB; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
