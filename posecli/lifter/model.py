"""MixSTE: a seq2seq 2D-to-3D pose lifter (Zhang et al., CVPR 2022), written from the paper.

Every joint's 2D trajectory is a token sequence. A linear joint embedding lifts each 2D point
to width ``d_m`` and a learned spatial position embedding tells the joints apart. Then
``d_l`` times: a spatial block lets the J joints of one frame attend to each other, and a
temporal block lets the T frames of one joint attend to each other (a learned temporal
position embedding is added before the first temporal block). A LayerNorm + linear head gives
3D for every joint of every frame: T frames in, T frames out.

Input: (B, T, J, 2) 2D keypoints normalised with :func:`posecli.skeleton.normalize_to_frame`.
Output: (B, T, J, 3) root-relative 3D joints in metres, camera axes (x right, y down, z forward).
The lifter knows nothing of video or detectors: only arrays.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LifterConfig:
    frames: int = 243        # T, the window length the model is trained on
    joints: int = 17         # J
    width: int = 512         # d_m
    depth: int = 8           # d_l: number of (spatial, temporal) block pairs
    heads: int = 8
    mlp_ratio: float = 2.0
    drop_path: float = 0.1   # stochastic depth, rising linearly to this over the blocks
    dropout: float = 0.0
    in_dim: int = 2
    out_dim: int = 3

    @classmethod
    def from_dict(cls, d: dict) -> "LifterConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


PAPER_CONFIG = LifterConfig()  # d_m=512, d_l=8, 8 heads, MLP ratio 2, T=243: ~33.7 M parameters
#: the shipped lifter's configuration (T=81, d_m=64, d_l=4, 4 heads: 274,819 parameters), and what
#: ``posecli train`` trains unless told otherwise (training.train.TrainConfig takes it from here)
COMPACT_CONFIG = LifterConfig(frames=81, width=64, depth=4, heads=4)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) -> (B, L, C), full attention over the L tokens."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-LayerNorm transformer block with stochastic depth on both residual branches."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))
        self.drop_path = drop_path

    def _drop(self, y: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path == 0.0:
            return y
        keep = 1.0 - self.drop_path
        mask = y.new_empty((y.shape[0],) + (1,) * (y.ndim - 1)).bernoulli_(keep)
        return y * mask / keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._drop(self.attn(self.norm1(x)))
        return x + self._drop(self.mlp(self.norm2(x)))


class MixSTE(nn.Module):
    def __init__(self, cfg: LifterConfig = PAPER_CONFIG):
        super().__init__()
        self.cfg = cfg
        c = cfg.width
        self.joint_embed = nn.Linear(cfg.in_dim, c)
        self.spatial_pos = nn.Parameter(torch.zeros(1, cfg.joints, c))
        self.temporal_pos = nn.Parameter(torch.zeros(1, cfg.frames, c))
        self.pos_drop = nn.Dropout(cfg.dropout)
        rates = torch.linspace(0, cfg.drop_path, 2 * cfg.depth).tolist()
        self.spatial = nn.ModuleList(
            Block(c, cfg.heads, cfg.mlp_ratio, rates[2 * i], cfg.dropout) for i in range(cfg.depth))
        self.temporal = nn.ModuleList(
            Block(c, cfg.heads, cfg.mlp_ratio, rates[2 * i + 1], cfg.dropout) for i in range(cfg.depth))
        self.spatial_norm = nn.LayerNorm(c)
        self.temporal_norm = nn.LayerNorm(c)
        self.head = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, cfg.out_dim))
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, J, in_dim) -> (B, T, J, out_dim); T may be at most ``cfg.frames``."""
        b, t, j, _ = x.shape
        if t > self.cfg.frames:
            raise ValueError(f"window of {t} frames is longer than the model's {self.cfg.frames}")
        x = self.joint_embed(x).reshape(b * t, j, -1) + self.spatial_pos
        x = self.pos_drop(x)
        for i, (sblock, tblock) in enumerate(zip(self.spatial, self.temporal)):
            x = sblock(x)                                   # (B*T, J, C): joints of one frame
            x = self.spatial_norm(x) if i == 0 else x
            x = x.reshape(b, t, j, -1).transpose(1, 2).reshape(b * j, t, -1)
            if i == 0:
                x = self.pos_drop(x + self.temporal_pos[:, :t])
            x = tblock(x)                                   # (B*J, T, C): frames of one joint
            x = self.temporal_norm(x) if i == 0 else x
            x = x.reshape(b, j, t, -1).transpose(1, 2).reshape(b * t, j, -1)
        return self.head(x).reshape(b, t, j, -1)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# Checkpoints: {"config": dict, "state_dict": ..., "meta": dict}, read with weights_only=True.

def save_checkpoint(model: MixSTE, path: str | Path, meta: dict | None = None) -> None:
    """Write a checkpoint (CPU tensors) atomically."""
    from posecli.files import atomic_path

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"config": asdict(model.cfg), "state_dict": state, "meta": meta or {}}, tmp)


def load_model(path: str | Path, expected_sha256: str | None = None) -> tuple[MixSTE, dict]:
    """Load a checkpoint after verifying its checksum (see :mod:`posecli.weights`).

    Returns the model in eval mode on the CPU and the checkpoint's metadata, plus ``file`` (the
    resolved path) and ``sha256`` of the file read (it is read and hashed once).
    """
    import io

    from posecli.weights import WeightsError, read_verified

    path, data, digest = read_verified(path, expected_sha256)
    bad = _zip_damage(data)
    if bad:  # a file with no manifest entry is still checked: torch.load ignores the CRCs
        raise WeightsError(f"{path}: not a posecli lifter checkpoint (corrupt: {bad})")
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model = MixSTE(LifterConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
    except Exception as e:  # a truncated or foreign file: one clear line, not a traceback
        # our own words: torch's unpickling advice (weights_only=False ...) runs to six lines
        first = (str(e).strip().splitlines() or [""])[0]
        why = type(e).__name__ if "weights_only" in first or len(first) > 120 else f"{type(e).__name__}: {first}"
        raise WeightsError(f"{path}: not a posecli lifter checkpoint ({why})") from None
    model.eval()
    return model, {**ckpt.get("meta", {}), "file": str(path), "sha256": digest}


def _zip_damage(data: bytes) -> str | None:
    """What is wrong with a ``torch.save`` zip archive (a member failing its CRC-32), or None.

    Files that are not zip archives are left to ``torch.load`` to refuse.
    """
    import io
    import zipfile

    if not data.startswith(b"PK"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        return f"damaged zip archive: {(str(e).splitlines() or [''])[0]}"
    return f"member {bad} fails its CRC-32" if bad else None
