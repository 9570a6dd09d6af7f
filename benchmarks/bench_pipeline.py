"""End-to-end speed of ``posecli lift`` on one video, stage by stage, on this machine.

    python benchmarks/bench_pipeline.py [VIDEO] [--detector blazepose-full] [--threads 2]
    python benchmarks/bench_pipeline.py --memory          # peak memory of 1,000 vs 10,000 frames

Stages, each timed on its own in one run: decoding alone; decoding + 2D detection; lifting
(windows + flip TTA) of the detected track. Prints frames per second per stage and overall,
and the machine it ran on.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
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
    ap.add_argument("--backend", default="onnx", help="lifter runtime (default: posecli lift's)")
    ap.add_argument("--memory", action="store_true",
                    help="peak memory of `posecli lift` on 1,000 and 10,000 frames of 2D keypoints")
    args = ap.parse_args()
    if args.memory:
        return memory_growth()
    video = args.video or default_video()

    from posecli import pipeline, skeleton
    from posecli.lifter import load_lifter
    from posecli.video import iter_frames, probe

    if args.backend == "torch":
        from posecli.compute import set_torch_threads
        set_torch_threads(args.threads)
    info = probe(video)
    t0 = time.perf_counter()
    n = sum(1 for _ in iter_frames(video, info))
    t_decode = time.perf_counter() - t0

    lifter = load_lifter(backend=args.backend)
    t0 = time.perf_counter()
    _, lm, conf, found, det = pipeline.detect_video(video, detector=args.detector, threads=args.threads)
    t_detect = time.perf_counter() - t0 - t_decode

    xy, c = pipeline.to_h36m(np.nan_to_num(lm), conf, det["layout"])
    x2d = skeleton.normalize_to_frame(xy, info.width, info.height)
    lifter(x2d)  # warm-up
    t0 = time.perf_counter()
    lifter(x2d)
    t_lift = time.perf_counter() - t0

    total = t_decode + t_detect + t_lift
    print(f"video: {video.name}, {n} frames, {info.width}x{info.height} @ {info.fps:g} fps; "
          f"person found in {found.sum()}/{n} frames")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}, {args.threads} threads; lifter backend "
          f"{args.backend}, window {lifter.frames}, flip TTA {lifter.info['flip_test']}")
    print(f"{'stage':<22}{'ms/frame':>10}{'frames/s':>10}")
    for name, t in (("decode", t_decode), (f"detect ({args.detector})", t_detect),
                    ("lift", t_lift), ("total", total)):
        print(f"{name:<22}{1000 * t / n:>10.2f}{n / t:>10.1f}")


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
