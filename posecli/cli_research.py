"""Research commands of posecli: ``train``, ``evaluate``, ``export-onnx``.

``register(app)`` adds them to the main Typer app. Heavy modules (training, data, onnx) are
imported inside the command functions so ``posecli lift`` never loads them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from posecli.cli_common import ReadableCommand


def register(app: typer.Typer) -> None:
    """Add the ``train``, ``evaluate`` and ``export-onnx`` commands to ``app``."""
    app.command("train", cls=ReadableCommand, help="Train the MixSTE lifter (CMU mocap + virtual cameras, HumanEva-I, "
                              "or a VideoPose3D npz). See docs/training.md.")(train_cmd)
    app.command("evaluate", cls=ReadableCommand, help="Evaluate lifter weights: P1/P2/MPJVE per action x subject, "
                                 "overlapping and non-overlapping windows.")(evaluate_cmd)
    app.command("export-onnx", cls=ReadableCommand, help="Export lifter weights (or, with --detector hrnet, an MMPose HRNet "
                                    "checkpoint) to ONNX and check parity with torch.")(export_cmd)


def train_cmd(
    out: Path = typer.Option(..., "-o", "--out", help="run folder (config, metrics, checkpoints)"),
    data: str = typer.Option("cmu", help="cmu | humaneva | humaneva17 (H36M-17 layout, to fine-tune a CMU model) | path to a VideoPose3D data_3d_*.npz"),
    data_2d: str = typer.Option("", help="VideoPose3D data_2d_*.npz (with a data_3d path)"),
    cameras: str = typer.Option("", help="camera pickle for VideoPose3D data (Human3.6M format)"),
    frames: int = typer.Option(81, help="window length T"),
    width: int = typer.Option(64, help="d_m"),
    depth: int = typer.Option(4, help="d_l"),
    heads: int = typer.Option(4),
    mlp_ratio: float = typer.Option(2.0),
    drop_path: float = typer.Option(0.1, help="stochastic depth"),
    epochs: int = typer.Option(20),
    steps_per_epoch: int = typer.Option(100),
    batch: int = typer.Option(32),
    lr: float = typer.Option(1e-3),
    lr_min: float = typer.Option(1e-5),
    schedule: str = typer.Option("cosine", help="cosine (over all epochs) | cosine_time (over --time-limit) | exp (x lr-decay per epoch)"),
    lr_decay: float = typer.Option(0.99),
    warmup_steps: int = typer.Option(100),
    weight_decay: float = typer.Option(0.1),
    seed: int = typer.Option(0),
    threads: int = typer.Option(1, help="torch threads"),
    init: str = typer.Option("", help="initial weights (fine-tuning)"),
    time_limit: float = typer.Option(0.0, help="stop after this many minutes (0: none)"),
    virtual: float = typer.Option(0.0, help="humaneva: fraction of windows seen by random virtual cameras"),
    device: str = typer.Option("cpu", help="auto | cpu | cuda (bf16 autocast on cuda)"),
    workers: int = typer.Option(0, help="processes making training windows (0: none, in the training process)"),
    more_data: bool = typer.Option(False, help="cmu: add cmu_more.npz (held-out subjects stay out)"),
    clean: bool = typer.Option(False, help="cmu: drop T-pose frames and bad clips, move the Daz rig's hips"),
    aug: str = typer.Option("v2", help="cmu augmentation: v2 (shipped v2 lifter) | v3 (high cameras, tumbles, limb spread 12 %)"),
    resume: bool = typer.Option(False, help="continue the run in OUT from its last.pt"),
    progress: bool = typer.Option(True, help="rich progress bars"),
) -> None:
    from posecli.training.train import TrainConfig, train

    cfg = TrainConfig(data=data, data_2d=data_2d, cameras=cameras, frames=frames, width=width,
                      depth=depth, heads=heads, mlp_ratio=mlp_ratio, drop_path=drop_path, epochs=epochs,
                      steps_per_epoch=steps_per_epoch, batch=batch, lr=lr, lr_min=lr_min,
                      schedule=schedule, lr_decay=lr_decay, warmup_steps=warmup_steps,
                      weight_decay=weight_decay, seed=seed, threads=threads, init=init,
                      time_limit_min=time_limit, device=device, workers=workers, more_data=more_data,
                      clean=clean, aug=aug, extra={"virtual": virtual})
    train(cfg, out, resume=resume, progress=progress)


def evaluate_cmd(
    weights: Path = typer.Option(..., "--weights", "-w", help="lifter checkpoint"),
    data: str = typer.Option("humaneva", help="humaneva | cmu | cmu-clean | cmu-more | cmu-typical | path to a VideoPose3D data_3d_*.npz"),
    data_2d: str = typer.Option("", help="VideoPose3D data_2d_*.npz"),
    cameras: str = typer.Option("", help="camera pickle for VideoPose3D data"),
    cameras_per_clip: int = typer.Option(2, help="CMU: fixed-seed virtual cameras per held-out clip"),
    flip: bool = typer.Option(True, help="flip test-time augmentation"),
    threads: int = typer.Option(1),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results here"),
    device: str = typer.Option("cpu", help="cpu | cuda"),
) -> None:
    from posecli.training.evaluate import run_evaluation

    run_evaluation(weights, data, data_2d=data_2d, cameras=cameras, cameras_per_clip=cameras_per_clip,
                   flip=flip, threads=threads, json_out=json_out, device=device)


def export_cmd(
    weights: Optional[Path] = typer.Option(None, "--weights", "-w", help="lifter checkpoint"),
    out: Path = typer.Option(..., "-o", "--out", help="ONNX file to write"),
    detector: Optional[str] = typer.Option(None, help="hrnet: export the 2D detector's network "
                                                      "(from --pose-checkpoint) instead of a lifter"),
    pose_checkpoint: Optional[Path] = typer.Option(None, help="MMPose HRNet-w32 COCO 256x192 checkpoint (.pth)"),
    opset: int = typer.Option(17),
) -> None:
    from posecli.cli_common import fail
    from posecli.errors import PosecliError, UsageError

    try:
        if detector is None:
            if weights is None or pose_checkpoint is not None:
                raise UsageError("export-onnx: give --weights (a lifter) or --detector NAME "
                                 "--pose-checkpoint FILE.pth")
            from posecli.lifter.onnx import export_onnx
            export_onnx(weights, out, opset=opset)
            return
        from posecli.detect2d.table import DETECTORS, detector_entry
        try:
            entry = detector_entry(detector)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if entry.export is None or weights is not None:
            raise UsageError(f"export-onnx --detector: one of "
                             f"{', '.join(n for n, e in DETECTORS.items() if e.export)} "
                             "(with --pose-checkpoint), not with --weights")
        path, err = entry.export(pose_checkpoint, out, opset=opset)
        print(f"wrote {path}; max |torch - onnxruntime| heatmap difference = {err:.1e} of the "
              f"largest heatmap value, on random input (use it with: posecli lift --detector "
              f"{detector} --pose-model {path})")
    except PosecliError as e:
        fail(str(e))
