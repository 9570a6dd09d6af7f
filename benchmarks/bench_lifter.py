"""Lifter throughput: frames per second for torch and onnxruntime at T = 27, 81, 243,
batch 1 and batched, plus parameters and FLOPs per frame.

    python benchmarks/bench_lifter.py [--weights weights/lifter.pt] [--threads 1] [--batch 16]

The speed of a configuration does not depend on its weights, so for window lengths other than
the checkpoint's own an untrained model of the same configuration is timed. Throughput counts
output frames per second of one forward pass (flip test-time augmentation, on by default in
``posecli lift``, costs a second pass: halve the numbers).
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def flops_per_frame(model, frames: int) -> float:
    """Forward FLOPs (multiply-add = 2) per output frame, counted by torch's FLOP counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from torch.nn.attention import SDPBackend, sdpa_kernel

    x = torch.zeros(1, frames, model.cfg.joints, 2)
    # the math backend spells attention out as matmuls, which the counter sees
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / frames


def timed(fn, min_time: float = 1.5, min_calls: int = 3) -> float:
    """Seconds per call (median of calls made for at least ``min_time`` s after one warm-up)."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(Path(__file__).resolve().parents[1] / "weights" / "lifter.pt"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16, help="batched case: windows per call")
    ap.add_argument("--lengths", default="27,81,243")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import torch
    from rich.console import Console
    from rich.table import Table

    from posecli.lifter import LifterConfig, MixSTE, count_parameters, load_model
    from posecli.lifter.onnx import OnnxSession, export_model

    torch.set_num_threads(args.threads)
    if Path(args.weights).is_file():
        base, _ = load_model(args.weights)
        cfg, source = base.cfg, Path(args.weights).name
    else:
        base, cfg, source = None, LifterConfig(frames=81, width=64, depth=4, heads=4), "compact default (untrained)"
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    table = Table(title=f"MixSTE lifter throughput ({source}: d_m={cfg.width}, d_l={cfg.depth}, "
                        f"heads={cfg.heads}); {args.threads} thread(s); {platform.processor() or platform.machine()}, "
                        f"{os.cpu_count()} CPUs; torch {torch.__version__}")
    for col in ("T", "batch", "params", "GFLOPs/frame", "torch frames/s", "onnxruntime frames/s", "max |diff| m"):
        table.add_column(col, justify="right")
    tmp = Path(tempfile.mkdtemp())
    for t in (int(v) for v in args.lengths.split(",")):
        model = MixSTE(replace(cfg, frames=max(t, cfg.frames) if base is not None else t)).eval()
        if base is not None:
            state = base.state_dict()
            own = model.state_dict()
            state = {k: (v if v.shape == own[k].shape else own[k]) for k, v in state.items()}
            model.load_state_dict(state)
        path = export_model(model, tmp / f"t{t}.onnx")
        runner = OnnxSession(path, threads=args.threads)
        gflops = flops_per_frame(model, t) / 1e9
        for b in (1, args.batch):
            x = np.random.default_rng(0).normal(0, 0.3, (b, t, cfg.joints, 2)).astype(np.float32)
            xt = torch.from_numpy(x)
            with torch.inference_mode():
                t_torch = timed(lambda: model(xt))
                ref = model(xt).numpy()
            t_ort = timed(lambda: runner(x))
            diff = float(np.abs(runner(x) - ref).max())
            table.add_row(str(t), str(b), f"{count_parameters(model) / 1e6:.3f} M", f"{gflops:.4f}",
                          f"{b * t / t_torch:,.0f}", f"{b * t / t_ort:,.0f}", f"{diff:.1e}")
    console.print(table)


if __name__ == "__main__":
    main()
