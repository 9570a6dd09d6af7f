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
                              "or a VideoPose3D npz). Options left out take the defaults of "
                              "posecli.training.train.TrainConfig, whose model is "
                              "posecli.lifter.COMPACT_CONFIG (the shipped lifter's). See "
                              "docs/training.md.")(train_cmd)
    app.command("evaluate", cls=ReadableCommand, help="Evaluate lifter weights: P1/P2/MPJVE per action x subject, "
                                 "overlapping and non-overlapping windows.")(evaluate_cmd)
    app.command("export-onnx", cls=ReadableCommand, help="Export lifter weights (or, with --detector hrnet, an MMPose HRNet "
                                    "checkpoint) to ONNX and check parity with torch.")(export_cmd)


def train_cmd(
    out: Path = typer.Option(..., "-o", "--out", help="run folder (config, metrics, checkpoints)"),
    data: Optional[str] = typer.Option(None, help="cmu | humaneva | humaneva17 (H36M-17 layout, to fine-tune a CMU model) | path to a VideoPose3D data_3d_*.npz"),
    data_2d: Optional[str] = typer.Option(None, help="VideoPose3D data_2d_*.npz (with a data_3d path)"),
    cameras: Optional[str] = typer.Option(None, help="camera pickle for VideoPose3D data (Human3.6M format)"),
    frames: Optional[int] = typer.Option(None, help="window length T"),
    width: Optional[int] = typer.Option(None, help="d_m"),
    depth: Optional[int] = typer.Option(None, help="d_l"),
    heads: Optional[int] = typer.Option(None),
    mlp_ratio: Optional[float] = typer.Option(None),
    drop_path: Optional[float] = typer.Option(None, help="stochastic depth"),
    epochs: Optional[int] = typer.Option(None),
    steps_per_epoch: Optional[int] = typer.Option(None),
    batch: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    lr_min: Optional[float] = typer.Option(None),
    schedule: Optional[str] = typer.Option(None, help="cosine (over all epochs) | cosine_time (over --time-limit) | exp (x lr-decay per epoch)"),
    lr_decay: Optional[float] = typer.Option(None),
    warmup_steps: Optional[int] = typer.Option(None),
    weight_decay: Optional[float] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    threads: Optional[int] = typer.Option(None, help="torch threads"),
    init: Optional[str] = typer.Option(None, help="initial weights (fine-tuning)"),
    time_limit: Optional[float] = typer.Option(None, help="stop after this many minutes (0: none)"),
    virtual: float = typer.Option(0.0, help="humaneva: fraction of windows seen by random virtual cameras"),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (bf16 autocast on cuda)"),
    workers: Optional[int] = typer.Option(None, help="processes making training windows (0: none, in the training process)"),
    more_data: Optional[bool] = typer.Option(None, help="cmu: add cmu_more.npz (held-out subjects stay out)"),
    clean: Optional[bool] = typer.Option(None, help="cmu: drop T-pose frames and bad clips, move the Daz rig's hips"),
    aug: Optional[str] = typer.Option(None, help="cmu augmentation: v2 (shipped v2 lifter) | v3 (high cameras, tumbles, limb spread 12 %)"),
    resume: bool = typer.Option(False, help="continue the run in OUT from its last.pt"),
    progress: bool = typer.Option(True, help="rich progress bars"),
) -> None:
    from posecli.training.train import TrainConfig, train

    given = {"data": data, "data_2d": data_2d, "cameras": cameras, "frames": frames, "width": width,
             "depth": depth, "heads": heads, "mlp_ratio": mlp_ratio, "drop_path": drop_path,
             "epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch": batch, "lr": lr,
             "lr_min": lr_min, "schedule": schedule, "lr_decay": lr_decay,
             "warmup_steps": warmup_steps, "weight_decay": weight_decay, "seed": seed,
             "threads": threads, "init": init, "time_limit_min": time_limit, "device": device,
             "workers": workers, "more_data": more_data, "clean": clean, "aug": aug}
    # options left out keep TrainConfig's defaults (the model's: posecli.lifter.COMPACT_CONFIG)
    cfg = TrainConfig(**{k: v for k, v in given.items() if v is not None}, extra={"virtual": virtual})
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
