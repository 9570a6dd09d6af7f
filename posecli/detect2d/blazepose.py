"""BlazePose (MediaPipe Pose) two-stage 2D detector run with ai-edge-litert.

Stage 1, the person detector (``pose_detection.tflite``): the frame is letterboxed to 224x224,
values in [-1, 1]; the model scores 2254 SSD anchors and regresses, per anchor, a box (the
face) and 4 key points: 0 = mid-hip centre, 1 = a point whose distance from the hip centre is
the radius of a circle around the whole body and whose direction is the body's "up",
2 and 3 = the same for the upper body. Boxes are decoded against the anchors, thresholded and
merged by weighted non-maximum suppression.

Stage 2, the landmark model (``pose_landmark_{lite,full,heavy}.tflite``): a square region of
interest (ROI) centred on key point 0, of side 2 * |kp1 - kp0| * 1.25, rotated so that kp0 -> kp1
points up, is warped to 256x256 (values in [0, 1]). The model returns 39 landmarks
(x, y, z, visibility, presence; x and y in crop pixels): the 33 BlazePose landmarks and two
auxiliary points (33: body centre, 34: size/rotation point) from which the next frame's ROI is
made in the same way, plus a pose-presence flag (already a probability) and a 64x64 heatmap per
landmark used to refine the 2D positions.

Settings follow MediaPipe's graphs (google-ai-edge/mediapipe, mediapipe/modules/pose_detection/
pose_detection_cpu.pbtxt, mediapipe/modules/pose_landmark/pose_detection_to_roi.pbtxt,
pose_landmarks_to_roi.pbtxt, tensors_to_pose_landmarks_and_segmentation.pbtxt). The code here is
an independent implementation; only the numbers are taken from those files.

Conventions: pixel coordinates are continuous, x right, y down, (0, 0) is the top-left corner of
the top-left pixel (so a pixel with index i covers [i, i + 1)); MediaPipe's normalised
coordinates times the frame size give the same numbers.
"""
from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posecli import weights
from posecli.detect2d import Detection

# ---------------------------------------------------------------------------------------------
# Model files and variants
# ---------------------------------------------------------------------------------------------

DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILES = {
    "blazepose-lite": "pose_landmark_lite.tflite",
    "blazepose-full": "pose_landmark_full.tflite",
    "blazepose-heavy": "pose_landmark_heavy.tflite",
}
#: Files not shipped in the repository, and where download_model gets them.
NPM_TARBALL = "https://registry.npmjs.org/@mediapipe/pose/-/pose-0.5.1675469404.tgz"
DOWNLOADABLE = {"pose_landmark_heavy.tflite": (NPM_TARBALL, "package/pose_landmark_heavy.tflite")}

LAYOUT = "blazepose33"
NUM_LANDMARKS = 33          # BlazePose body landmarks
NUM_MODEL_LANDMARKS = 39    # what the landmark model predicts (33 + 2 auxiliary + 4 unused)
AUX_CENTER, AUX_SCALE = 33, 34

# Detector settings (pose_detection_cpu.pbtxt).
DET_INPUT = 224
ANCHOR_OPTIONS = dict(num_layers=5, min_scale=0.1484375, max_scale=0.75, input_size=DET_INPUT,
                      anchor_offset=0.5, strides=(8, 16, 32, 32, 32), aspect_ratios=(1.0,),
                      fixed_anchor_size=True, interpolated_scale_aspect_ratio=1.0)
NUM_ANCHORS = 2254
DET_NUM_KEYPOINTS = 4
DET_SCORE_CLIP = 100.0      # raw scores are clipped to +-100 before the sigmoid
DET_MIN_SCORE = 0.5         # min_detection_confidence default of MediaPipe's Python solution
DET_NMS_IOU = 0.3           # weighted NMS, intersection over union
TILE_FRACTION = 0.6         # side of the fallback detection tiles, fraction of the frame
# ROI settings (pose_detection_to_roi.pbtxt / pose_landmarks_to_roi.pbtxt, MediaPipe >= 0.8.4).
ROI_ENLARGE = 1.25
ROI_TARGET_ANGLE = math.pi / 2
# Landmark model settings (pose_landmark_by_roi_cpu.pbtxt, tensors_to_pose_landmarks...).
LMK_INPUT = 256
MIN_PRESENCE = 0.5          # pose flag threshold (min_tracking_confidence default, likewise)
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONF = 0.5
MIN_ROI_SIZE = 16.0         # pixels; a tracked ROI smaller than this is dropped


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# ---------------------------------------------------------------------------------------------
# Stage 1: anchors, decoding, NMS
# ---------------------------------------------------------------------------------------------

def ssd_anchors(num_layers: int = 5, min_scale: float = 0.1484375, max_scale: float = 0.75,
                input_size: int = DET_INPUT, anchor_offset: float = 0.5,
                strides: tuple[int, ...] = (8, 16, 32, 32, 32),
                aspect_ratios: tuple[float, ...] = (1.0,), fixed_anchor_size: bool = True,
                interpolated_scale_aspect_ratio: float = 1.0) -> np.ndarray:
    """SSD anchors as MediaPipe's SsdAnchorsCalculator lays them out.

    Consecutive layers with the same stride share one feature map; each location of it gets,
    for every layer of the group, one anchor per aspect ratio plus one of the interpolated scale.

    Returns:
        (N, 4) float64 [x_center, y_center, width, height], normalised to the input size
        (N = 2254 with the defaults: 28*28*2 + 14*14*2 + 7*7*6). With ``fixed_anchor_size``
        width = height = 1, so the box regression is in input pixels / input size.
    """
    def scale(i: int) -> float:
        if num_layers == 1:
            return (min_scale + max_scale) / 2
        return min_scale + (max_scale - min_scale) * i / (num_layers - 1)

    out: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < num_layers:
        whs: list[tuple[float, float]] = []
        last = layer
        while last < num_layers and strides[last] == strides[layer]:
            s = scale(last)
            for ar in aspect_ratios:
                whs.append((s * math.sqrt(ar), s / math.sqrt(ar)))
            if interpolated_scale_aspect_ratio > 0:
                s_next = 1.0 if last == num_layers - 1 else scale(last + 1)
                s_int = math.sqrt(s * s_next)
                r = interpolated_scale_aspect_ratio
                whs.append((s_int * math.sqrt(r), s_int / math.sqrt(r)))
            last += 1
        fm = math.ceil(input_size / strides[layer])
        for y in range(fm):
            for x in range(fm):
                cx, cy = (x + anchor_offset) / fm, (y + anchor_offset) / fm
                for w, h in whs:
                    out.append((cx, cy, 1.0, 1.0) if fixed_anchor_size else (cx, cy, w, h))
        layer = last
    return np.asarray(out, dtype=np.float64)


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
                      input_size: int = DET_INPUT, score_clip: float = DET_SCORE_CLIP
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the detector's raw outputs against the anchors.

    Args:
        raw_boxes: (N, 4 + 2K) per anchor: box centre offset x, y, box width, height, then K key
            point offsets (x, y), all in input pixels (x before y).
        raw_scores: (N,) or (N, 1) logits.
        anchors: (N, 4) from :func:`ssd_anchors`.
    Returns:
        boxes (N, 4) [x_min, y_min, x_max, y_max], keypoints (N, K, 2) and scores (N,), boxes and
        key points normalised to the (letterboxed) input square, scores in [0, 1].
    """
    raw = np.asarray(raw_boxes, dtype=np.float64).reshape(len(anchors), -1)
    ax, ay, aw, ah = (anchors[:, i:i + 1] for i in range(4))
    cx = raw[:, 0:1] / input_size * aw + ax
    cy = raw[:, 1:2] / input_size * ah + ay
    w = raw[:, 2:3] / input_size * aw
    h = raw[:, 3:4] / input_size * ah
    boxes = np.concatenate([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = raw[:, 4:].reshape(len(anchors), -1, 2) / input_size
    kp = kp * np.stack([aw, ah], axis=-1) + np.stack([ax, ay], axis=-1)
    scores = _sigmoid(np.clip(np.asarray(raw_scores, dtype=np.float64).reshape(-1),
                              -score_clip, score_clip))
    return boxes, kp, scores


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with boxes (M, 4), both [x0, y0, x1, y1] -> (M,)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area(np.asarray(box, dtype=np.float64)) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Plain (hard) non-maximum suppression.

    Args:
        boxes: (N, 4) [x0, y0, x1, y1]; scores: (N,).
    Returns:
        (M,) int indices of the kept boxes, highest score first.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        order = rest[iou(boxes[i], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, extra: np.ndarray | None,
                 iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted NMS (MediaPipe's WEIGHTED algorithm).

    The best remaining box takes every remaining box overlapping it by IoU > ``iou_threshold``;
    the cluster is replaced by the score-weighted mean of its boxes (and of ``extra``, e.g. key
    points) and keeps the best score.

    Args:
        boxes: (N, 4); scores: (N,); extra: (N, ...) or None.
    Returns:
        boxes (M, 4), scores (M,), extra (M, ...) (empty (M, 0) when ``extra`` is None), best
        score first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    ex = (np.zeros((len(boxes), 0)) if extra is None
          else np.asarray(extra, dtype=np.float64).reshape(len(boxes), -1))
    order = np.argsort(-scores, kind="stable")
    out_b, out_s, out_e = [], [], []
    while order.size:
        best = order[0]
        members = order[(iou(boxes[best], boxes[order]) > iou_threshold) | (order == best)]
        w = scores[members][:, None]
        out_b.append((boxes[members] * w).sum(0) / w.sum())
        out_e.append((ex[members] * w).sum(0) / w.sum())
        out_s.append(scores[best])
        order = order[~np.isin(order, members)]
    shape = (-1,) + (np.asarray(extra).shape[1:] if extra is not None else (0,))
    return (np.asarray(out_b).reshape(-1, 4), np.asarray(out_s),
            np.asarray(out_e).reshape(shape))


# ---------------------------------------------------------------------------------------------
# Regions of interest and warps
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Roi:
    """A rotated square in frame pixels.

    ``angle`` (radians) rotates the crop's axes into the frame: a crop point at offset (dx, dy)
    from the crop centre (crop units scaled to frame pixels) lies at
    ``center + R(angle) @ (dx, dy)`` with ``R = [[cos, -sin], [sin, cos]]`` (y down, so positive
    angles turn clockwise on screen).
    """
    cx: float
    cy: float
    size: float
    angle: float


def roi_from_points(center: np.ndarray, scale_point: np.ndarray, enlarge: float = ROI_ENLARGE,
                    target_angle: float = ROI_TARGET_ANGLE) -> Roi:
    """ROI from an alignment point pair, as MediaPipe's AlignmentPointsRects + RectTransformation.

    Args:
        center: (2,) pixels (detector key point 0 / landmark 33: body centre).
        scale_point: (2,) pixels (key point 1 / landmark 34). The side is
            ``2 * |scale_point - center| * enlarge``; the rotation makes center -> scale_point
            point up in the crop.
    """
    c = np.asarray(center, dtype=np.float64)
    s = np.asarray(scale_point, dtype=np.float64)
    d = s - c
    angle = target_angle - math.atan2(-d[1], d[0])
    angle = (angle + math.pi) % (2 * math.pi) - math.pi
    size = 2.0 * float(np.hypot(*d)) * enlarge
    return Roi(float(c[0]), float(c[1]), size, angle)


def crop_to_image_matrix(roi: Roi, out_size: int) -> np.ndarray:
    """(2, 3) affine taking continuous crop pixels (0..out_size) to continuous frame pixels."""
    k = roi.size / out_size
    c, s = math.cos(roi.angle) * k, math.sin(roi.angle) * k
    h = out_size / 2
    return np.array([[c, -s, roi.cx - c * h + s * h],
                     [s, c, roi.cy - s * h - c * h]], dtype=np.float64)


def crop_to_image(points: np.ndarray, roi: Roi, out_size: int) -> np.ndarray:
    """Map (..., 2) crop pixels to frame pixels (the inverse of the crop warp)."""
    m = crop_to_image_matrix(roi, out_size)
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def image_to_crop(points: np.ndarray, roi: Roi, out_size: int) -> np.ndarray:
    """Map (..., 2) frame pixels to crop pixels."""
    m = cv2.invertAffineTransform(crop_to_image_matrix(roi, out_size))
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def area_resize(img: np.ndarray, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """Shrink ``img`` (H, W, C) to (height, width, C) by area averaging, fast.

    OpenCV's INTER_AREA is several times faster for integer factors, so a large reduction is
    done as an integer-factor pass followed by a small fractional one. The integer pass drops
    the last ``W % k`` columns and ``H % k`` rows (k < the reduction factor).

    Returns:
        the resized image and the width and height of the part of ``img`` it covers.
    """
    h, w = img.shape[:2]
    k = min(w // max(width, 1), h // max(height, 1))
    if k >= 2:
        w, h = w - w % k, h - h % k
        img = cv2.resize(img[:h, :w], (w // k, h // k), interpolation=cv2.INTER_AREA)
    if img.shape[1] != width or img.shape[0] != height:
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    return img, w, h


def warp_roi(frame: np.ndarray, roi: Roi, out_size: int,
             border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Cut the rotated square ``roi`` out of ``frame`` (H, W, C) as (out_size, out_size, C).

    When the ROI is much larger than the output the covered part of the frame is first shrunk
    with area averaging, so that the bilinear warp does not alias.
    """
    m = crop_to_image_matrix(roi, out_size)            # crop -> frame, continuous
    shrink = roi.size / out_size
    src, offset, f = frame, np.zeros(2), np.ones(2)
    if shrink > 1.5:
        corners = crop_to_image(np.array([[0, 0], [out_size, 0], [0, out_size],
                                          [out_size, out_size]], float), roi, out_size)
        h, w = frame.shape[:2]
        x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 1, 0, [w, h])
        x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 1, 0, [w, h])
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            nw, nh = max(1, round((x1 - x0) / shrink)), max(1, round((y1 - y0) / shrink))
            src, uw, uh = area_resize(frame[y0:y1, x0:x1], nw, nh)
            offset = np.array([x0, y0], float)
            f = np.array([nw / uw, nh / uh])
    # continuous crop -> continuous source (frame pixels relative to the sub-image, scaled)
    ms = m.copy()
    ms[:, 2] -= offset
    ms *= f[:, None]
    # pixel indices: crop index i has centre i + 0.5; source centre j + 0.5 -> index j
    ms[:, 2] += ms[:, :2].sum(1) * 0.5 - 0.5
    return cv2.warpAffine(src, ms, (out_size, out_size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border)


def letterbox_roi(height: int, width: int) -> Roi:
    """The unrotated square around the whole frame (letterboxing for the detector)."""
    return Roi(width / 2, height / 2, float(max(height, width)), 0.0)


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray, kernel: int = HEATMAP_KERNEL,
                        min_conf: float = HEATMAP_MIN_CONF) -> np.ndarray:
    """Refine landmark positions with the landmark model's heatmaps (MediaPipe's
    RefineLandmarksFromHeatmap: confidence-weighted mean of heatmap cells around the landmark).

    Args:
        xy: (K, 2) landmark positions normalised to the crop (0..1).
        heatmap: (Hh, Wh, K) logits.
    Returns:
        (K, 2) refined normalised positions; a landmark is kept as is when it is outside the
        heatmap or when no cell near it has sigmoid >= ``min_conf``. Cell (col, row) stands for
        the position (col / Wh, row / Hh), as in MediaPipe: on the shared demo video this makes
        the refinement shift the regressed points by -0.2 crop pixels on average, against +1.8
        with cell centres at (col + 0.5) / Wh, i.e. the heatmap grid is anchored at its corner.
    """
    hh, hw, k = heatmap.shape
    out = np.array(xy, dtype=np.float64)
    r = (kernel - 1) // 2
    for i in range(min(k, len(out))):
        col, row = int(math.floor(out[i, 0] * hw)), int(math.floor(out[i, 1] * hh))
        if not (0 <= col < hw and 0 <= row < hh):
            continue
        r0, r1, c0, c1 = max(0, row - r), min(hh, row + r + 1), max(0, col - r), min(hw, col + r + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, i])
        total = conf.sum()
        if conf.max() >= min_conf and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i, 0] = (cols * conf).sum() / total / hw
            out[i, 1] = (rows * conf).sum() / total / hh
    return out


# ---------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------

@dataclass
class PoseBox:
    """One person found by stage 1. Pixels in the full frame."""
    box: np.ndarray        # (4,) [x0, y0, x1, y1] of the face box
    keypoints: np.ndarray  # (4, 2): hip centre, body circle point, shoulder centre, upper-body point
    score: float

    def roi(self) -> Roi:
        return roi_from_points(self.keypoints[0], self.keypoints[1])


@dataclass
class LandmarkResult:
    """Stage-2 output for one ROI. Pixels in the full frame."""
    xy: np.ndarray          # (39, 2)
    visibility: np.ndarray  # (39,) in [0, 1]
    presence: np.ndarray    # (39,) in [0, 1]
    score: float            # pose flag: probability that a person is in the ROI
    roi: Roi = field(default=None)  # type: ignore[assignment]


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (C-level writes) for the duration of the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _interpreter(path: Path, threads: int):
    """A ready ai-edge-litert interpreter for ``path``; WeightsError when it cannot be loaded."""
    from ai_edge_litert.interpreter import Interpreter  # lazy: heavy import

    try:
        with _quiet_stderr():  # the runtime's C++ logger announces its XNNPACK delegate
            it = Interpreter(model_path=str(path), num_threads=threads)
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise weights.WeightsError(f"{path}: not a usable TFLite model ({first})") from None
    return it


def _output_index(details: list[dict], last_dim: int, ndim: int) -> int:
    for d in details:
        if len(d["shape"]) == ndim and d["shape"][-1] == last_dim:
            return d["index"]
    raise weights.WeightsError(f"model has no output of shape (..., {last_dim}) with {ndim} dims")


class BlazePose:
    """Single-person BlazePose tracker. See :class:`posecli.detect2d.Detector`."""

    layout = LAYOUT

    def __init__(self, name: str = "blazepose-full", threads: int = 2,
                 min_detection_score: float = DET_MIN_SCORE,
                 min_presence: float = MIN_PRESENCE, refine: bool = True,
                 tile_fallback: bool = True,
                 detector_file: str | Path = DETECTOR_FILE,
                 landmark_file: str | Path | None = None) -> None:
        if name not in LANDMARK_FILES:
            raise ValueError(f"unknown BlazePose variant {name!r}; known: {', '.join(LANDMARK_FILES)}")
        self.name = name
        det_path = weights.verified(detector_file)
        lmk_name = landmark_file or LANDMARK_FILES[name]
        try:
            lmk_path = weights.verified(lmk_name)
        except weights.WeightsError as e:
            if Path(lmk_name).name in DOWNLOADABLE and "not found" in str(e):
                raise weights.WeightsError(
                    f"{name}: model file {Path(lmk_name).name} is not installed (it is not shipped, "
                    f"27.7 MB); get it with: python -c \"from posecli.detect2d import download_model; "
                    f"download_model('{name}')\" (saves to {weights.USER_CACHE}), or put it in "
                    "$POSECLI_WEIGHTS") from None
            raise
        self._det = _interpreter(det_path, threads)
        self._lmk = _interpreter(lmk_path, threads)
        d_in = self._det.get_input_details()[0]
        l_in = self._lmk.get_input_details()[0]
        if tuple(d_in["shape"]) != (1, DET_INPUT, DET_INPUT, 3) or \
                tuple(l_in["shape"]) != (1, LMK_INPUT, LMK_INPUT, 3):
            raise weights.WeightsError(f"{det_path.name}/{lmk_path.name}: unexpected input shapes")
        self._det_in = d_in["index"]
        dout = self._det.get_output_details()
        self._det_boxes = _output_index(dout, 4 + 2 * DET_NUM_KEYPOINTS, 3)
        self._det_scores = _output_index(dout, 1, 3)
        self._lmk_in = l_in["index"]
        lout = self._lmk.get_output_details()
        self._lmk_xy = _output_index(lout, NUM_MODEL_LANDMARKS * 5, 2)
        self._lmk_flag = _output_index(lout, 1, 2)
        self._lmk_heat = _output_index(lout, NUM_MODEL_LANDMARKS, 4)
        self._anchors = ssd_anchors(**ANCHOR_OPTIONS)
        self.min_detection_score = min_detection_score
        self.min_presence = min_presence
        self.refine = refine
        self.tile_fallback = tile_fallback
        self._roi: Roi | None = None
        #: seconds spent in each stage on the last call (for benchmarks)
        self.last_timing: dict[str, float] = {}

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the tracked person (call at the start of a new video)."""
        self._roi = None

    # -- stage 1 ----------------------------------------------------------------------------------
    def detect(self, frame: np.ndarray, tiles: bool | None = None) -> list[PoseBox]:
        """Run the person detector on a frame (H, W, 3) uint8 RGB.

        The whole frame is letterboxed to 224x224. When that finds nobody and ``tiles`` (default:
        the detector's ``tile_fallback``) is on, the detector also runs on 4 overlapping corner
        tiles of 60% of the frame's width and height, which lets it see people about 1.7 times
        smaller (the letterbox leaves a person under ~40 px tall in the model input unseen).

        Returns the people found, best score first (pixels in the frame).
        """
        people = self._detect_once(frame)
        if people or not (self.tile_fallback if tiles is None else tiles):
            return people
        h, w = frame.shape[:2]
        th, tw = int(round(h * TILE_FRACTION)), int(round(w * TILE_FRACTION))
        for y0 in (0, h - th):
            for x0 in (0, w - tw):
                for p in self._detect_once(frame[y0:y0 + th, x0:x0 + tw]):
                    off = np.array([x0, y0], float)
                    people.append(PoseBox(p.box + np.tile(off, 2), p.keypoints + off, p.score))
        if len(people) > 1:  # the same person seen in two tiles
            keep = nms(np.array([p.box for p in people]), np.array([p.score for p in people]),
                       DET_NMS_IOU)
            people = [people[i] for i in keep]
        return people

    def _detect_once(self, frame: np.ndarray) -> list[PoseBox]:
        """One detector run on the whole of ``frame``; people best score first, frame pixels."""
        h, w = frame.shape[:2]
        lb = letterbox_roi(h, w)
        scale = DET_INPUT / lb.size
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        if scale < 1:
            small, uw, uh = area_resize(frame, nw, nh)
        else:
            small, uw, uh = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR), w, h
        img = np.zeros((DET_INPUT, DET_INPUT, 3), np.float32) - 1.0
        ox, oy = (DET_INPUT - nw) // 2, (DET_INPUT - nh) // 2
        img[oy:oy + nh, ox:ox + nw] = small.astype(np.float32) / 127.5 - 1.0
        self._det.set_tensor(self._det_in, img[None])
        self._det.invoke()
        raw_boxes = self._det.get_tensor(self._det_boxes)[0]
        raw_scores = self._det.get_tensor(self._det_scores)[0]
        boxes, kps, scores = decode_detections(raw_boxes, raw_scores, self._anchors)
        keep = scores >= self.min_detection_score
        if not keep.any():
            return []
        boxes, scores, kps = weighted_nms(boxes[keep], scores[keep], kps[keep], DET_NMS_IOU)
        # tensor-normalised -> frame pixels (undo the letterbox: exact per-axis scales)
        sx, sy = nw / uw, nh / uh

        def to_px(p: np.ndarray) -> np.ndarray:
            q = p * DET_INPUT
            return np.stack([(q[..., 0] - ox) / sx, (q[..., 1] - oy) / sy], axis=-1)

        return [PoseBox(to_px(b.reshape(2, 2)).reshape(4), to_px(k), float(s))
                for b, k, s in zip(boxes, kps, scores)]

    # -- stage 2 ----------------------------------------------------------------------------------
    def landmarks(self, frame: np.ndarray, roi: Roi) -> LandmarkResult:
        """Run the landmark model on ``roi`` of ``frame``; results in frame pixels."""
        crop = warp_roi(frame, roi, LMK_INPUT)
        self._lmk.set_tensor(self._lmk_in, (crop.astype(np.float32) / 255.0)[None])
        self._lmk.invoke()
        raw = self._lmk.get_tensor(self._lmk_xy)[0].reshape(NUM_MODEL_LANDMARKS, 5).astype(np.float64)
        flag = float(self._lmk.get_tensor(self._lmk_flag).reshape(-1)[0])
        xy = raw[:, :2] / LMK_INPUT
        if self.refine:
            xy = refine_from_heatmap(xy, self._lmk.get_tensor(self._lmk_heat)[0])
        return LandmarkResult(crop_to_image(xy * LMK_INPUT, roi, LMK_INPUT), _sigmoid(raw[:, 3]),
                              _sigmoid(raw[:, 4]), flag, roi)

    # -- tracking -------------------------------------------------------------------------------
    def __call__(self, frame: np.ndarray) -> Detection | None:
        frame = _check_frame(frame)
        t0 = time.perf_counter()
        timing = {"detect": 0.0, "landmark": 0.0}
        res = None
        if self._roi is not None:
            res = self.landmarks(frame, self._roi)
            timing["landmark"] += time.perf_counter() - t0
            if res.score < self.min_presence:
                res = None
        if res is None:  # (re-)detect on this same frame
            t1 = time.perf_counter()
            people = self.detect(frame)
            timing["detect"] = time.perf_counter() - t1
            if people:
                t1 = time.perf_counter()
                res = self.landmarks(frame, _most_prominent(people).roi())
                timing["landmark"] += time.perf_counter() - t1
                if res.score < self.min_presence:
                    res = None
        self.last_timing = timing
        if res is None:
            self._roi = None
            return None
        roi = roi_from_points(res.xy[AUX_CENTER], res.xy[AUX_SCALE])
        # a degenerate ROI (auxiliary points collapsed) cannot be tracked: detect next time
        self._roi = roi if roi.size >= MIN_ROI_SIZE and np.isfinite(roi.size) else None
        conf = res.visibility[:NUM_LANDMARKS] * res.presence[:NUM_LANDMARKS]
        return Detection(res.xy[:NUM_LANDMARKS].copy(), conf, float(np.clip(res.score, 0, 1)))


def _most_prominent(people: list[PoseBox]) -> PoseBox:
    """The person to follow: highest detector score, ties (within 0.05) broken by body size."""
    best = max(p.score for p in people)
    close = [p for p in people if p.score >= best - 0.05]
    return max(close, key=lambda p: float(np.hypot(*(p.keypoints[1] - p.keypoints[0]))))


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
    return np.ascontiguousarray(frame)


# ---------------------------------------------------------------------------------------------
# Fetching the models that are not shipped
# ---------------------------------------------------------------------------------------------

def download_model(name: str, dest: str | Path | None = None) -> Path:
    """Download a model that is not shipped (``blazepose-heavy``) and verify its sha256.

    Fetches the npm tarball of @mediapipe/pose (network needed, ~30 MB), extracts the model
    into ``dest`` (default ``~/.cache/posecli``) and returns its path.
    """
    import shutil
    import tarfile
    import tempfile
    import urllib.request

    fname = LANDMARK_FILES.get(name, name)
    if fname not in DOWNLOADABLE:
        raise ValueError(f"{name!r} is shipped with posecli or unknown; downloadable: "
                         f"{', '.join(k for k, v in LANDMARK_FILES.items() if v in DOWNLOADABLE)}")
    url, member = DOWNLOADABLE[fname]
    expected = weights.load_manifest().get(fname, {}).get("sha256")
    dest = Path(dest) if dest else weights.USER_CACHE
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tgz = Path(tmp) / "pkg.tgz"
        with urllib.request.urlopen(url, timeout=60) as r, open(tgz, "wb") as f:
            shutil.copyfileobj(r, f)
        with tarfile.open(tgz, "r:gz") as tar:
            src = tar.extractfile(member)
            if src is None:
                raise weights.WeightsError(f"{url}: {member} missing from the archive")
            part = Path(tmp) / fname
            with open(part, "wb") as f:
                shutil.copyfileobj(src, f)
        weights.verified(part, expected)
        shutil.move(str(part), dest / fname)
    return dest / fname
