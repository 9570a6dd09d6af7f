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

#: The tracker's detector schedule (see :class:`PoseTracker`), chosen by measurement
#: (benchmarks/multi_person.py --schedule), in seconds of video: between searches for
#: newcomers, between full searches, between searches while someone lost may come back, and
#: for how long after the loss; the presence below which a followed person is re-detected, and
#: the body fallback's bars.
DETECT_EVERY_S = 0.5
FULL_EVERY_S = 2.0
LOST_EVERY_S = 0.1
LOST_FOR_S = 1.0
REDETECT_BELOW = 0.8
#: a followed person's result below the presence bar but above this gets a second pass
RETRY_PRESENCE = 0.1
FALLBACK_SCORE = 0.05
FALLBACK_PASSES = 3
FALLBACK_PRESENCE = 0.9

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
    world: np.ndarray | None = None       # (K, 3) metres, hip-centred (BlazePose), frame axes
    visibility: np.ndarray | None = None  # (K,) in [0, 1] (BlazePose)


def _body_pose(res: LandmarkResult) -> Pose2D:
    """The 33 body landmarks of a landmark result, confidence = visibility x presence, with
    their world landmarks and visibility."""
    conf = res.visibility[:NUM_LANDMARKS] * res.presence[:NUM_LANDMARKS]
    world = None if res.world is None else res.world[:NUM_LANDMARKS].copy()
    return Pose2D(res.xy[:NUM_LANDMARKS].copy(), conf, float(res.score), res, world,
                  res.visibility[:NUM_LANDMARKS].copy())


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


def _body_in_view(p: PoseBox, width: int, height: int) -> bool:
    """Could detection ``p`` be a person in the picture: its hip centre inside the frame and its
    body circle between MIN_ROI_SIZE / 2 and the frame's height (the unsure boxes are mostly
    neither)."""
    r = float(np.hypot(*(p.keypoints[1] - p.keypoints[0])))
    x, y = p.keypoints[0]
    return bool(0 <= x < width and 0 <= y < height and MIN_ROI_SIZE / 2 <= r <= height)


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
        return Detection(pose.xy, pose.conf, float(np.clip(pose.score, 0, 1)), world=pose.world,
                         visibility=pose.visibility)


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
        """Next frame's crop of a track (or of a :class:`Pose2D`), from its own landmarks."""
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
        """Next frame's crop of a track (or of a :class:`Pose2D`), from its keypoints."""
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

    The person detector runs only when tracking needs it (between its runs each person's crop
    comes from their own keypoints of the previous frame, as in MediaPipe):
    - on every frame while nobody is followed (fully every ``detect_every`` frames);
    - a full search (below) on a frame where a followed person was lost; a search where one's
      keypoint model's presence fell
      below ``redetect_below`` (a fresh crop from the detector then replaces theirs when it
      scores better, keeping their identity);
    - every ``detect_every`` frames, for newcomers; every ``lost_every`` frames while someone
      lost in the last ``lost_for`` frames may come back;
    - a *full search* on the first frame and every ``full_every`` frames: the whole frame, its
      4 corner tiles (people too small for the whole-frame letterbox) and the body fallback:
      the detector's unsure boxes (score from ``fallback_score``), which the face-keyed
      detector gives people seen from behind, each checked by the keypoint model (presence at
      least ``fallback_presence`` and a plausible body).

    Args:
        name: ``blazepose-lite|full|heavy`` (BlazePose's landmark model as the second stage), or
            any name when ``stage2`` is given.
        stage2: the keypoint model run on each person's crop (default: BlazePose's landmark
            model of ``name``; :class:`TopDownKeypoints` for HRNet). The person detector is
            BlazePose's in both cases.
        max_people: people followed at once (the keypoint model runs once per person a frame).
        fps: the video's frame rate (also ``reset(fps)``): the schedule's defaults are in
            seconds of video (``*_S`` above: 15, 60, 3 and 30 frames at 30 fps).
        detect_every, full_every, lost_every, lost_for (frames), redetect_below, fallback_score,
            fallback_presence, fallback_max: the detector's schedule and the body fallback (above);
            ``fallback_max`` unsure boxes at most are checked per full search, best first.
        newcomers: look for people who come into view while everyone found is followed (the
            periodic and full searches). Off (``--person auto``, which lifts one person: the
            people in view at the start, or whoever is there once they are lost), the detector
            runs only on the first frame and when someone is lost or weak.
        roi_lead: a track's ROI is moved by this many frames of its velocity (on the composite
            clips 1.0 gives 4.28 px limb error against 4.31 px with 0.0, MediaPipe's choice).
        min_presence: landmark results below this pose-presence probability are dropped
            (BlazePose's second stage).
        Others as :class:`BlazePose`.
    """

    def __init__(self, name: str = "blazepose-full", threads: int = 2, max_people: int = 5,
                 fps: float = 30.0, detect_every: int | None = None,
                 full_every: int | None = None,
                 redetect_below: float = REDETECT_BELOW,
                 fallback_score: float | None = FALLBACK_SCORE,
                 fallback_presence: float = FALLBACK_PRESENCE, fallback_max: int = 8,
                 lost_every: int | None = None, lost_for: int | None = None,
                 newcomers: bool = True,
                 roi_lead: float = 1.0,
                 min_detection_score: float = DET_MIN_SCORE,
                 min_presence: float = MIN_PRESENCE, refine: bool = True,
                 tile_fallback: bool = True, detector_file: str | Path = DETECTOR_FILE,
                 landmark_file: str | Path | None = None, tracker: Tracker | None = None,
                 stage2=None) -> None:
        self._intervals = {"detect_every": detect_every, "full_every": full_every,
                           "lost_every": lost_every, "lost_for": lost_for}
        if max_people < 1 or any(v is not None and v < 1 for v in self._intervals.values()):
            raise ValueError("max_people and the detector's intervals must be at least 1")
        self._schedule(fps)
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
        self.max_people = max_people
        self.redetect_below = redetect_below
        self.fallback_score, self.fallback_presence = fallback_score, fallback_presence
        self.fallback_max = fallback_max
        self.newcomers = newcomers
        self.lead = roi_lead
        self.tracker = tracker or Tracker(spec=self.spec)
        self._last_search = self._last_full = -10**9
        #: why candidates were rejected on the last call, stage timings, what the detector did
        #: on the last call ("" / "search" / "full") and tallies over the video (benchmarks,
        #: tests)
        self.last_rejected: list[str] = []
        self.last_timing: dict[str, float] = {}
        self.last_search = ""
        #: fallback_checked: unsure boxes given to the keypoint model; fallback_runs: its extra
        #: passes; fallback_seconds: the time all that took
        self.counts = {"frames": 0, "searches": 0, "full_searches": 0, "fallback_checked": 0,
                       "fallback_runs": 0, "fallback_found": 0, "fallback_seconds": 0.0}

    def _schedule(self, fps: float) -> None:
        """The detector's intervals in frames at ``fps`` (those not given in frames)."""
        fps = fps if np.isfinite(fps) and fps > 0 else 30.0
        seconds = {"detect_every": DETECT_EVERY_S, "full_every": FULL_EVERY_S,
                   "lost_every": LOST_EVERY_S, "lost_for": LOST_FOR_S}
        for k, v in self._intervals.items():
            setattr(self, k, int(v) if v is not None else max(1, round(seconds[k] * fps)))

    def reset(self, fps: float | None = None) -> None:
        """Forget every track (call at the start of a new video; ``fps``: its frame rate, for
        the detector's schedule)."""
        self.tracker.reset()
        if fps is not None:
            self._schedule(fps)
        self._last_search = self._last_full = -10**9
        self.counts = {k: type(v)() for k, v in self.counts.items()}

    def description(self) -> dict:
        """What a result records about the detector: name, layout and, where the second stage
        has a model file of its own (HRNet), which file and runtime."""
        model = getattr(self.stage2, "description", None)
        return {"name": self.name, "layout": self.layout, **({"model": model} if model else {})}

    def _candidate(self, frame: np.ndarray, pose: Pose2D, source: int | None,
                   min_presence: float | None = None) -> Candidate | None:
        """Gate a keypoint result: presence, plausible body; joints outside the picture get
        ``OUTSIDE_CONF``."""
        if pose.score < (self.stage2.min_presence if min_presence is None else min_presence):
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
                         colour_histogram(frame, pose.xy, self.spec), pose.world,
                         pose.visibility)

    def _follow(self, frame: np.ndarray, live: list) -> list[Candidate]:
        """1. Each live person where their own keypoints and motion put them."""
        rois, sources = [], []
        for t in live[:self.max_people]:
            roi = self.stage2.roi_for_track(t)
            if roi is None:
                continue
            rois.append(replace(roi, cx=roi.cx + self.lead * float(t.velocity[0]),
                                cy=roi.cy + self.lead * float(t.velocity[1])))
            sources.append(t.id)
        cands = []
        for pose, source in zip(self.stage2(frame, rois), sources):
            if RETRY_PRESENCE <= pose.score < self.stage2.min_presence:
                # the person moved further than the crop allowed (fast motion, low frame
                # rate): one more pass on the crop this result's own keypoints give
                roi = self.stage2.roi_for_track(pose)
                pose = self.stage2(frame, [roi])[0] if roi is not None else pose
            c = self._candidate(frame, pose, source)
            if c is not None:
                cands.append(c)
        return cands

    def _near(self, p: PoseBox, c: Candidate) -> bool:
        """Is detection ``p`` (its hip centre) on the followed person ``c``?"""
        hips = list(self.spec.hips)
        return bool(np.linalg.norm(p.keypoints[0] - c.xy[hips].mean(0))
                    < 0.6 * body_scale(c.xy, self.spec))

    def _settle(self, frame: np.ndarray, pose: Pose2D) -> Pose2D:
        """An unsure box is often off the body: up to FALLBACK_PASSES - 1 more passes, each on
        the crop the last one's own keypoints give (as tracking does), settle on the person or
        not."""
        for _ in range(FALLBACK_PASSES - 1):
            roi = self.stage2.roi_for_track(pose)
            if not RETRY_PRESENCE <= pose.score < self.fallback_presence or roi is None:
                break
            pose = self.stage2(frame, [roi])[0]
            self.counts["fallback_runs"] += 1
        return pose

    def _search(self, frame: np.ndarray, cands: list[Candidate], full: bool, fallback: bool
                ) -> list[Candidate]:
        """2. The person detector: newcomers, people lost, fresh crops for weak tracks; with
        ``full``, also the corner tiles; with ``fallback``, the body fallback.
        -> the candidates, amended."""
        tiles = "always" if full else False
        weak = self.fallback_score if fallback else None
        people = self.detector(frame, tiles=tiles, weak=weak)
        sure = [p for p in people if p.score >= self.detector.min_score]
        h, w = frame.shape[:2]
        unsure = [p for p in people if p.score < self.detector.min_score
                  and _body_in_view(p, w, h)
                  and not any(self._near(p, c) for c in cands)][:self.fallback_max]
        cands = list(cands)
        for p in sure + unsure:
            fallback = p.score < self.detector.min_score
            on = [i for i, c in enumerate(cands) if self._near(p, c)]
            if on and (fallback or cands[on[0]].score >= self.redetect_below):
                continue  # someone already followed, and well
            if not on and len(cands) >= self.max_people:
                continue
            t0 = time.perf_counter()
            pose = self.stage2(frame, [self.stage2.roi_for_detection(p)])[0]
            if fallback:
                pose = self._settle(frame, pose)
                self.counts["fallback_checked"] += 1
                self.counts["fallback_seconds"] += time.perf_counter() - t0
            c = self._candidate(frame, pose, None,
                                self.fallback_presence if fallback else None)
            if c is None:
                continue
            if on:  # a weak track: the detector's crop replaces its own when it does better
                old = cands[on[0]]
                if c.score > old.score and _overlap(c, old) > 0.6:
                    c.source = old.source
                    cands[on[0]] = c
            elif not any(_overlap(c, k) > 0.6 for k in cands):
                cands.append(c)  # (a newcomer mostly inside someone followed is them again)
                self.counts["fallback_found"] += fallback
        return cands

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        frame = check_frame(frame)
        self.last_rejected = []
        timing = {"detect": 0.0, "landmark": 0.0}
        t0 = time.perf_counter()
        live = self.tracker.live()
        cands = self._follow(frame, live)
        timing["landmark"] += time.perf_counter() - t0
        f = self.tracker.frame + 1
        lost = len(cands) < min(len(live), self.max_people)
        weak = any(c.score < self.redetect_below for c in cands)
        # while nobody is followed the whole frame is searched on every frame, and fully (tiles,
        # fallback) every detect_every frames; a person just lost gets one full search
        full = lost or f - self._last_full >= (self.full_every if cands else self.detect_every)
        # someone lost in the last second may reappear (from behind someone): look more often
        recent = any(f - t.last_frame <= self.lost_for for t in self.tracker.lost())
        periodic = f - self._last_search >= (self.lost_every if recent else self.detect_every)
        if not self.newcomers and cands and not lost:
            # following the people found so far is all that is asked: no search while they
            # are all followed well
            full, periodic = f == 0, recent and periodic
        due = not cands or lost or weak or full or periodic
        self.last_search = ""
        if due and (len(cands) < self.max_people or weak):
            t1 = time.perf_counter()
            # the body fallback: on full searches, and while nobody is followed
            cands = self._search(frame, cands, full, full or not cands)
            timing["detect"] = time.perf_counter() - t1
            self._last_search = f
            self._last_full = f if full else self._last_full
            self.last_search = "full" if full else "search"
            self.counts["searches"] += 1
            self.counts["full_searches"] += full
        self.counts["frames"] += 1
        pairs = self.tracker.update(cands)  # 3. identities
        self.last_timing = timing
        h, w = frame.shape[:2]
        return [Detection(c.xy.copy(), c.conf.copy(), c.score, track_id=t.id,
                          outside=outside_frame(c.xy, w, h), world=c.world,
                          visibility=c.visibility) for t, c in pairs]
