"""Train the MixSTE lifter: CMU mocap with virtual cameras, HumanEva-I, or VideoPose3D npz data.

A run folder holds ``config.json``, ``metrics.json`` (one entry per epoch), ``last.pt`` (model,
optimiser and progress, for ``--resume``) and ``best.pt`` (model only, the
:func:`posecli.lifter.save_checkpoint` format that ``load_lifter`` reads with weights_only=True).
Each epoch reseeds its generators from (seed, epoch), so a resumed run continues exactly.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from posecli.files import atomic_path
from posecli.lifter import COMPACT_CONFIG, LifterConfig, MixSTE, count_parameters, from_model, save_checkpoint
from posecli.skeleton import H36M17, HUMANEVA15, HUMANEVA15_TO_H36M17, Layout
from posecli.training.augment import AUG_V3, CmuAug
from posecli.training.datasets import MixedSampler, SequenceSampler, humaneva_as_h36m, load_humaneva, load_vp3d
from posecli.training.losses import joint_weights, mixste_loss
from posecli.training.mocap import (HELD_OUT_CMU, CmuSampler, cmu_eval_sequences, cmu_files,
                                    humaneva_virtual_sampler, load_cmu)


@dataclass
class TrainConfig:
    data: str = "cmu"              # cmu | humaneva | path to a VideoPose3D data_3d_*.npz
    data_2d: str = ""              # VideoPose3D data_2d_*.npz (with a data_3d path)
    cameras: str = ""              # camera pickle for VideoPose3D data
    train_subjects: tuple[str, ...] = ()
    test_subjects: tuple[str, ...] = ()
    # the model: defaults from the one lifter configuration (posecli.lifter.COMPACT_CONFIG)
    frames: int = COMPACT_CONFIG.frames
    width: int = COMPACT_CONFIG.width
    depth: int = COMPACT_CONFIG.depth
    heads: int = COMPACT_CONFIG.heads
    mlp_ratio: float = COMPACT_CONFIG.mlp_ratio
    drop_path: float = COMPACT_CONFIG.drop_path
    dropout: float = COMPACT_CONFIG.dropout
    epochs: int = 20
    steps_per_epoch: int = 100
    batch: int = 32
    lr: float = 1e-3
    lr_min: float = 1e-5
    schedule: str = "cosine"       # cosine (all epochs) | cosine_time (over time_limit_min) | exp
    lr_decay: float = 0.99
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    tc_weight: float = 0.5
    vel_weight: float = 2.0
    seed: int = 0
    threads: int = 1
    init: str = ""                 # start from these weights (fine-tuning)
    val_cameras: int = 1           # CMU: virtual cameras per held-out clip for validation
    time_limit_min: float = 0.0    # stop after this many minutes (0: no limit)
    device: str = "cpu"            # auto | cpu | cuda
    workers: int = 0               # processes making training windows (0: in the training process)
    more_data: bool = False        # CMU: add cmu_more.npz (its held-out subjects stay out)
    clean: bool = False            # CMU: drop T-pose frames and bad clips, move the Daz hips
    daz_knees: bool = True         # CMU, with clean: give the Daz knees the other rigs' flexion
    aug: str = "v2"                # CMU augmentation: v2 (CmuAug()) | v3 (data.AUG_V3)
    extra: dict = field(default_factory=dict)

    def lifter_config(self, joints: int) -> LifterConfig:
        return LifterConfig(frames=self.frames, joints=joints, width=self.width, depth=self.depth,
                            heads=self.heads, mlp_ratio=self.mlp_ratio, drop_path=self.drop_path,
                            dropout=self.dropout)


def build_data(cfg: TrainConfig):
    """(sampler, validation sequences, layout, description) for the configured data."""
    if cfg.data == "cmu":
        held = tuple(cfg.test_subjects) or HELD_OUT_CMU
        files = cmu_files(cfg.more_data)
        train = load_cmu(files, subjects=tuple(cfg.train_subjects) or None, exclude=held, clean=cfg.clean,
                         daz_knees=cfg.daz_knees)
        val = cmu_eval_sequences(load_cmu(subjects=held), cfg.val_cameras, seed=0)
        desc = {"dataset": f"CMU mocap ({' + '.join(f.name for f in files)}) with random virtual cameras",
                "train_subjects": sorted({c.subject for c in train}), "held_out_subjects": list(held),
                "train_clips": len(train), "train_frames": int(sum(len(c.world) for c in train)),
                "clean": cfg.clean, "daz_knees": cfg.clean and cfg.daz_knees, "augmentation": cfg.aug}
        return CmuSampler(train, cfg.frames, AUG_V3 if cfg.aug == "v3" else CmuAug()), val, H36M17, desc
    if cfg.data in ("humaneva", "humaneva17"):
        train = load_humaneva("Train")
        val = load_humaneva("Validate")
        p_virtual = float(cfg.extra.get("virtual", 0.0))
        desc = {"dataset": "HumanEva-I Train/S1-S3 Walk+Jog, 3 cameras, GT 2D (research only)",
                "train_sequences": len(train), "train_frames": int(sum(len(s.x) for s in train)),
                "virtual_views": p_virtual, "layout": cfg.data}
        if cfg.data == "humaneva17":  # H36M17-17 layout, e.g. fine-tuning a CMU model
            sampler = SequenceSampler(humaneva_as_h36m(train), cfg.frames, H36M17)
            if p_virtual > 0:
                sampler = MixedSampler(sampler, humaneva_virtual_sampler(train, cfg.frames, h36m=True), p_virtual)
            desc["eval_joints"] = list(HUMANEVA15_TO_H36M17)
            return sampler, humaneva_as_h36m(val), H36M17, desc
        sampler = SequenceSampler(train, cfg.frames, HUMANEVA15)
        if p_virtual > 0:
            sampler = MixedSampler(sampler, humaneva_virtual_sampler(train, cfg.frames), p_virtual)
        return sampler, val, HUMANEVA15, desc
    tr = tuple(cfg.train_subjects) or ("S1", "S5", "S6", "S7", "S8")
    te = tuple(cfg.test_subjects) or ("S9", "S11")
    train = load_vp3d(cfg.data, cfg.data_2d, tr, cfg.cameras)
    val = load_vp3d(cfg.data, cfg.data_2d, te, cfg.cameras)
    layout = H36M17 if train[0].x.shape[1] == 17 else Layout(
        "custom", tuple(f"j{i}" for i in range(train[0].x.shape[1])), (-1,) * train[0].x.shape[1], (), ())
    desc = {"dataset": f"VideoPose3D npz {cfg.data}", "train_subjects": list(tr), "test_subjects": list(te)}
    return SequenceSampler(train, cfg.frames, layout), val, layout, desc


def lr_at(cfg: TrainConfig, step: int, elapsed_s: float = 0.0) -> float:
    """Learning rate at a global step: linear warm-up, then cosine over all steps ("cosine"),
    cosine over the time limit ("cosine_time": robust to a shared, busy CPU) or per-epoch
    exponential decay ("exp")."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "exp":
        return cfg.lr * cfg.lr_decay ** (step // cfg.steps_per_epoch)
    if cfg.schedule == "cosine_time":
        p = min(1.0, elapsed_s / (cfg.time_limit_min * 60))
    else:
        total = max(1, cfg.epochs * cfg.steps_per_epoch - cfg.warmup_steps)
        p = min(1.0, (step - cfg.warmup_steps) / total)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * p))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available to torch")
    return torch.device(name)


_WORKER_SAMPLER = None  # the sampler, inherited by forked worker processes


def _init_worker(sampler) -> None:
    global _WORKER_SAMPLER
    _WORKER_SAMPLER = sampler
    torch.set_num_threads(1)


def _make_batch(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    """One batch of (B, T, J, 2), (B, T, J, 3) from the generator of (seed, epoch, step)."""
    seed, epoch, step, size = args
    return _WORKER_SAMPLER.batch(np.random.default_rng([seed, epoch, step]), size)


class BatchSource:
    """Training batches in step order, made in ``workers`` forked processes (or here when 0),
    at most ``4 * workers`` ahead. Windows depend only on (seed, epoch, step), not on workers."""

    def __init__(self, sampler, seed: int, batch: int, workers: int):
        import multiprocessing as mp
        from collections import deque

        self.sampler, self.seed, self.size = sampler, seed, batch
        self.pool = mp.get_context("fork").Pool(workers, _init_worker, (sampler,)) if workers > 0 else None
        self.ahead = 4 * workers
        self.queue: deque = deque()
        self.next_key: tuple[int, int] | None = None

    def get(self, epoch: int, step: int, steps_per_epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self.pool is None:
            return self.sampler.batch(np.random.default_rng([self.seed, epoch, step]), self.size)
        if self.next_key != (epoch, step):  # first call, or a jump: start queueing afresh
            self.queue.clear()
            self.next_key = (epoch, step)
        while len(self.queue) < self.ahead:
            e, i = self.next_key
            self.queue.append(self.pool.apply_async(_make_batch, ((self.seed, e, i, self.size),)))
            self.next_key = (e, i + 1) if i + 1 < steps_per_epoch else (e + 1, 0)
        return self.queue.popleft().get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()


def train(cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Run (or resume) a training; returns the final metrics history entry."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from posecli.training.evaluate import evaluate_sequences

    console = Console()
    torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sampler, val, layout, desc = build_data(cfg)
    source = BatchSource(sampler, cfg.seed, cfg.batch, cfg.workers)  # fork before CUDA starts
    device = resolve_device(cfg.device)
    amp = device.type == "cuda"  # bf16 autocast on the GPU; fp32 on the CPU
    torch.manual_seed(cfg.seed)
    model = MixSTE(cfg.lifter_config(layout.joints))
    if cfg.init:
        ck = torch.load(cfg.init, map_location="cpu", weights_only=True)
        _load_compatible(model, ck["state_dict"])
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    w = joint_weights(layout.names).to(device)
    history: list[dict] = []
    start_epoch, elapsed, best = 0, 0.0, float("inf")
    last = out / "last.pt"
    if resume and (last.is_file() or _parts(last)):
        st = load_split(last)
        model.load_state_dict(st["state_dict"])
        opt.load_state_dict(st["optimizer"])
        start_epoch, elapsed, best = st["epoch"] + 1, st["elapsed"], st["best"]
        history = json.loads((out / "metrics.json").read_text())[:start_epoch]
        console.print(f"resumed {out} at epoch {start_epoch}")
    (out / "config.json").write_text(json.dumps(
        {"train": asdict(cfg), "lifter": asdict(model.cfg), "data": desc,
         "parameters": count_parameters(model), "device": _device_name(device), "torch": torch.__version__},
        indent=1))
    console.print(f"{desc['dataset']}: {count_parameters(model):,} parameters, "
                  f"{cfg.epochs} epochs x {cfg.steps_per_epoch} steps x {cfg.batch} windows of {cfg.frames}")
    lr = cfg.lr
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        model.train()
        sums: dict[str, float] = {}
        with Progress(TextColumn(f"epoch {epoch + 1}/{cfg.epochs}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console,
                      disable=not progress) as bar:
            task = bar.add_task("train", total=cfg.steps_per_epoch, info="")
            steps_done = 0
            for i in range(cfg.steps_per_epoch):
                step = epoch * cfg.steps_per_epoch + i
                now = elapsed + time.time() - t0
                if cfg.time_limit_min and now > cfg.time_limit_min * 60:
                    break
                lr = lr_at(cfg, step, now)
                for g in opt.param_groups:
                    g["lr"] = lr
                steps_done += 1
                x, y = source.get(epoch, i, cfg.steps_per_epoch)
                x = torch.from_numpy(x).to(device, non_blocking=True)
                y = torch.from_numpy(y).to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    pred = model(x)
                loss, parts = mixste_loss(pred.float(), y, w, cfg.tc_weight, cfg.vel_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                parts["loss"] = loss.item()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(task, advance=1, info=f"loss {parts['loss']:.4f}")
        train_time = time.time() - t0
        model.eval()
        res = evaluate_sequences(from_model(model, flip=True), val, desc.get("eval_joints"))["all"]
        elapsed += time.time() - t0
        entry = {"epoch": epoch + 1, "lr": lr, "steps": steps_done,
                 **{f"train_{k}": v / max(1, steps_done) for k, v in sums.items()},
                 "val_p1": res["p1"], "val_p2": res["p2"], "val_mpjve": res["mpjve"],
                 "epoch_train_s": train_time, "elapsed_s": elapsed}
        history.append(entry)
        is_best = res["p1"] < best
        best = float(min(best, res["p1"]))
        meta = {"epoch": epoch + 1, "val": res, "data": desc, "train": asdict(cfg)}
        if is_best:
            save_checkpoint(model, out / "best.pt", meta)
        save_checkpoint(model, out / "final.pt", meta)
        save_split({"state_dict": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                    "elapsed": float(elapsed), "best": float(best)}, last)
        (out / "metrics.json").write_text(json.dumps(history, indent=1))
        console.print(f"epoch {epoch + 1}: loss {entry.get('train_loss', float('nan')):.4f}  val P1 {res['p1']:.1f} "
                      f"P2 {res['p2']:.1f} MPJVE {res['mpjve']:.2f} mm  lr {entry['lr']:.2e}  "
                      f"{train_time:.0f}s train, {elapsed / 60:.1f} min total{'  *best' if is_best else ''}")
        if cfg.time_limit_min and (elapsed > cfg.time_limit_min * 60 or steps_done < cfg.steps_per_epoch):
            console.print(f"time limit of {cfg.time_limit_min} min reached")
            break
    source.close()
    return history[-1] if history else {}


PART_BYTES = 15 * 2 ** 20  # checkpoint files stay below 16 MB (the GPU machine's transfer limit)


def _parts(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".part*"))


def save_split(obj: dict, path: Path, part_bytes: int = PART_BYTES) -> None:
    """torch.save ``obj`` as ``path`` or, when larger than ``part_bytes``, as ``path.part000``,
    ``path.part001`` ...; every file is written under a temporary name, then renamed."""
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    chunks = [data] if len(data) <= part_bytes else [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)]
    names = [path] if len(chunks) == 1 else [path.with_name(f"{path.name}.part{k:03d}") for k in range(len(chunks))]
    for old in _parts(path) + ([path] if len(chunks) > 1 else []):
        if old not in names:
            old.unlink(missing_ok=True)
    for name, chunk in zip(names, chunks):
        with atomic_path(name) as tmp:
            tmp.write_bytes(chunk)


def load_split(path: Path) -> dict:
    """Read what :func:`save_split` wrote (one file or its parts), on the CPU."""
    import io

    parts = _parts(path)
    data = b"".join(p.read_bytes() for p in parts) if parts else path.read_bytes()
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _load_compatible(model: MixSTE, state: dict) -> None:
    """Load weights whose shapes match (a longer temporal embedding is cropped; other layouts
    keep the model's own spatial embedding)."""
    own = model.state_dict()
    for k, v in state.items():
        if k not in own:
            continue
        if k == "temporal_pos" and v.shape[1] >= own[k].shape[1]:
            v = v[:, :own[k].shape[1]]
        if v.shape == own[k].shape:
            own[k] = v
    model.load_state_dict(own)


CMU_ACK = ("The data used in this project was obtained from mocap.cs.cmu.edu. "
           "The database was created with funding from NSF EIA-0196217.")


def ship_weights(checkpoint: str | Path, dest: str | Path, entry: dict, data: str) -> dict:
    """Copy a checkpoint's model (no optimiser state) to ``dest`` in the ``save_checkpoint``
    format and record it in the ``manifest.json`` beside it under the key ``dest.name``.

    ``entry``: manifest fields besides sha256/bytes/config (data, metrics, licence ...).
    ``data``: short description stored in the checkpoint's metadata (shown as ``trained_on``).
    Returns the manifest entry written.
    """
    from posecli.weights import sha256

    dest = Path(dest)
    ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = MixSTE(LifterConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["state_dict"])
    meta = ck.get("meta", {})
    save_checkpoint(model, dest, {"data": data, "epoch": meta.get("epoch"), "train": meta.get("train", {})})
    manifest_path = dest.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"files": {}}
    full = {"sha256": sha256(dest), "bytes": dest.stat().st_size, "kind": "lifter",
            "config": asdict(model.cfg), "parameters": count_parameters(model), **entry}
    manifest.setdefault("files", {})[dest.name] = full
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return full
