"""Reference artefacts from MMPose's own HRNet-w32 (COCO, 256x192), randomly initialised.

Builds MMPose 1.3.2's model from its packaged config
``td-hm_hrnet-w32_8xb64-210e_coco-256x192.py``, overwrites every parameter and buffer with
seeded random values (BatchNorm far from identity, so a wrong key mapping shows), runs the
network (backbone + HeatmapHead, no flip test, no decoding) in eval mode and writes to --out:

- ``hrnet_w32_random.pth``: ``{"meta": {...}, "state_dict": ...}``, keys as MMPose 1.x writes
  them (``backbone.conv1.weight`` ... ``head.final_layer.bias``);
- ``hrnet_w32_random_v0.pth``: the same tensors with ``head.`` renamed ``keypoint_head.``, the
  layout of the MMPose 0.x model-zoo files (hrnet_w32_coco_256x192-c78dce93_20200708.pth);
- ``reference.npz``: ``input`` (2,3,256,192) float32 (the network input, i.e. already
  normalised), ``heatmaps`` (2,17,64,48), ``heatmaps_f64`` (the same weights run in float64),
  plus intermediate outputs for locating a mismatch: ``feat_stem`` (after conv2/bn2/relu),
  ``feat_layer1``, ``feat_stage{2,3,4}_b{i}`` (stage4 outputs branch 0 only);
- ``keys.txt``: every state-dict key with its shape, one per line.

Both checkpoints are loaded back into a fresh MMPose model with mmengine's ``load_checkpoint``
(the v0 one through MMPose's own keypoint_head -> head hook) and must reproduce the heatmaps.
``--time`` also prints the median seconds of 10 forwards of a (1,3,256,192) input on 2 threads.

Random weights make activations grow through the residual sums: heatmaps reach ~4e4, so compare
relative to max |heatmaps| (float32 rounding is ~1e-6 of it: see ``heatmaps_f64``).

Throw-away environment (never a project dependency; Python 3.11, 2 cores; measured times):

    python3 -m venv /tmp/mmvenv && V=/tmp/mmvenv/bin
    $V/pip install torch==2.13.0                                # 17 s, the CPU wheel on disk
    $V/pip install "setuptools<81" wheel numpy cython           # 5 s (numpy 2.4)
    MMCV_WITH_OPS=1 MAX_JOBS=2 $V/pip install --no-build-isolation mmcv==2.1.0
        # 20 min compile (another job shared the 2 cores); pulls mmengine 0.10.7, opencv-python.
        # MMCV_WITH_OPS=0 is not enough: the sdist then names itself mmcv-lite (pip rejects
        # it), and with mmcv-lite 2.1.0 from PyPI (no ops) `import mmpose.models` fails, as
        # heads/transformer_heads/edpose_head.py imports mmcv.ops
    $V/pip install json-tricks munkres scipy six                # 5 s
    $V/pip install --no-deps mmpose==1.3.2 mmdet==3.2.0         # 3 s; --no-deps skips chumpy
        # (broken on 3.11); mmdet only because heads/hybrid_heads/rtmo_head.py imports mmdet.utils
    $V/pip install --no-build-isolation --no-binary xtcocotools xtcocotools  # 7 s, for numpy 2
    # torchvision stub: the import chain needs only ToPILImage (visualization/simcc_vis.py)
    mkdir -p /tmp/mmstub/torchvision/transforms
    echo "from .transforms import ToPILImage" > /tmp/mmstub/torchvision/__init__.py
    echo "class ToPILImage: pass" > /tmp/mmstub/torchvision/transforms/__init__.py

Run:

    PYTHONPATH=/tmp/mmstub /tmp/mmvenv/bin/python tools/hrnet_parity/mmpose_dump.py \
        --out /work/cache/hrnet_parity --seed 0 --time
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

CONFIG_REL = ("configs/body_2d_keypoint/topdown_heatmap/coco/"
              "td-hm_hrnet-w32_8xb64-210e_coco-256x192.py")
INPUT_SHAPE = (2, 3, 256, 192)


def config_path() -> Path:
    """MMPose's packaged copy of the config (inside the installed package's .mim folder)."""
    import mmpose

    path = Path(mmpose.__file__).parent / ".mim" / CONFIG_REL
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def build_model() -> nn.Module:
    """MMPose's TopdownPoseEstimator from its config, no checkpoint, on the CPU, eval mode."""
    from mmpose.apis import init_model

    return init_model(str(config_path()), checkpoint=None, device="cpu").eval()


def randomise_(model: nn.Module, seed: int) -> None:
    """Overwrite every parameter and buffer of the model in place with seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    done: set[str] = set()
    with torch.no_grad():
        for mod_name, mod in model.named_modules():
            prefix = f"{mod_name}." if mod_name else ""
            if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) / math.sqrt(fan_in))
                done.add(prefix + "weight")
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.1)
                    done.add(prefix + "bias")
            elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
                n = mod.num_features
                mod.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                mod.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                mod.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                mod.num_batches_tracked.fill_(int(torch.randint(1, 10**6, (1,), generator=gen)))
                done.update(prefix + k for k in ("weight", "bias", "running_mean",
                                                 "running_var", "num_batches_tracked"))
    missing = sorted(set(model.state_dict()) - done)
    if missing:
        raise RuntimeError(f"state-dict entries not randomised: {missing}")


def forward_with_features(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Heatmaps plus the outputs of the stem, layer1 and each stage (captured by hooks)."""
    bb = model.backbone
    feats: dict[str, np.ndarray] = {}

    def keep(name: str):
        def hook(_mod: nn.Module, inputs: tuple, output) -> None:
            if name == "layer1":  # layer1's input is the stem's output
                feats["feat_stem"] = inputs[0].detach().numpy().copy()
            outs = output if isinstance(output, (list, tuple)) else [output]
            for i, t in enumerate(outs):
                key = f"feat_{name}" if name == "layer1" else f"feat_{name}_b{i}"
                feats[key] = t.detach().numpy().copy()
        return hook

    handles = [getattr(bb, n).register_forward_hook(keep(n))
               for n in ("layer1", "stage2", "stage3", "stage4")]
    try:
        with torch.no_grad():
            heatmaps = model(x, None, mode="tensor")
    finally:
        for h in handles:
            h.remove()
    return {"heatmaps": heatmaps.numpy(), **feats}


def time_forward(model: nn.Module, runs: int = 10, warmup: int = 3) -> float:
    """Median seconds of one (1,3,256,192) forward on 2 threads."""
    torch.set_num_threads(2)
    x = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(1))
    times: list[float] = []
    with torch.no_grad():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            model(x, None, mode="tensor")
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reload_check(ckpt: Path, x: torch.Tensor, expected: np.ndarray) -> float:
    """Max |difference| of the heatmaps of a fresh MMPose model loaded from ckpt."""
    from mmengine.runner import load_checkpoint

    model = build_model()
    load_checkpoint(model, str(ckpt), map_location="cpu", strict=True)
    with torch.no_grad():
        out = model.eval()(x, None, mode="tensor").numpy()
    return float(np.abs(out - expected).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time", action="store_true", help="also time a (1,3,256,192) forward")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import mmpose

    torch.manual_seed(args.seed)
    model = build_model()
    randomise_(model, args.seed)
    model.eval()

    x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(args.seed + 12345))
    arrays = forward_with_features(model, x)
    with torch.no_grad():  # float64 run of the same weights: the float32 rounding level
        arrays["heatmaps_f64"] = copy.deepcopy(model).double()(
            x.double(), None, mode="tensor").numpy()
    np.savez(args.out / "reference.npz", input=x.numpy(), **arrays)

    state = model.state_dict()  # an OrderedDict carrying MMPose's _metadata (module versions)
    meta = {
        "mmpose_version": str(mmpose.__version__),
        "torch_version": str(torch.__version__),
        "config": CONFIG_REL,
        "seed": args.seed,
        "note": "random weights for parity tests, not a trained model",
        "dataset_meta": {
            "dataset_name": "coco",
            "keypoint_names": [model.dataset_meta["keypoint_id2name"][i] for i in range(17)],
            "flip_indices": [int(i) for i in model.dataset_meta["flip_indices"]],
        },
    }
    torch.save({"meta": meta, "state_dict": state}, args.out / "hrnet_w32_random.pth")
    # 0.x layout: plain OrderedDict, no module-version metadata, head under "keypoint_head."
    v0_state = OrderedDict(
        ("keypoint_head." + k[len("head."):] if k.startswith("head.") else k, v)
        for k, v in state.items())
    v0_meta = {k: v for k, v in meta.items() if k != "dataset_meta"}
    torch.save({"meta": v0_meta, "state_dict": v0_state}, args.out / "hrnet_w32_random_v0.pth")

    (args.out / "keys.txt").write_text(
        "".join(f"{k} {tuple(v.shape)}\n" for k, v in state.items()))

    hm = arrays["heatmaps"]
    print(f"{len(state)} state-dict entries, "
          f"{sum(v.numel() for k, v in state.items() if v.is_floating_point()):,} float values")
    print(f"heatmaps {hm.shape} mean {hm.mean():.4g} std {hm.std():.4g} "
          f"min {hm.min():.4g} max {hm.max():.4g}")
    f64_err = np.abs(arrays["heatmaps_f64"] - hm).max()
    print(f"float32 vs float64: max |diff| {f64_err:.3g} "
          f"({f64_err / np.abs(hm).max():.2g} of max |heatmap|)")
    for name in ("hrnet_w32_random.pth", "hrnet_w32_random_v0.pth"):
        print(f"reload {name}: max |diff| {reload_check(args.out / name, x, hm):.3g}")
    if args.time:
        print(f"forward (1,3,256,192), 2 threads, median of 10: {time_forward(model):.4f} s")


if __name__ == "__main__":
    main()
