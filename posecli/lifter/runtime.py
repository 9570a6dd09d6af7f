"""The one way to run the lifter: a window function (torch or onnxruntime) plus flip test-time
augmentation and window blending, applied once here for every caller (``posecli lift``,
evaluation, training validation, benchmarks).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from posecli.errors import UsageError
from posecli.lifter.windows import STRATEGIES, lift_centred, lift_hardcut, lift_windows
from posecli.skeleton import Layout, layout_for, mirror
from posecli.weights import LIFTER

# (B, T, J, 2) float32 normalised 2D -> (B, T, J, 3) root-relative metres; no flip inside.
WindowFn = Callable[[np.ndarray], np.ndarray]

DEFAULT_WEIGHTS = LIFTER  # the shipped checkpoint


class Lifter:
    """A loaded lifter: ``lifter(x2d)`` maps (N, J, 2) normalised 2D to (N, J, 3) metres.

    Args:
        forward: the plain window function (torch model or onnxruntime session).
        frames: the model's window length T.
        layout: the joint layout (its left/right swap is used by the flip).
        flip: flip test-time augmentation: the mirrored windows (x -> -x, left <-> right) run in
            the same batch, their output is mirrored back and averaged with the plain one.
        stride: frames between window starts, 1..T (default T // 2: half-overlapping windows).
        info: what the JSON records about the lifter.
        strategy: how windows cover a sequence: "blend" (seq2seq windows ``stride`` apart,
            blended; the default), "centre" (one window per output frame, centre kept) or
            "hardcut" (non-overlapping windows, concatenated). The last two are for comparison.
    """

    def __init__(self, forward: WindowFn, frames: int, layout: Layout, flip: bool = True,
                 stride: int | None = None, info: dict | None = None, batch: int = 32,
                 strategy: str = "blend"):
        stride = max(1, frames // 2) if stride is None else int(stride)
        if not 1 <= stride <= frames:
            raise UsageError(f"--stride must be between 1 and the lifter's window of {frames} frames, got {stride}")
        if strategy not in STRATEGIES:
            raise UsageError(f"unknown window strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
        self.forward, self.frames, self.layout = forward, frames, layout
        self.flip, self.stride, self.batch, self.strategy = flip, stride, batch, strategy
        self.perm = layout.flip_permutation()
        self.info = {**(info or {}), "window": frames, "stride": stride, "flip_test": flip}
        self.flip_stats = [0.0, 0]  # sum and count of |plain - mirrored back| (m), per joint
        if strategy != "blend":  # the default leaves the recorded block as it always was
            self.info["window_strategy"] = strategy

    def flip_disagreement(self) -> float | None:
        """Mean distance (m) between the plain and the mirrored-back prediction over every joint
        of every window lifted since the last call (None without flip); resets the count."""
        total, count = self.flip_stats
        self.flip_stats = [0.0, 0]
        return total / count if count else None

    def windows(self, x: np.ndarray, disagreement: bool = False) -> np.ndarray:
        """Whole windows with flip TTA. (B, T, J, 2) -> (B, T, J, 3), T <= frames; with
        ``disagreement`` (B, T, J, 4), the 4th channel each joint's flip disagreement (m)."""
        return self._windows(x, disagreement)

    def _windows(self, x: np.ndarray, with_disagreement: bool) -> np.ndarray:
        """:meth:`windows`; with ``with_disagreement`` a 4th channel holds each joint's distance
        (m) between the plain and the mirrored-back prediction (0 without flip)."""
        out = []
        for i in range(0, len(x), self.batch):
            chunk = np.ascontiguousarray(x[i:i + self.batch], dtype=np.float32)
            if not self.flip:
                y = self.forward(chunk)
                out.append(np.concatenate([y, np.zeros(y.shape[:-1] + (1,), y.dtype)], -1)
                           if with_disagreement else y)
                continue
            both = self.forward(np.concatenate([chunk, mirror(chunk, self.perm)]))
            plain, back = both[:len(chunk)], mirror(both[len(chunk):], self.perm)
            d = np.linalg.norm(plain - back, axis=-1)
            self.flip_stats = [self.flip_stats[0] + float(d.sum()), self.flip_stats[1] + d.size]
            y = (plain + back) / 2
            out.append(np.concatenate([y, d[..., None].astype(y.dtype)], -1)
                       if with_disagreement else y)
        return np.concatenate(out)

    def __call__(self, x2d: np.ndarray) -> np.ndarray:
        """(N, J, 2) normalised 2D of any length -> (N, J, 3) over blended windows."""
        return self._cover(self.windows, x2d)

    def lift(self, x2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, J, 2) normalised 2D -> (N, J, 3) metres (as ``lifter(x2d)``) and (N, J) each
        joint's flip disagreement in metres (plain vs mirrored-back prediction, blended over
        the windows like the poses; 0 without flip): a per-joint confidence for the fusion."""
        y = self._cover(lambda w: self._windows(w, True), x2d)
        return y[..., :3], y[..., 3]

    def _cover(self, fn, x2d: np.ndarray) -> np.ndarray:
        """Run window function ``fn`` over a whole sequence with this lifter's strategy."""
        if self.strategy == "centre":
            return lift_centred(fn, x2d, self.frames)
        if self.strategy == "hardcut":
            return lift_hardcut(fn, x2d, self.frames)
        return lift_windows(fn, x2d, self.frames, self.stride)


def torch_forward(model, device: str | None = None) -> WindowFn:
    """A window function running ``model`` (a MixSTE) without gradients, on its device."""
    import torch

    dev = next(model.parameters()).device if device is None else torch.device(device)

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x).to(dev)).float().cpu().numpy()
    return forward


def from_model(model, flip: bool = True, stride: int | None = None, info: dict | None = None) -> Lifter:
    """A :class:`Lifter` over a loaded torch model (evaluation, training validation)."""
    model.eval()
    return Lifter(torch_forward(model), model.cfg.frames, layout_for(model.cfg.joints), flip, stride, info)


def load_lifter(weights: str | Path | None = None, *, backend: str = "torch", flip: bool = True,
                stride: int | None = None, threads: int = 2, strategy: str = "blend") -> Lifter:
    """Load lifter weights (checksum verified) and wrap them in the runtime.

    backend: "torch", or "onnx" (onnxruntime: for the shipped checkpoint, its shipped export
    ``lifter.onnx``, so that torch is not even imported; otherwise an export cached beside the
    weights or in ``~/.cache/posecli``; see ``posecli export-onnx``). threads: the onnxruntime
    session's, by the one rule of :mod:`posecli.compute` (torch's pool is process-wide:
    whoever builds the models sets it, with :func:`posecli.compute.set_torch_threads`).
    strategy: the window strategy (see :class:`Lifter`).
    """
    if backend not in ("torch", "onnx"):
        raise UsageError(f"unknown lifter backend {backend!r} (choose torch or onnx)")
    if backend == "onnx" and _is_shipped(weights):
        shipped = shipped_onnx(threads)
        if shipped is not None:
            forward, info = shipped
            cfg = info["config"]
            return Lifter(forward, cfg["frames"], layout_for(cfg["joints"]), flip, stride, info,
                          strategy=strategy)
    from posecli.lifter.model import load_model

    model, meta = load_model(weights or DEFAULT_WEIGHTS)
    path = Path(meta["file"])
    if backend == "torch":
        forward = torch_forward(model)
    else:
        from posecli.lifter.onnx import cached_session
        forward = cached_session(model, path, digest=meta["sha256"], threads=threads)
    info = {"weights": path.name, "sha256": meta["sha256"], "config": model.cfg.__dict__.copy(),
            "backend": backend, "trained_on": meta.get("data", "")}
    return Lifter(forward, model.cfg.frames, layout_for(model.cfg.joints), flip, stride, info,
                  strategy=strategy)


#: The shipped checkpoint's ONNX export (``tools/ship_lifter_onnx.py``), verified by the manifest.
SHIPPED_ONNX = "lifter.onnx"


def _is_shipped(weights: str | Path | None) -> bool:
    """Do ``weights`` name the shipped checkpoint (None, its name, or its path)?"""
    if weights is None or str(weights) == DEFAULT_WEIGHTS:
        return True
    from posecli import weights as w
    try:
        return Path(weights).resolve() == w.find(DEFAULT_WEIGHTS).resolve()
    except w.WeightsError:
        return False


def shipped_onnx(threads: int = 2):
    """(window function, info) of the shipped ``lifter.onnx`` when it is the
    export of the shipped ``lifter.pt`` (its recorded checkpoint sha256 is the manifest's), or
    None (then the checkpoint itself is loaded). The file is checked against the manifest; the
    info names the checkpoint, so results and resume records do not depend on the runtime's
    file."""
    from posecli import weights as w
    from posecli.compute import onnx_session

    manifest = w.load_manifest()
    want = manifest.get(DEFAULT_WEIGHTS, {}).get("sha256")
    if want is None or SHIPPED_ONNX not in manifest:
        return None
    try:
        path = w.verified(SHIPPED_ONNX)
    except w.WeightsError as e:
        if "not found" in str(e):
            return None
        raise
    session = onnx_session(path, threads)
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("checkpoint_sha256") != want:
        return None  # an export of another checkpoint: the checkpoint is loaded instead
    cfg = json.loads(meta["config"])  # the checkpoint's LifterConfig, as a dict

    def forward(x: np.ndarray) -> np.ndarray:
        return session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]
    info = {"weights": DEFAULT_WEIGHTS, "sha256": want, "config": cfg, "backend": "onnx",
            "trained_on": meta.get("data", "")}
    return forward, info
