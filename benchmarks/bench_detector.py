"""Per-frame time of the BlazePose detector stages on the shared demo video.

    python benchmarks/bench_detector.py [--video PATH] [--threads 2] [--repeat 1]

For each variant (lite, full, and heavy when its model is installed) it reports, in ms per
frame: the person detector alone (stage 1 on the whole frame, decoding and NMS included), the
landmark model alone (crop warp, inference, heatmap refinement and mapping back), and the
tracked per-frame time of the full detector (what the pipeline pays: detection runs only when
tracking is lost), plus the share of frames with a person. Medians and, in brackets, the
fastest frame (less sensitive to other processes on a shared machine).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posecli import weights  # noqa: E402
from posecli.detect2d import create_detector  # noqa: E402
from posecli.video import iter_frames  # noqa: E402

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / \
    "mmh3d_single_person_demo.mp4"


def bench(name: str, frames: list, threads: int, repeat: int) -> dict:
    det = create_detector(name, threads=threads)
    det(frames[0])  # warm up (XNNPACK packs weights on the first run)
    t_det, t_lmk, t_track, found = [], [], [], 0
    for _ in range(repeat):
        rois = []
        for f in frames:
            t = time.perf_counter()
            people = det.detect(f)
            t_det.append(time.perf_counter() - t)
            if people:
                rois.append((f, people[0].roi()))
        for f, roi in rois:
            t = time.perf_counter()
            det.landmarks(f, roi)
            t_lmk.append(time.perf_counter() - t)
        det.reset()
        found = 0
        for f in frames:
            t = time.perf_counter()
            found += det(f) is not None
            t_track.append(time.perf_counter() - t)
    ms = lambda v: 1000 * statistics.median(v) if v else float("nan")
    best = lambda v: 1000 * min(v) if v else float("nan")
    return {"variant": name, "detect": ms(t_det), "landmark": ms(t_lmk),
            "tracked": 1000 * sum(t_track) / len(t_track), "found": found / len(frames),
            "detect_min": best(t_det), "landmark_min": best(t_lmk), "tracked_min": best(t_track)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=os.environ.get("POSECLI_BENCH_VIDEO", str(DEFAULT_VIDEO)))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    frames = list(iter_frames(args.video))
    h, w = frames[0].shape[:2]
    print(f"machine: {platform.processor() or platform.machine()}, nproc={os.cpu_count()}, "
          f"threads={args.threads}, python {platform.python_version()}")
    print(f"video: {Path(args.video).name}, {len(frames)} frames of {w}x{h}")
    variants = ["blazepose-lite", "blazepose-full"]
    try:
        weights.find("pose_landmark_heavy.tflite")
        variants.append("blazepose-heavy")
    except weights.WeightsError:
        print("(blazepose-heavy not installed: skipped)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) before: {load:.2f}  (numbers are inflated when others use the CPUs)")
    print("ms per frame: median (fastest)")
    print(f"{'variant':16s} {'detect':>14s} {'landmark':>14s} {'tracked mean':>14s} {'found':>6s}")
    for v in variants:
        r = bench(v, frames, args.threads, args.repeat)
        print(f"{r['variant']:16s} {r['detect']:6.1f} ({r['detect_min']:5.1f}) "
              f"{r['landmark']:6.1f} ({r['landmark_min']:5.1f}) "
              f"{r['tracked']:6.1f} ({r['tracked_min']:5.1f}) {r['found']:6.0%}")


if __name__ == "__main__":
    main()
