"""ONNX export of the MixSTE lifter and an onnxruntime window function.

The exported graph maps ``x`` (B, T, J, 2) float32 to ``y`` (B, T, J, 3) with dynamic B and
T (T <= the model's window). :class:`OnnxLifter` has the call shape of
:func:`posecli.lifter.predict`: (B, T, J, 2) -> (B, T, J, 3), flip test-time augmentation done
outside the graph (the mirrored windows run in the same batch).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from posecli.skeleton import mirror


def export_model(model, path: str | Path, opset: int = 17, meta: dict | None = None) -> Path:
    """Write ``model`` (a MixSTE) to ONNX with dynamic batch and time axes; returns the path."""
    import onnx
    import torch

    path = Path(path)
    model = model.eval()
    x = torch.zeros(2, model.cfg.frames, model.cfg.joints, model.cfg.in_dim)
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch", 1: "frames"}, "y": {0: "batch", 1: "frames"}},
                          opset_version=opset)
    proto = onnx.load(str(tmp))
    from dataclasses import asdict
    info = {"config": json.dumps(asdict(model.cfg)), **{k: str(v) for k, v in (meta or {}).items()}}
    for k, v in info.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path


def export_onnx(weights: str | Path, out: str | Path, opset: int = 17, check: bool = True) -> Path:
    """Export a lifter checkpoint to ONNX and (``check``) print the torch/onnxruntime difference."""
    from posecli.lifter import load_lifter
    from posecli.weights import sha256

    model, _ = load_lifter(weights)
    path = export_model(model, out, opset, {"checkpoint_sha256": sha256(weights)})
    if check:
        err = parity(model, OnnxLifter(path, flip=False))
        print(f"wrote {path}; max |torch - onnxruntime| = {err * 1000:.2e} mm over T in {PARITY_LENGTHS}")
    return path


PARITY_LENGTHS = (1, 7, 27)


def parity(model, runner: "OnnxLifter", lengths: tuple[int, ...] = PARITY_LENGTHS, seed: int = 0) -> float:
    """Largest absolute difference (metres) between torch and onnxruntime on random inputs."""
    import torch

    rng = np.random.default_rng(seed)
    worst = 0.0
    for t in lengths + (model.cfg.frames,):
        t = min(t, model.cfg.frames)
        x = rng.normal(0, 0.4, (2, t, model.cfg.joints, 2)).astype(np.float32)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        worst = max(worst, float(np.abs(runner.run(x) - ref).max()))
    return worst


class OnnxLifter:
    """onnxruntime window function: ``__call__`` (B, T, J, 2) -> (B, T, J, 3), like ``predict``."""

    def __init__(self, onnx_path: str | Path, flip: bool = True, threads: int = 0, perm: np.ndarray | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        cfg = json.loads(meta.get("config", "{}"))
        self.frames = int(cfg.get("frames", 0)) or None
        self.joints = int(cfg.get("joints", 17))
        self.flip = flip
        if perm is None:
            if self.joints == 17:
                from posecli.skeleton import flip_permutation
                perm = flip_permutation()
            else:
                from posecli.data import HUMANEVA
                perm = HUMANEVA.flip_permutation()
        self.perm = np.asarray(perm)

    @classmethod
    def from_checkpoint(cls, model, path: str | Path, flip: bool = True, cache: str | Path | None = None,
                        threads: int = 0, digest: str | None = None) -> "OnnxLifter":
        """Runner for a loaded checkpoint: reuses ``<checkpoint>.onnx`` or a cached export whose
        recorded checksum matches, else exports into the cache (``~/.cache/posecli``).

        digest: the checkpoint's sha256 when the caller has it already (else it is computed)."""
        from posecli.weights import USER_CACHE, sha256

        digest = digest or sha256(path)
        candidates = [Path(path).with_suffix(".onnx"),
                      Path(cache or USER_CACHE) / f"lifter-{digest[:16]}.onnx"]
        for c in candidates:
            if c.is_file():
                try:
                    import onnx
                    props = {p.key: p.value for p in onnx.load(str(c), load_external_data=False).metadata_props}
                except Exception:
                    continue
                if props.get("checkpoint_sha256") == digest:
                    return cls(c, flip, threads)
        target = candidates[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        export_model(model, target, meta={"checkpoint_sha256": digest})
        return cls(target, flip, threads)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Plain forward pass, no flip. (B, T, J, 2) -> (B, T, J, 3)."""
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]

    def __call__(self, x: np.ndarray, batch: int = 32) -> np.ndarray:
        out = []
        for i in range(0, len(x), batch):
            chunk = np.asarray(x[i:i + batch], dtype=np.float32)
            if self.flip:
                both = self.run(np.concatenate([chunk, mirror(chunk, self.perm)]))
                y = (both[:len(chunk)] + mirror(both[len(chunk):], self.perm)) / 2
            else:
                y = self.run(chunk)
            out.append(y)
        return np.concatenate(out)
