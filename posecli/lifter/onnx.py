"""ONNX export of the MixSTE lifter and an onnxruntime window function.

The exported graph maps ``x`` (B, T, J, 2) float32 to ``y`` (B, T, J, 3) with dynamic B and
T (T <= the model's window). :class:`OnnxSession` is a plain window function of that shape;
flip test-time augmentation and window blending are the runtime's
(:class:`posecli.lifter.runtime.Lifter`), as for torch.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from posecli.files import atomic_path


def export_model(model, path: str | Path, opset: int = 17, meta: dict | None = None) -> Path:
    """Write ``model`` (a MixSTE) to ONNX with dynamic batch and time axes; returns the path."""
    import onnx
    import torch

    from dataclasses import asdict

    path = Path(path)
    model = model.eval()
    x = torch.zeros(2, model.cfg.frames, model.cfg.joints, model.cfg.in_dim)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch", 1: "frames"}, "y": {0: "batch", 1: "frames"}},
                          opset_version=opset)
        proto = onnx.load(str(tmp))
        info = {"config": json.dumps(asdict(model.cfg)), **{k: str(v) for k, v in (meta or {}).items()}}
        for k, v in info.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.save(proto, str(tmp))
    return path


def export_onnx(weights: str | Path, out: str | Path, opset: int = 17, check: bool = True) -> Path:
    """Export a lifter checkpoint to ONNX and (``check``) print the torch/onnxruntime difference."""
    from posecli.lifter.model import load_model

    model, meta = load_model(weights)
    path = export_model(model, out, opset, {"checkpoint_sha256": meta["sha256"]})
    if check:
        err = parity(model, OnnxSession(path))
        print(f"wrote {path}; max |torch - onnxruntime| = {err * 1000:.2e} mm over T in {PARITY_LENGTHS}")
    return path


PARITY_LENGTHS = (1, 7, 27)


def parity(model, runner: "OnnxSession", lengths: tuple[int, ...] = PARITY_LENGTHS, seed: int = 0) -> float:
    """Largest absolute difference (metres) between torch and onnxruntime on random inputs."""
    import torch

    rng = np.random.default_rng(seed)
    worst = 0.0
    for t in lengths + (model.cfg.frames,):
        t = min(t, model.cfg.frames)
        x = rng.normal(0, 0.4, (2, t, model.cfg.joints, 2)).astype(np.float32)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        worst = max(worst, float(np.abs(runner(x) - ref).max()))
    return worst


class OnnxSession:
    """onnxruntime window function: ``__call__`` (B, T, J, 2) -> (B, T, J, 3), no flip."""

    def __init__(self, onnx_path: str | Path, threads: int = 2):
        from posecli.compute import onnx_session

        self.session = onnx_session(onnx_path, threads)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


def cached_session(model, path: str | Path, digest: str, cache: str | Path | None = None,
                   threads: int = 2) -> OnnxSession:
    """Session for a loaded checkpoint: reuses ``<checkpoint>.onnx`` or a cached export whose
    recorded checksum matches ``digest`` (the checkpoint's sha256), else exports into the
    user cache (:func:`posecli.weights.user_cache`)."""
    import onnx

    from posecli.weights import user_cache

    candidates = [Path(path).with_suffix(".onnx"), Path(cache or user_cache()) / f"lifter-{digest[:16]}.onnx"]
    for c in candidates:
        if not c.is_file():
            continue
        try:
            props = {p.key: p.value for p in onnx.load(str(c), load_external_data=False).metadata_props}
        except Exception:  # an unreadable cache file is re-exported below
            continue
        if props.get("checkpoint_sha256") == digest:
            return OnnxSession(c, threads)
    target = candidates[1]
    target.parent.mkdir(parents=True, exist_ok=True)
    export_model(model, target, meta={"checkpoint_sha256": digest})
    return OnnxSession(target, threads)
