"""BlazePose (MediaPipe Pose) models run with ai-edge-litert: one class per model.

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
made in the same way, plus a pose-presence flag (already a probability), a 64x64 heatmap per
landmark used to refine the 2D positions, and the 39 "world" landmarks (second output, 117
values): metres, origin between the hips, x right, y down, z away from the camera, in the crop's
axes; they are rotated back by the ROI's angle (MediaPipe's WorldLandmarkProjection) so that
they are in the frame's axes like the 2D ones.

Settings follow MediaPipe's graphs (google-ai-edge/mediapipe, mediapipe/modules/pose_detection/
pose_detection_cpu.pbtxt, mediapipe/modules/pose_landmark/pose_detection_to_roi.pbtxt,
pose_landmarks_to_roi.pbtxt, tensors_to_pose_landmarks_and_segmentation.pbtxt). The code here is
an independent implementation; only the numbers are taken from those files.

Conventions: pixel coordinates are continuous, x right, y down, (0, 0) is the top-left corner of
the top-left pixel (so a pixel with index i covers [i, i + 1)); MediaPipe's normalised
coordinates times the frame size give the same numbers.

This module holds the two models only (:class:`PoseDetector`, :class:`PoseLandmarker`); boxes and
NMS live in :mod:`.boxes`, crops in :mod:`.crops`, the runner in :mod:`.runtime`, following
people from frame to frame in :mod:`.tracker` and :mod:`.solution`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posecli import weights
from posecli.detect2d.boxes import (decode_detections, iou, nms, sigmoid, ssd_anchors,
                                    weighted_nms)
from posecli.detect2d.crops import (Roi, area_resize, crop_to_image, letterbox_roi,
                                    roi_from_points, warp_roi)
from posecli.detect2d.runtime import TFLiteModel

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
# ROI settings (pose_detection_to_roi.pbtxt / pose_landmarks_to_roi.pbtxt, MediaPipe >= 0.8.4):
# ROI_ENLARGE and ROI_TARGET_ANGLE, in crops.py.
# Landmark model settings (pose_landmark_by_roi_cpu.pbtxt, tensors_to_pose_landmarks...).
LMK_INPUT = 256
MIN_PRESENCE = 0.5          # pose flag threshold (min_tracking_confidence default, likewise)
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONF = 0.5
MIN_ROI_SIZE = 16.0         # pixels; a tracked ROI smaller than this is dropped


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
    n = min(k, len(out))
    if n == 0:
        return out
    r = (kernel - 1) // 2
    # every landmark's (kernel x kernel) window at once; cells outside the heatmap weigh 0
    col = np.floor(out[:n, 0] * hw).astype(np.int64)
    row = np.floor(out[:n, 1] * hh).astype(np.int64)
    inside = (col >= 0) & (col < hw) & (row >= 0) & (row < hh)
    d = np.arange(-r, r + 1)
    rows, cols = row[:, None, None] + d[None, :, None], col[:, None, None] + d[None, None, :]
    ok = (rows >= 0) & (rows < hh) & (cols >= 0) & (cols < hw)
    vals = heatmap[rows.clip(0, hh - 1), cols.clip(0, hw - 1), np.arange(n)[:, None, None]]
    conf = np.where(ok, sigmoid(vals.astype(np.float64)), 0.0)
    total = conf.sum((1, 2))
    use = inside & (conf.max((1, 2)) >= min_conf) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    mx = (conf * cols).sum((1, 2)) / safe / hw
    my = (conf * rows).sum((1, 2)) / safe / hh
    out[:n, 0] = np.where(use, mx, out[:n, 0])
    out[:n, 1] = np.where(use, my, out[:n, 1])
    return out


@dataclass
class PoseBox:
    """One person found by stage 1. Pixels in the full frame."""
    box: np.ndarray        # (4,) [x0, y0, x1, y1] of the face box
    keypoints: np.ndarray  # (4, 2): hip centre, body circle point, shoulder centre, upper-body point
    score: float

    def roi(self) -> Roi:
        return roi_from_points(self.keypoints[0], self.keypoints[1])

    def body_box(self) -> np.ndarray:
        """(4,) [x0, y0, x1, y1]: the square around the detector's body circle (pixels)."""
        r = float(np.hypot(*(self.keypoints[1] - self.keypoints[0])))
        c = self.keypoints[0]
        return np.array([c[0] - r, c[1] - r, c[0] + r, c[1] + r])


@dataclass
class LandmarkResult:
    """Stage-2 output for one ROI. Pixels in the full frame."""
    xy: np.ndarray          # (39, 2)
    visibility: np.ndarray  # (39,) in [0, 1]
    presence: np.ndarray    # (39,) in [0, 1]
    score: float            # pose flag: probability that a person is in the ROI
    roi: Roi = field(default=None)  # type: ignore[assignment]
    #: (39, 3) metres, hip-centred, x right, y down, z away from the camera (frame axes: the
    #: crop's rotation undone); None for a model file without the output
    world: np.ndarray | None = None


def world_to_frame(world: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (..., 3) world landmarks from a crop's axes into the frame's: x and y turned by
    the ROI's ``angle`` (radians, :class:`Roi`'s convention, the same rotation that takes crop
    pixels to frame pixels), z (depth) kept."""
    c, s = math.cos(angle), math.sin(angle)
    w = np.asarray(world, dtype=np.float64)
    out = w.copy()
    out[..., 0] = c * w[..., 0] - s * w[..., 1]
    out[..., 1] = s * w[..., 0] + c * w[..., 1]
    return out



def landmark_path(name: str, landmark_file: str | Path | None = None) -> Path:
    """The verified landmark model file of variant ``name``; a WeightsError that says how to get
    a model that is not shipped."""
    lmk_name = landmark_file or LANDMARK_FILES[name]
    try:
        return weights.verified(lmk_name)
    except weights.WeightsError as e:
        if Path(lmk_name).name in DOWNLOADABLE and "not found" in str(e):
            raise weights.WeightsError(
                f"{name}: model file {Path(lmk_name).name} is not installed (it is not shipped, "
                f"27.7 MB); get it with: python -c \"from posecli.detect2d import download_model; "
                f"download_model('{name}')\" (saves to {weights.user_cache()}), or put it in "
                "$POSECLI_WEIGHTS") from None
        raise


class PoseDetector(TFLiteModel):
    """Stage 1, the person detector: a frame in, every person found (:class:`PoseBox`) out."""

    def __init__(self, path: str | Path = DETECTOR_FILE, threads: int = 2,
                 min_score: float = DET_MIN_SCORE, tile_fallback: bool = True) -> None:
        super().__init__(weights.verified(path), threads, (1, DET_INPUT, DET_INPUT, 3))
        self._boxes = self.output_index(4 + 2 * DET_NUM_KEYPOINTS, 3)
        self._scores = self.output_index(1, 3)
        self._anchors = ssd_anchors(**ANCHOR_OPTIONS)
        self.min_score = min_score
        self.tile_fallback = tile_fallback

    def __call__(self, frame: np.ndarray, tiles: bool | str | None = None,
                 weak: float | None = None) -> list[PoseBox]:
        """Run the person detector on a frame (H, W, 3) uint8 RGB.

        The whole frame is letterboxed to 224x224. When that finds nobody and ``tiles`` (default:
        ``tile_fallback``) is on, the detector also runs on 4 overlapping corner tiles of 60% of
        the frame's width and height, which lets it see people about 1.7 times smaller (the
        letterbox leaves a person under ~40 px tall in the model input unseen).
        ``tiles="always"`` runs the tiles even when the whole frame found someone (small people
        beside a large one; 5 detector runs).
        ``weak``: also return the boxes scoring from ``weak`` up to ``min_score`` that overlap
        no confident one (people the face-keyed detector is unsure of, e.g. seen from behind),
        for the caller to verify; their ``score`` tells them apart.

        Returns the people found, best score first (pixels in the frame).
        """
        people = self.detect_once(frame, weak)
        sure = any(p.score >= self.min_score for p in people)
        if tiles != "always" and (sure or not (self.tile_fallback if tiles is None else tiles)):
            return people
        h, w = frame.shape[:2]
        th, tw = int(round(h * TILE_FRACTION)), int(round(w * TILE_FRACTION))
        for y0 in (0, h - th):
            for x0 in (0, w - tw):
                for p in self.detect_once(frame[y0:y0 + th, x0:x0 + tw], weak):
                    off = np.array([x0, y0], float)
                    people.append(PoseBox(p.box + np.tile(off, 2), p.keypoints + off, p.score))
        if len(people) > 1:  # the same person seen in two tiles
            keep = nms(np.array([p.box for p in people]), np.array([p.score for p in people]),
                       DET_NMS_IOU)
            people = [people[i] for i in keep]
        return people

    def detect_once(self, frame: np.ndarray, weak: float | None = None) -> list[PoseBox]:
        """One detector run on the whole of ``frame``; people best score first, frame pixels
        (``weak``: as :meth:`__call__`)."""
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
        raw_boxes, raw_scores = self.run(img[None], [self._boxes, self._scores])
        boxes, kps, scores = decode_detections(raw_boxes[0], raw_scores[0], self._anchors)
        keep = scores >= self.min_score
        boxes_s, scores_s, kps_s = weighted_nms(boxes[keep], scores[keep], kps[keep], DET_NMS_IOU)
        if weak is not None:  # unsure boxes, merged among themselves, away from the sure ones
            low = (scores >= weak) & ~keep
            b, s, k = weighted_nms(boxes[low], scores[low], kps[low], DET_NMS_IOU)
            apart = [not len(boxes_s) or iou(x, boxes_s).max() <= DET_NMS_IOU for x in b]
            boxes_s = np.concatenate([boxes_s, b[apart]])
            scores_s = np.concatenate([scores_s, s[apart]])
            kps_s = np.concatenate([kps_s.reshape(-1, DET_NUM_KEYPOINTS, 2),
                                    k.reshape(-1, DET_NUM_KEYPOINTS, 2)[apart]])
        # tensor-normalised -> frame pixels (undo the letterbox: exact per-axis scales)
        sx, sy = nw / uw, nh / uh

        def to_px(p: np.ndarray) -> np.ndarray:
            q = p * DET_INPUT
            return np.stack([(q[..., 0] - ox) / sx, (q[..., 1] - oy) / sy], axis=-1)

        return [PoseBox(to_px(b.reshape(2, 2)).reshape(4), to_px(k), float(s))
                for b, k, s in zip(boxes_s, kps_s.reshape(-1, DET_NUM_KEYPOINTS, 2), scores_s)]


class PoseLandmarker(TFLiteModel):
    """Stage 2, the landmark model: a frame and a :class:`Roi` in, one :class:`LandmarkResult`
    (39 landmarks in frame pixels) out."""

    def __init__(self, path: str | Path, threads: int = 2, refine: bool = True) -> None:
        super().__init__(path, threads, (1, LMK_INPUT, LMK_INPUT, 3))
        self._xy = self.output_index(NUM_MODEL_LANDMARKS * 5, 2)
        self._flag = self.output_index(1, 2)
        self._heat = self.output_index(NUM_MODEL_LANDMARKS, 4)
        try:  # world landmarks: (1, 117) = 39 x (x, y, z) metres
            self._world: int | None = self.output_index(NUM_MODEL_LANDMARKS * 3, 2)
        except weights.WeightsError:
            self._world = None
        self.refine = refine

    def __call__(self, frame: np.ndarray, roi: Roi) -> LandmarkResult:
        """Run the landmark model on ``roi`` of ``frame``; results in frame pixels."""
        crop = warp_roi(frame, roi, LMK_INPUT)
        outputs = [self._xy, self._flag, self._heat] + ([self._world] if self._world is not None
                                                        else [])
        raw, flag, heat, *world = self.run((crop.astype(np.float32) / 255.0)[None], outputs)
        raw = raw[0].reshape(NUM_MODEL_LANDMARKS, 5).astype(np.float64)
        xy = raw[:, :2] / LMK_INPUT
        if self.refine:
            xy = refine_from_heatmap(xy, heat[0])
        w3 = (world_to_frame(world[0].reshape(NUM_MODEL_LANDMARKS, 3), roi.angle)
              if world else None)
        return LandmarkResult(crop_to_image(xy * LMK_INPUT, roi, LMK_INPUT), sigmoid(raw[:, 3]),
                              sigmoid(raw[:, 4]), float(flag.reshape(-1)[0]), roi, w3)

    @staticmethod
    def next_roi(res: LandmarkResult) -> Roi:
        """The ROI for the next frame, from the auxiliary alignment landmarks."""
        return roi_from_points(res.xy[AUX_CENTER], res.xy[AUX_SCALE])


# ---------------------------------------------------------------------------------------------
# Fetching the models that are not shipped
# ---------------------------------------------------------------------------------------------

def download_model(name: str, dest: str | Path | None = None) -> Path:
    """Download a model that is not shipped (``blazepose-heavy``) and verify its sha256.

    Fetches the npm tarball of @mediapipe/pose (network needed, ~30 MB, with a progress bar on a
    terminal), extracts the model into ``dest`` (default the user cache,
    :func:`posecli.weights.user_cache`) and returns its path. A network failure is a one-line
    WeightsError that names the URL.
    """
    import shutil
    import tarfile
    import tempfile

    from posecli.download import download

    fname = LANDMARK_FILES.get(name, name)
    if fname not in DOWNLOADABLE:
        raise ValueError(f"{name!r} is shipped with posecli or unknown; downloadable: "
                         f"{', '.join(k for k, v in LANDMARK_FILES.items() if v in DOWNLOADABLE)}")
    url, member = DOWNLOADABLE[fname]
    expected = weights.load_manifest().get(fname, {}).get("sha256")
    dest = Path(dest) if dest else weights.user_cache()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # no pin for the tarball (npm publishes sha512/sha1 only): the member's sha256 is checked
        tgz = download(url, Path(tmp) / "pkg.tgz",
                       hint=f"download it elsewhere and put {fname} (the tarball's {member}) "
                            "in $POSECLI_WEIGHTS")
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
