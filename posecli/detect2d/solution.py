"""Solutions: the models chained into something that follows people through a video.

- :class:`BlazePose`: one person, MediaPipe Pose's way (detector until someone is found, then
  the landmark model on the ROI its own landmarks predict; re-detect when lost). The
  :class:`posecli.detect2d.Detector` interface.
- :class:`PoseTracker`: every person (up to ``max_people``), each with a stable identity: the
  landmark model runs on each live track's predicted ROI, the person detector runs every few
  frames (and whenever a track was lost) to find newcomers, and :class:`.tracker.Tracker`
  associates, re-identifies and fixes left/right labels. Results are quality-gated (presence,
  plausible proportions) and joints outside the picture get a low confidence.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from posecli.detect2d import Detection
from posecli.detect2d.blazepose import (AUX_CENTER, AUX_SCALE, DET_MIN_SCORE, DETECTOR_FILE,
                                        LANDMARK_FILES, LAYOUT, MIN_PRESENCE, MIN_ROI_SIZE,
                                        NUM_LANDMARKS, LandmarkResult, PoseBox, PoseDetector,
                                        PoseLandmarker, landmark_path)
from posecli.detect2d.boxes import points_box
from posecli.detect2d.crops import Roi, roi_from_points
from posecli.detect2d.hrnet import LAYOUT as HRNET_LAYOUT
from posecli.detect2d.hrnet import KEYPOINT_BOX_PADDING, MIN_SCORE, HRNetPose, box_roi
from posecli.detect2d.tracker import (BLAZEPOSE33, COCO17, Candidate, Tracker, body_scale,
                                      colour_histogram, outside_frame, plausible)

__all__ = ["BlazePose", "PoseTracker", "BlazePoseLandmarks", "TopDownKeypoints", "Pose2D",
           "OUTSIDE_CONF", "check_frame"]

#: Confidence given to a joint outside the picture: below the gap-filling threshold (0.1), so
#: downstream such a joint is interpolated or flagged missing instead of trusted.
OUTSIDE_CONF = 0.05


@dataclass
class Pose2D:
    """A second stage's result for one crop, in frame pixels."""
    xy: np.ndarray      # (K, 2)
    conf: np.ndarray    # (K,) in [0, 1]
    score: float        # presence of a person in the crop, in [0, 1]
    extra: object       # the model's own result (kept on the track)


def _body_pose(res: LandmarkResult) -> Pose2D:
    """The 33 body landmarks of a landmark result, confidence = visibility x presence."""
    conf = res.visibility[:NUM_LANDMARKS] * res.presence[:NUM_LANDMARKS]
    return Pose2D(res.xy[:NUM_LANDMARKS].copy(), conf, float(res.score), res)


def check_frame(frame: np.ndarray) -> np.ndarray:
    """The frame as a contiguous (H, W, 3) uint8 array; ValueError otherwise."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
    return np.ascontiguousarray(frame)


def _models(name: str, threads: int, detector_file: str | Path, landmark_file, refine: bool,
            min_detection_score: float, tile_fallback: bool):
    if name not in LANDMARK_FILES:
        raise ValueError(f"unknown BlazePose variant {name!r}; known: {', '.join(LANDMARK_FILES)}")
    det = PoseDetector(detector_file, threads, min_detection_score, tile_fallback)
    lmk = PoseLandmarker(landmark_path(name, landmark_file), threads, refine)
    return det, lmk


def _tracking_roi(res: LandmarkResult) -> Roi | None:
    """Next frame's ROI from the auxiliary landmarks; None when degenerate (collapsed points)."""
    roi = roi_from_points(res.xy[AUX_CENTER], res.xy[AUX_SCALE])
    return roi if roi.size >= MIN_ROI_SIZE and np.isfinite(roi.size) else None


def _most_prominent(people: list[PoseBox]) -> PoseBox:
    """The person to follow: highest detector score, ties (within 0.05) broken by body size."""
    best = max(p.score for p in people)
    close = [p for p in people if p.score >= best - 0.05]
    return max(close, key=lambda p: float(np.hypot(*(p.keypoints[1] - p.keypoints[0]))))


def _overlap(a: Candidate, b: Candidate, min_conf: float = 0.3) -> float:
    """Intersection of two poses' keypoint boxes over the smaller box's area, in [0, 1]."""
    ba, bb = points_box(a.xy, a.conf, min_conf), points_box(b.xy, b.conf, min_conf)
    if not (np.isfinite(ba).all() and np.isfinite(bb).all()):
        return 0.0
    iw = max(0.0, min(ba[2], bb[2]) - max(ba[0], bb[0]))
    ih = max(0.0, min(ba[3], bb[3]) - max(ba[1], bb[1]))
    area = lambda b: max(b[2] - b[0], 1.0) * max(b[3] - b[1], 1.0)  # noqa: E731
    return float(iw * ih / min(area(ba), area(bb)))


class BlazePose:
    """Single-person BlazePose tracker. See :class:`posecli.detect2d.Detector`."""

    layout = LAYOUT

    def __init__(self, name: str = "blazepose-full", threads: int = 2,
                 min_detection_score: float = DET_MIN_SCORE,
                 min_presence: float = MIN_PRESENCE, refine: bool = True,
                 tile_fallback: bool = True,
                 detector_file: str | Path = DETECTOR_FILE,
                 landmark_file: str | Path | None = None) -> None:
        self.name = name
        self.detector, self.landmarker = _models(name, threads, detector_file, landmark_file,
                                                 refine, min_detection_score, tile_fallback)
        self.min_presence = min_presence
        self._roi: Roi | None = None
        #: seconds spent in each stage on the last call (for benchmarks)
        self.last_timing: dict[str, float] = {}

    def reset(self) -> None:
        """Forget the tracked person (call at the start of a new video)."""
        self._roi = None

    def detect(self, frame: np.ndarray, tiles: bool | None = None) -> list[PoseBox]:
        """Stage 1 on a frame: every person found, best score first (see PoseDetector)."""
        return self.detector(frame, tiles)

    def landmarks(self, frame: np.ndarray, roi: Roi) -> LandmarkResult:
        """Stage 2 on ``roi`` of ``frame``; results in frame pixels."""
        return self.landmarker(frame, roi)

    def __call__(self, frame: np.ndarray) -> Detection | None:
        frame = check_frame(frame)
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
        self._roi = _tracking_roi(res)
        pose = _body_pose(res)
        return Detection(pose.xy, pose.conf, float(np.clip(pose.score, 0, 1)))


class BlazePoseLandmarks:
    """BlazePose's landmark model as the tracker's second stage: a rotated ROI per person, from
    the detector's body circle or the person's own auxiliary landmarks of the previous frame."""

    layout = LAYOUT
    spec = BLAZEPOSE33

    def __init__(self, landmarker: PoseLandmarker, min_presence: float = MIN_PRESENCE) -> None:
        self.landmarker, self.min_presence = landmarker, min_presence

    def roi_for_detection(self, p: PoseBox) -> Roi:
        return p.roi()

    def roi_for_track(self, t) -> Roi | None:
        return _tracking_roi(t.extra) if isinstance(t.extra, LandmarkResult) else None

    def __call__(self, frame: np.ndarray, rois: list[Roi]) -> list[Pose2D]:
        return [_body_pose(self.landmarker(frame, roi)) for roi in rois]


class TopDownKeypoints:
    """A top-down heatmap model (HRNet) as the tracker's second stage: an upright 3:4 crop per
    person, from the detector's body circle or the person's keypoints of the previous frame."""

    layout = HRNET_LAYOUT
    spec = COCO17

    def __init__(self, model: HRNetPose, min_presence: float = MIN_SCORE) -> None:
        self.model, self.min_presence = model, min_presence
        self.description = model.description  # which file and runtime (recorded in results)

    def roi_for_detection(self, p: PoseBox) -> Roi:
        # BlazePose's circle is centred on the hips with a radius reaching the head: the body
        # spans +-r along its up direction and about +-0.75 r across it
        c, up = p.keypoints[0], p.keypoints[1] - p.keypoints[0]
        r = float(np.hypot(*up))
        u = np.abs(up) / max(r, 1e-9)
        half = r * (u + 0.75 * u[::-1])
        return box_roi(np.concatenate([c - half, c + half]))

    def roi_for_track(self, t) -> Roi | None:
        box = points_box(t.xy, t.conf, 0.3)
        if not np.isfinite(box).all() or min(box[2] - box[0], box[3] - box[1]) < 1:
            return None
        return box_roi(box, KEYPOINT_BOX_PADDING)

    def __call__(self, frame: np.ndarray, rois: list[Roi]) -> list[Pose2D]:
        return [Pose2D(r.xy, r.conf, r.score, r) for r in self.model(frame, rois)]


class PoseTracker:
    """Every person in a video, with stable identities (see the module docstring).

    ``__call__(frame)`` -> list of :class:`Detection` with ``track_id`` and ``outside`` set,
    ordered by track id. Identities start at 1 and are never reused within a video.

    Args:
        name: ``blazepose-lite|full|heavy`` (BlazePose's landmark model as the second stage), or
            any name when ``stage2`` is given.
        stage2: the keypoint model run on each person's crop (default: BlazePose's landmark
            model of ``name``; :class:`TopDownKeypoints` for HRNet). The person detector is
            BlazePose's in both cases.
        max_people: people followed at once (the keypoint model runs once per person a frame).
        detect_every: frames between person-detector runs while everyone followed is found
            (newcomers wait at most this long); the detector also runs whenever a followed
            person was lost, and on every frame while nobody is followed.
        tile_every: every ``tile_every`` detector runs, the detector also looks at 4 corner
            tiles of the frame (5 runs), for people too small for the whole-frame letterbox.
        roi_lead: a track's ROI is moved by this many frames of its velocity (on the composite
            clips 1.0 gives 4.28 px limb error against 4.31 px with 0.0, MediaPipe's choice).
        min_presence: landmark results below this pose-presence probability are dropped
            (BlazePose's second stage).
        Others as :class:`BlazePose`.
    """

    def __init__(self, name: str = "blazepose-full", threads: int = 2, max_people: int = 5,
                 detect_every: int = 3, tile_every: int = 10, roi_lead: float = 1.0,
                 min_detection_score: float = DET_MIN_SCORE,
                 min_presence: float = MIN_PRESENCE, refine: bool = True,
                 tile_fallback: bool = True, detector_file: str | Path = DETECTOR_FILE,
                 landmark_file: str | Path | None = None, tracker: Tracker | None = None,
                 stage2=None) -> None:
        if max_people < 1 or detect_every < 1:
            raise ValueError("max_people and detect_every must be at least 1")
        self.name = name
        if stage2 is None:
            self.detector, landmarker = _models(name, threads, detector_file, landmark_file,
                                                refine, min_detection_score, tile_fallback)
            stage2 = BlazePoseLandmarks(landmarker, min_presence)
        else:
            self.detector = PoseDetector(detector_file, threads, min_detection_score,
                                         tile_fallback)
        self.stage2 = stage2
        self.layout = stage2.layout
        self.spec = stage2.spec
        self.max_people, self.detect_every, self.tile_every = max_people, detect_every, tile_every
        self.lead = roi_lead
        self.tracker = tracker or Tracker(spec=self.spec)
        #: why candidates were rejected on the last call, and stage timings (benchmarks, tests)
        self.last_rejected: list[str] = []
        self.last_timing: dict[str, float] = {}

    def reset(self) -> None:
        """Forget every track (call at the start of a new video)."""
        self.tracker.reset()

    def description(self) -> dict:
        """What a result records about the detector: name, layout and, where the second stage
        has a model file of its own (HRNet), which file and runtime."""
        model = getattr(self.stage2, "description", None)
        return {"name": self.name, "layout": self.layout, **({"model": model} if model else {})}

    def _candidate(self, frame: np.ndarray, pose: Pose2D, source: int | None
                   ) -> Candidate | None:
        """Gate a keypoint result: presence, plausible body; joints outside the picture get
        ``OUTSIDE_CONF``."""
        if pose.score < self.stage2.min_presence:
            self.last_rejected.append("low presence")
            return None
        h, w = frame.shape[:2]
        out = outside_frame(pose.xy, w, h)
        conf = np.where(out, np.minimum(pose.conf, OUTSIDE_CONF), pose.conf)
        ok, why = plausible(pose.xy, conf, self.spec)
        if not ok:
            self.last_rejected.append(why)
            return None
        return Candidate(pose.xy, conf, float(np.clip(pose.score, 0, 1)), source, pose.extra,
                         colour_histogram(frame, pose.xy, self.spec))

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        frame = check_frame(frame)
        self.last_rejected = []
        timing = {"detect": 0.0, "landmark": 0.0}
        t0 = time.perf_counter()
        cands: list[Candidate] = []
        live = self.tracker.live()
        rois, sources = [], []
        for t in live[:self.max_people]:  # 1. each live person where their motion puts them
            roi = self.stage2.roi_for_track(t)
            if roi is None:
                continue
            rois.append(replace(roi, cx=roi.cx + self.lead * float(t.velocity[0]),
                                cy=roi.cy + self.lead * float(t.velocity[1])))
            sources.append(t.id)
        for pose, source in zip(self.stage2(frame, rois), sources):
            c = self._candidate(frame, pose, source)
            if c is not None:
                cands.append(c)
        timing["landmark"] += time.perf_counter() - t0
        f = self.tracker.frame + 1
        if (f % self.detect_every == 0 or len(cands) < len(live) or not cands) \
                and len(cands) < self.max_people:  # 2. newcomers and people lost
            t1 = time.perf_counter()
            # tiles: when nobody is followed, or now and then to find people too small for the
            # whole-frame letterbox (wide frames, people far away)
            tiles = "always" if f % (self.tile_every * self.detect_every) == 0 else None
            people = self.detector(frame, tiles=tiles if not live or tiles else False)
            timing["detect"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            hips = list(self.spec.hips)
            for p in people:
                if len(cands) >= self.max_people:
                    break
                if any(np.linalg.norm(p.keypoints[0] - c.xy[hips].mean(0))
                       < 0.6 * body_scale(c.xy, self.spec) for c in cands):
                    continue  # someone already followed
                pose = self.stage2(frame, [self.stage2.roi_for_detection(p)])[0]
                c = self._candidate(frame, pose, None)
                if c is not None and not any(_overlap(c, k) > 0.6 for k in cands):
                    cands.append(c)  # (a newcomer mostly inside someone followed is them again)
            timing["landmark"] += time.perf_counter() - t1
        pairs = self.tracker.update(cands)  # 3. identities
        self.last_timing = timing
        h, w = frame.shape[:2]
        return [Detection(c.xy.copy(), c.conf.copy(), c.score, track_id=t.id,
                          outside=outside_frame(c.xy, w, h)) for t, c in pairs]
