"""Speed of the HRNet detector's two runtimes, per person per frame, beside BlazePose's landmark
model, measured in one run on the same frames.

    python benchmarks/bench_hrnet.py [--checkpoint hrnet.pth] [--threads 2] [--frames 30]

Without ``--checkpoint`` a randomly initialised HRNet-w32 is used (the speed does not depend on
the weights; none can be downloaded here). The torch route runs our network
(posecli/detect2d/hrnet_net.py); the ONNX route the same weights exported with
``posecli export-onnx --detector hrnet`` and run with onnxruntime. For each route it reports, in
ms: the network on one 256x192 crop, and the whole second stage per person per frame as
``posecli lift --detector hrnet`` runs it (crop warp, network on the crop and its mirror image,
decoding, mapping back). BlazePose's row is its landmark model per person per frame (crop,
network, heatmap refinement). Medians over ``--frames`` frames of the example video after a
warm-up; the box comes from the shipped example's truth, so no detector runs.
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO / "examples" / "walk_07_05.mp4"


def cycling(fn, n: int):
    """A no-argument function calling ``fn(i)`` with i = 0, 1, ..., n - 1, 0, ..."""
    counter = itertools.count()
    return lambda: fn(next(counter) % n)


def median_ms(fn, reps: int) -> float:
    fn()  # warm-up (allocations, XNNPACK packing)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def random_checkpoint(path: Path) -> Path:
    import torch

    from posecli.detect2d.hrnet_net import HRNet
    torch.manual_seed(0)
    state = {(f"head.{k}" if k.startswith("final_layer") else f"backbone.{k}"): v
             for k, v in HRNet().state_dict().items()}
    torch.save({"state_dict": state}, path)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None, help="MMPose HRNet-w32 .pth (default: random)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=30)
    a = ap.parse_args(argv)

    import torch

    from posecli.detect2d.blazepose import LANDMARK_FILES, PoseLandmarker
    from posecli.detect2d.crops import roi_from_points
    from posecli.detect2d.hrnet import (HRNetPose, OnnxNet, TorchNet, box_roi, export_onnx,
                                        load_checkpoint, preprocess)
    from posecli.detect2d.boxes import points_box
    from posecli.video import iter_frames, probe
    from posecli import weights

    torch.set_num_threads(a.threads)
    frames = [f for _, f in zip(range(a.frames), iter_frames(VIDEO, probe(VIDEO)))]
    truth = np.load(VIDEO.with_name("walk_07_05.truth.npz"))["coco2d"]
    rois = [box_roi(points_box(truth[i])) for i in range(len(frames))]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = a.checkpoint or random_checkpoint(Path(tmp) / "hrnet.pth")
        onnx_path, parity = export_onnx(ckpt, Path(tmp) / "hrnet.onnx")
        nets = {"torch": TorchNet(load_checkpoint(ckpt)), "onnxruntime": OnnxNet(onnx_path, a.threads)}
        x1 = preprocess(frames[0], rois[:1])
        rows = []
        for name, net in nets.items():
            model = HRNetPose(net)
            per_frame = median_ms(cycling(lambda i: model(frames[i], [rois[i]]), len(frames)),
                                  len(frames))
            rows.append((f"HRNet-w32, {name}", median_ms(lambda: net(x1), 10), per_frame))
        lmk = PoseLandmarker(weights.verified(LANDMARK_FILES["blazepose-full"]), a.threads)
        centre = truth[:, [11, 12]].mean(1)
        top = truth[:, [0]].mean(1)
        lrois = [roi_from_points(centre[i], top[i]) for i in range(len(frames))]
        rows.append(("BlazePose full landmarks", float("nan"),
                     median_ms(cycling(lambda i: lmk(frames[i], lrois[i]), len(frames)), len(frames))))
    print(f"HRNet speed, {a.threads} threads, {len(frames)} frames of {VIDEO.name}; "
          f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"weights {'random' if a.checkpoint is None else a.checkpoint.name}; "
          f"ONNX parity {parity:.1e} (max |torch - onnxruntime| heatmap / max |heatmap|)")
    print(f"{'second stage':<28} {'net/crop ms':>11} {'per person-frame ms':>20} {'x BlazePose':>11}")
    base = rows[-1][2]
    for name, net_ms, frame_ms in rows:
        print(f"{name:<28} {net_ms:>11.1f} {frame_ms:>20.1f} {frame_ms / base:>11.1f}")
    print("per person-frame: crop, network on the crop and its mirror (flip test) for HRNet, "
          "decoding, mapping back; the person detector (shared) is not included")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
