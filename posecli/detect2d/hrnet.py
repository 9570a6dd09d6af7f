"""HRNet-w32 top-down keypoints (MMPose's COCO model): person boxes in, 17 COCO keypoints out.

Each person's box (from BlazePose's person detector, or from the person's keypoints in the
previous frame) is padded by 1.25 and widened or heightened to the network's 3:4 aspect, as in
MMPose's top-down pipeline, then warped to a 192x256 crop (RGB, ImageNet mean/std). The
network gives one 64x48 heatmap per keypoint; the crop is also run mirrored and the
mirrored-back heatmaps are averaged in (the flip test); peaks are refined to sub-cell accuracy
(:mod:`.heatmaps`, DARK by default) and mapped back to the frame through the crop's warp. A
keypoint's confidence is its heatmap peak (clipped to [0, 1]).

Two runtimes, one code path for boxes and decoding (:class:`HRNetPose` takes any function from
an input batch to heatmaps):
- onnxruntime, with an ONNX file (``--pose-model``; :func:`export_onnx` makes one, MMDeploy's
  exports of the same model have the same input and output);
- torch, with our own network (:mod:`.hrnet_net`) loading an MMPose ``.pth`` checkpoint
  (``--pose-checkpoint``); neither mmcv nor mmpose is needed.
Without either, the MMPose model-zoo checkpoint is downloaded once into the user cache
(network needed; its file name carries the first 8 hex digits of its sha256, checked).

Coordinates: frame pixels, continuous (pixel i covers [i, i + 1)), x right, y down.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from posecli import skeleton, weights
from posecli.detect2d.crops import Roi, crop_to_image, roi_from_box, warp_roi
from posecli.detect2d.heatmaps import decode, unflip

__all__ = ["HRNetPose", "TopDownResult", "open_hrnet", "export_onnx", "INPUT_SIZE",
           "CHECKPOINT_URL", "CHECKPOINT_NAME"]

INPUT_SIZE = (192, 256)     # (width, height) of the network's input crop
STRIDE = 4                  # input pixels per heatmap cell
ASPECT = INPUT_SIZE[1] / INPUT_SIZE[0]
BOX_PADDING = 1.25          # MMPose's GetBBoxCenterScale padding of a detector box
#: keypoint boxes are tighter than a detector's person box (no head top, no feet): padded more
KEYPOINT_BOX_PADDING = 1.4
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)   # RGB, MMPose data preprocessor
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)
MIN_SCORE = 0.3             # a pose whose mean keypoint confidence is below this is dropped
LAYOUT = skeleton.COCO17.name

CHECKPOINT_NAME = "hrnet_w32_coco_256x192-c78dce93_20200708.pth"
CHECKPOINT_URL = f"https://download.openmmlab.com/mmpose/top_down/hrnet/{CHECKPOINT_NAME}"
CHECKPOINT_SHA256_PREFIX = "c78dce93"   # OpenMMLab file names carry it
WEIGHTS_HINT = ("pass an MMPose HRNet-w32 COCO 256x192 checkpoint with --pose-checkpoint FILE.pth "
                "or an ONNX export of it with --pose-model FILE.onnx")

Net = Callable[[np.ndarray], np.ndarray]   # (N, 3, 256, 192) float32 -> (N, 17, 64, 48)


@dataclass
class TopDownResult:
    """One person's keypoints from one crop. Pixels in the full frame."""
    xy: np.ndarray      # (17, 2) COCO order
    conf: np.ndarray    # (17,) heatmap peaks in [0, 1]
    score: float        # mean keypoint confidence
    roi: Roi


def box_roi(box: np.ndarray, padding: float = BOX_PADDING) -> Roi:
    """The network's crop for a person box [x0, y0, x1, y1] (pixels)."""
    return roi_from_box(box, padding, ASPECT)


def preprocess(frame: np.ndarray, rois: list[Roi]) -> np.ndarray:
    """Crops of ``frame`` (H, W, 3) uint8 RGB -> (N, 3, 256, 192) float32, normalised."""
    # black outside the frame, as MMPose's TopdownAffine (what the model was trained with)
    crops = np.stack([warp_roi(frame, r, INPUT_SIZE, cv2.BORDER_CONSTANT) for r in rois])
    crops = crops.astype(np.float32)
    return np.ascontiguousarray(((crops - PIXEL_MEAN) / PIXEL_STD).transpose(0, 3, 1, 2))


def cells_to_frame(cells: np.ndarray, roi: Roi) -> np.ndarray:
    """Heatmap cells (K, 2) of one crop -> frame pixels (K, 2). Cell c stands for input pixel
    index STRIDE * c, whose centre is the continuous crop coordinate STRIDE * c + 0.5."""
    return crop_to_image(cells * STRIDE + 0.5, roi, INPUT_SIZE)


class HRNetPose:
    """Top-down keypoints of every person box in a frame.

    Args:
        net: the network as a function (torch or onnxruntime; see :func:`open_hrnet`).
        flip: also run the mirrored crops and average the heatmaps (MMPose's flip test).
        refine: heatmap peak refinement, ``"dark"``, ``"quarter"`` or ``"none"``.
    """

    layout = LAYOUT

    def __init__(self, net: Net, flip: bool = True, refine: str = "dark",
                 description: str = "hrnet") -> None:
        self.net, self.flip, self.refine = net, flip, refine
        self.description = description
        self._perm = skeleton.COCO17.flip_permutation()

    def _run(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(self.net(x), np.float32)
        if y.ndim != 4 or y.shape[:2] != (len(x), skeleton.COCO17.joints):
            raise weights.WeightsError(f"{self.description}: heatmaps of shape {y.shape} for "
                                       f"{len(x)} crops, expected ({len(x)}, 17, H, W)")
        return y

    def heatmaps(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, 256, 192) input -> (N, 17, 64, 48) heatmaps, flip-tested when ``flip``."""
        if not self.flip:
            return self._run(x)
        both = self._run(np.concatenate([x, x[..., ::-1]]))
        n = len(x)
        return (both[:n] + unflip(both[n:], self._perm)) / 2

    def __call__(self, frame: np.ndarray, rois: list[Roi]) -> list[TopDownResult]:
        """Keypoints for each crop of ``frame`` (H, W, 3) uint8 RGB (one network batch)."""
        if not rois:
            return []
        cells, conf = decode(self.heatmaps(preprocess(frame, rois)), self.refine)
        out = []
        for c, k, roi in zip(cells, conf, rois):
            xy = cells_to_frame(np.nan_to_num(c, nan=0.0), roi)
            out.append(TopDownResult(xy, k, float(k.mean()), roi))
        return out


# ---------------------------------------------------------------------------------------------
# Runtimes
# ---------------------------------------------------------------------------------------------

class OnnxNet:
    """An HRNet ONNX file run with onnxruntime: (N, 3, 256, 192) -> (N, 17, 64, 48). Files with
    a fixed batch of 1 (some MMDeploy exports) are run one crop at a time."""

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        from posecli.compute import onnx_session

        self.session = onnx_session(path, threads)
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        if list(inp.shape[1:]) != [3, INPUT_SIZE[1], INPUT_SIZE[0]]:
            raise weights.WeightsError(f"{path}: input shape {inp.shape}, expected "
                                       f"(N, 3, {INPUT_SIZE[1]}, {INPUT_SIZE[0]}) (an HRNet 256x192)")
        if len(out.shape) != 4 or out.shape[1] != skeleton.COCO17.joints:
            raise weights.WeightsError(f"{path}: output shape {out.shape}, expected (N, 17, 64, 48)")
        self.input_name = inp.name
        self.batch_one = inp.shape[0] == 1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        if self.batch_one:
            return np.concatenate([self.session.run(None, {self.input_name: x[i:i + 1]})[0]
                                   for i in range(len(x))])
        return self.session.run(None, {self.input_name: x})[0]


class TorchNet:
    """Our HRNet (torch) as a function of numpy arrays."""

    def __init__(self, model) -> None:
        self.model = model.eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()


def load_checkpoint(path: str | Path):
    """Our HRNet with the weights of an MMPose checkpoint; WeightsError when it is not one."""
    from posecli.detect2d.hrnet_net import load_mmpose_checkpoint

    path = weights.verified(path)
    try:
        return load_mmpose_checkpoint(path)
    except ValueError as e:
        raise weights.WeightsError(str(e)) from None
    except Exception as e:  # torch.load: a truncated or foreign file
        raise weights.WeightsError(f"{path}: not a readable torch checkpoint "
                                   f"({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})") from None


def default_checkpoint(progress: bool = True) -> Path:
    """The MMPose model-zoo checkpoint from the user cache, downloaded on first use (network
    needed); WeightsError naming the URL and the options when it cannot be had."""
    from posecli.download import cached

    return cached(CHECKPOINT_URL, sha256_prefix=CHECKPOINT_SHA256_PREFIX, progress=progress,
                  hint=WEIGHTS_HINT)


def open_hrnet(pose_model: str | Path | None = None, threads: int = 2, flip: bool = True,
               refine: str = "dark") -> HRNetPose:
    """An :class:`HRNetPose` on ``pose_model``: a ``.onnx`` file (onnxruntime) or an MMPose
    ``.pth`` checkpoint (torch); None: the model-zoo checkpoint (cached download).

    Raises :class:`posecli.weights.WeightsError` (one line) when the file is missing, unusable
    or cannot be downloaded.
    """
    path = Path(pose_model) if pose_model is not None else default_checkpoint()
    if not path.is_file():
        raise weights.WeightsError(f"pose model {path} not found; {WEIGHTS_HINT}")
    if path.suffix.lower() == ".onnx":
        net: Net = OnnxNet(weights.verified(path), threads)
        what = f"hrnet-w32 (onnxruntime, {path.name})"
    else:
        from posecli.compute import set_torch_threads
        set_torch_threads(threads)  # torch's pool is process-wide: sized where torch is used
        net = TorchNet(load_checkpoint(path))
        what = f"hrnet-w32 (torch, {path.name})"
    return HRNetPose(net, flip, refine, what)


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17, check: bool = True
                ) -> tuple[Path, float | None]:
    """Write an MMPose HRNet checkpoint as ONNX (input ``input`` (N, 3, 256, 192), output
    ``heatmaps`` (N, 17, 64, 48), dynamic N) -> (path, largest |torch - onnxruntime| heatmap
    difference on random input, relative to the largest |heatmap| (at least 1), when
    ``check``)."""
    import warnings

    import torch

    from posecli.files import atomic_path

    model = load_checkpoint(checkpoint)
    out = Path(out)
    x = torch.zeros(2, 3, INPUT_SIZE[1], INPUT_SIZE[0])
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["input"],
                          output_names=["heatmaps"], opset_version=opset,
                          dynamic_axes={"input": {0: "batch"}, "heatmaps": {0: "batch"}})
    if not check:
        return out, None
    rng = np.random.default_rng(0)
    xr = rng.normal(0, 1, (3, 3, INPUT_SIZE[1], INPUT_SIZE[0])).astype(np.float32)
    ref = TorchNet(model)(xr)
    err = float(np.abs(OnnxNet(out)(xr) - ref).max()) / max(1.0, float(np.abs(ref).max()))
    return out, err
