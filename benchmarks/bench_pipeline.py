"""End-to-end speed of ``posecli lift`` on one video, stage by stage, on this machine.

    python benchmarks/bench_pipeline.py [VIDEO] [--detector blazepose-full] [--threads 2]
    python benchmarks/bench_pipeline.py --memory          # peak memory of 1,000 vs 10,000 frames

Stages of the default ``posecli lift``, timed in one run (``bench_speed.stage_profile``):
decoding alone; 2D detection and tracking; the camera's motion (measured in the same pass);
lifting (windows + flip test, the fusion, foot locking, the path); the JSON. Prints frames per
second per stage and overall, and the machine it ran on. Models are loaded before the timings.
"""
from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[1] / "examples"


def default_video() -> Path:
    clips = sorted(DEFAULT.glob("*.mp4"))
    if clips:
        return clips[0]
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "mmh3d_single_person_demo.mp4"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path, nargs="?", default=None)
    ap.add_argument("--detector", default="blazepose-full")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory", action="store_true",
                    help="peak memory of `posecli lift` on 1,000 and 10,000 frames of 2D keypoints")
    args = ap.parse_args()
    if args.memory:
        return memory_growth()
    video = args.video or default_video()

    from bench_speed import print_stages, stage_profile
    from posecli.video import probe

    info = probe(video)
    st = stage_profile(video, args.threads, args.detector)
    print(f"video: {video.name}, {st['frames']} frames, {info.width}x{info.height} @ {info.fps:g} fps; "
          f"detector {args.detector}")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, {args.threads} threads; default `posecli lift` "
          "options (onnxruntime lifter, flip test, fusion, foot locking, camera motion)")
    print_stages(st)


def memory_growth(sizes: tuple[int, ...] = (1000, 2000, 10000, 20000)) -> None:
    """Peak RSS after detection: lifting N frames of 2D (the example track repeated) and writing
    the JSON, each N in a fresh process. Decoding and detection hold one frame at a time, so this
    is the part that could grow with N; it must stay within 10 %."""
    import subprocess
    import sys
    import tempfile

    code = """
import json, resource, sys
import numpy as np
from posecli.cli import flat_memory
flat_memory()  # as `posecli lift` does
from posecli.export import write_all
from posecli.pipeline import lift_keypoints
n, out = int(sys.argv[1]), sys.argv[2]
doc = json.load(open(sys.argv[3]))
xy = np.array([f["keypoints_2d"] for f in doc["frames"]], float)
xy = xy[np.arange(n) % len(xy)]
r = lift_keypoints(xy, np.ones(xy.shape[:2]), 640, 480, 30.0, source=f"kp{n}.json")
write_all(r, out, ["json"])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    src = Path(__file__).resolve().parents[1] / "examples" / "cmu_07_05_walk.keypoints.json"
    peaks = {}
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            out = subprocess.run([sys.executable, "-c", code, str(n), d, str(src)],
                                 capture_output=True, text=True, check=True).stdout
            peaks[n] = float(out.split()[-1])
            print(f"{n:6d} frames: peak {peaks[n]:.0f} MB")
    a, b = peaks[1000], peaks[10000]
    print(f"growth 1000 -> 10000 frames: {100 * (b / a - 1):+.1f} % (target: within 10 %)")


if __name__ == "__main__":
    main()
