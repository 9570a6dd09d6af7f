"""HRNet-w32, the top-down heatmap network of MMPose's COCO models, written for posecli.

Sun et al., "Deep High-Resolution Representation Learning for Human Pose Estimation" (CVPR
2019). A 256x192 RGB crop goes in; 17 heatmaps of 64x48 (stride 4) come out, one per COCO
keypoint. The network keeps a high-resolution branch from start to end and adds lower ones
(1/8, 1/16, 1/32 of the input) stage by stage; after every module each branch receives the sum
of all the others, resampled (strided 3x3 convolutions down, 1x1 convolution + nearest
upsampling up). Only the highest-resolution branch reaches the head, a 1x1 convolution.

Module names follow the state dicts of MMPose (``backbone.*``, ``head.final_layer.*``; the
0.x model zoo's ``keypoint_head.final_layer.*``), so its checkpoints load by a prefix mapping
(:func:`mmpose_state_dict`) with neither mmcv nor mmpose installed. The layer settings are the
facts of MMPose's config ``td-hm_hrnet-w32_8xb64-210e_coco-256x192.py``; the code is ours.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["HRNetConfig", "HRNet", "mmpose_state_dict", "load_mmpose_checkpoint"]


@dataclass(frozen=True)
class HRNetConfig:
    """Widths and depths. ``stages[i]`` = (modules, blocks per branch, channels per branch) of
    stage i + 2; stage 1 is ``stem_blocks`` bottlenecks at 64 (x4) channels."""
    keypoints: int = 17
    stem_blocks: int = 4
    stages: tuple[tuple[int, int, tuple[int, ...]], ...] = (
        (1, 4, (32, 64)), (4, 4, (32, 64, 128)), (3, 4, (32, 64, 128, 256)))


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                               nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (channels unchanged in HRNet-w32)."""
    expansion = 1

    def __init__(self, cin: int, planes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + x)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) with a projected residual when the width changes."""
    expansion = 4

    def __init__(self, cin: int, planes: int) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
                           if cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def _fuse(ci: int, cj: int, i: int, j: int) -> nn.Module | None:
    """What branch j (channels cj) goes through to be added to branch i (channels ci)."""
    if j == i:
        return None
    if j > i:  # lower resolution: match the width, then nearest upsampling by 2^(j - i)
        return nn.Sequential(nn.Conv2d(cj, ci, 1, bias=False), nn.BatchNorm2d(ci),
                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
    # higher resolution: i - j strided 3x3 convolutions, the last one to ci without ReLU
    steps = [_conv_bn(cj, ci if k == i - j - 1 else cj, 3, 2, relu=k != i - j - 1)
             for k in range(i - j)]
    return nn.Sequential(*steps)


class HRModule(nn.Module):
    """Parallel branches of basic blocks, then every branch receives every other (the fusion).
    ``outputs``: how many branches come out (1 for the last module of the last stage)."""

    def __init__(self, channels: tuple[int, ...], blocks: int, outputs: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c, c) for _ in range(blocks))) for c in channels)
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(_fuse(channels[i], channels[j], i, j) for j in range(len(channels)))
            for i in range(outputs))
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for fuse in self.fuse_layers:
            y = 0
            for x, f in zip(xs, fuse):
                y = y + (x if f is None else f(x))
            out.append(self.relu(y))
        return out


def _transition(before: tuple[int, ...], after: tuple[int, ...]) -> nn.ModuleList:
    """Entry to a stage: existing branches keep their width (None) or are re-projected; a new
    branch is made from the lowest existing one by strided 3x3 convolutions."""
    layers: list[nn.Module | None] = []
    for i, c in enumerate(after):
        if i < len(before):
            layers.append(None if c == before[i] else _conv_bn(before[i], c, 3))
        else:
            layers.append(nn.Sequential(*(
                _conv_bn(before[-1], c if k == i - len(before) else before[-1], 3, 2)
                for k in range(i + 1 - len(before)))))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """HRNet-w32 + heatmap head: (N, 3, 256, 192) normalised RGB -> (N, 17, 64, 48) heatmaps.

    Input: RGB, (pixel - mean) / std with MMPose's ImageNet statistics
    (:data:`posecli.detect2d.hrnet.PIXEL_MEAN`, ``PIXEL_STD``). Heatmap cell (x, y) stands for
    crop pixel (4 x, 4 y) (pixel indices), as MMPose's codec encodes its training targets.
    """

    def __init__(self, cfg: HRNetConfig = HRNetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        # stem: two stride-2 3x3 convolutions (1/4 resolution), MMPose names conv1/bn1/conv2/bn2
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(*(Bottleneck(64 if b == 0 else 256, 64)
                                      for b in range(cfg.stem_blocks)))
        before: tuple[int, ...] = (64 * Bottleneck.expansion,)
        for s, (modules, blocks, channels) in enumerate(cfg.stages):
            last_stage = s == len(cfg.stages) - 1
            setattr(self, f"transition{s + 1}", _transition(before, channels))
            setattr(self, f"stage{s + 2}", nn.Sequential(*(
                HRModule(channels, blocks, 1 if last_stage and m == modules - 1 else len(channels))
                for m in range(modules))))
            before = channels
        self.final_layer = nn.Conv2d(before[0], cfg.keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        ys = [self.layer1(x)]
        for s in range(len(self.cfg.stages)):
            transition = getattr(self, f"transition{s + 1}")
            xs = [ys[i] if t is None else t(ys[min(i, len(ys) - 1)])
                  for i, t in enumerate(transition)]
            ys = xs
            for module in getattr(self, f"stage{s + 2}"):
                ys = module(ys)
        return self.final_layer(ys[0])


# ---------------------------------------------------------------------------------------------
# MMPose checkpoints
# ---------------------------------------------------------------------------------------------

_HEAD_PREFIXES = ("head.final_layer.", "keypoint_head.final_layer.")


def mmpose_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MMPose key names -> ours: ``backbone.X`` -> ``X``; ``head.final_layer.X`` (MMPose 1.x) or
    ``keypoint_head.final_layer.X`` (0.x) -> ``final_layer.X``. Other keys (e.g. a data
    preprocessor's) are dropped. A state dict already in our names passes through."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.startswith("backbone."):
            out[k[len("backbone."):]] = v
        elif k.startswith(_HEAD_PREFIXES):
            out["final_layer." + k.split("final_layer.", 1)[1]] = v
        elif not k.startswith(("head.", "keypoint_head.", "data_preprocessor.")) and "." in k:
            out[k] = v
    return out


class _Placeholder:
    """Stands in for any object of a checkpoint other than tensors and plain containers (numpy
    arrays, config objects in MMPose's ``meta``): built and filled without running any code."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass

    def __call__(self, *args, **kwargs) -> "_Placeholder":  # a placeholder for a function
        return _Placeholder()


class _StateDictUnpickler(pickle.Unpickler):
    """Reads torch checkpoints for their tensors only: torch's own rebuild functions and
    storages and ``collections.OrderedDict`` are real, every other global is a
    :class:`_Placeholder`, so a checkpoint's pickle can never call arbitrary code."""

    def find_class(self, module: str, name: str):
        if (module == "collections" and name == "OrderedDict") or (
                module.split(".")[0] == "torch" and (name.startswith("_rebuild_")
                                                    or name.endswith("Storage"))):
            return super().find_class(module, name)
        return _Placeholder


class _StateDictPickle:
    """A ``pickle_module`` for ``torch.load`` that uses :class:`_StateDictUnpickler`."""
    Unpickler = _StateDictUnpickler
    load = staticmethod(lambda f, **kw: _StateDictUnpickler(f, **kw).load())


def _load(path: Path) -> object:
    """``torch.load`` of a checkpoint, tensors only. Checkpoints that MMPose (mmengine) writes
    carry numpy arrays and config objects in their ``meta``, which torch's ``weights_only``
    loader refuses; those are read with a loader that replaces them by placeholders."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(str(path), map_location="cpu", weights_only=False,
                          pickle_module=_StateDictPickle)


def load_mmpose_checkpoint(path: str | Path, cfg: HRNetConfig = HRNetConfig()) -> HRNet:
    """An :class:`HRNet` in eval mode with the weights of an MMPose ``.pth`` checkpoint (a
    ``{"state_dict": ...}`` dict or a bare state dict).

    Raises ValueError (with the offending keys) when the file is not an HRNet-w32 checkpoint:
    every key and shape must match, so a checkpoint of another model cannot half-load.
    """
    obj = _load(Path(path))
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a checkpoint (expected a dict with a state_dict)")
    model = HRNet(cfg)
    mapped = mmpose_state_dict(state)
    ours = model.state_dict()
    missing = [k for k in ours if k not in mapped]
    unexpected = [k for k in mapped if k not in ours]
    wrong = [k for k in ours if k in mapped and tuple(mapped[k].shape) != tuple(ours[k].shape)]
    if missing or unexpected or wrong:
        show = lambda ks: ", ".join(ks[:3]) + (f" (+{len(ks) - 3} more)" if len(ks) > 3 else "")  # noqa: E731
        parts = [f"{name}: {show(ks)}" for name, ks in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if ks]
        raise ValueError(f"{path}: not an HRNet-w32 (COCO-17) checkpoint; " + "; ".join(parts))
    model.load_state_dict(mapped)
    return model.eval()
