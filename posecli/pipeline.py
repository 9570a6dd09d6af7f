"""The one entry point: video (or 2D keypoints) in, :class:`LiftResult` out.

Data flows one way: frames -> 2D keypoints (detect2d) -> H36M-17 keypoints with gaps filled
(skeleton) -> 3D (lifter over blended windows) -> a LiftResult that every writer can use.
Only keypoints are kept per frame, never frames, so memory does not grow with video length.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from posecli import footlock, quality, skeleton, trajectory
from posecli.compute import set_torch_threads
from posecli.errors import NoPersonError, UsageError, VideoError
from posecli.lifter import Lifter, load_lifter
from posecli.options import LiftOptions
from posecli.result import LiftResult

# progress(stage, done, total): called as work advances; total is None when unknown.
Progress = Callable[[str, int, "int | None"], None]

MAX_GAP_SECONDS = 0.5  # gaps up to this long are interpolated; longer ones are flagged missing


class Models:
    """The models a lift needs, built on first use and reused for every clip lifted with the
    same model options (a batch builds them once per worker process).

    ``lifter``: an already loaded :class:`posecli.lifter.Lifter` to use instead of loading one.
    """

    def __init__(self, options: LiftOptions, lifter: Lifter | None = None):
        self.options, self._lifter, self._tracker = options, lifter, None
        self._fusion = False  # not loaded yet (None: off)
        self.key = options.model_key()

    def fits(self, options: LiftOptions) -> bool:
        """True when ``options`` would build the same models."""
        return options.model_key() == self.key

    @property
    def lifter(self) -> Lifter:
        if self._lifter is None:
            o = self.options
            if o.backend == "torch":  # (onnxruntime sessions take their threads themselves)
                set_torch_threads(o.threads)
            self._lifter = load_lifter(o.weights, backend=o.backend, flip=o.flip, stride=o.stride,
                                       threads=o.threads)
        return self._lifter

    @property
    def fusion(self):
        """The fusion of the lifter's 3D with BlazePose's world landmarks
        (:class:`posecli.lifter.fusion.Fusion`), None for ``fusion="off"``."""
        if self._fusion is False:
            from posecli.lifter.fusion import resolve
            self._fusion = resolve(self.options.fusion)
        return self._fusion

    @property
    def tracker(self):
        """The detector's multi-person tracker (reset before each video by :func:`track_video`)."""
        if self._tracker is None:
            from posecli.detect2d import create_tracker
            o = self.options  # (a detector on torch sizes torch's pool itself: BlazePose has none)
            try:
                self._tracker = create_tracker(o.detector, threads=o.threads, max_people=o.max_people,
                                               pose_model=o.pose_model)
            except ValueError as e:
                raise UsageError(str(e)) from None
        return self._tracker


def _setup(options: LiftOptions | None, fields: dict, models: Models | None,
           lifter: Lifter | None) -> tuple[LiftOptions, Models]:
    options = (options or LiftOptions()).replace(**fields) if fields else (options or LiftOptions())
    if models is None or not models.fits(options):
        models = Models(options, lifter)
    return options, models


def lift(source: "str | Path", options: LiftOptions | None = None, *,
         progress: Progress | None = None, models: Models | None = None,
         lifter: Lifter | None = None, **fields) -> "LiftResult | list[LiftResult]":
    """Lift a video or a 2D keypoint file (``.json``) to 3D; the one entry point.

    Args:
        source: a video file (anything ffmpeg decodes) or a posecli keypoint / result JSON.
        options: a :class:`posecli.options.LiftOptions`; ``fields`` (its field names as
            keywords: ``detector=``, ``person=``, ``flip=``, ``stride=``, ``threads=`` ...)
            override it. Every option and default is documented there.
        progress: ``progress(stage, done, total)`` callback.
        models: built models to reuse (:class:`Models`; a batch keeps one per process).
        lifter: an already loaded :class:`posecli.lifter.Lifter` (instead of ``weights`` ...).
    Returns:
        a :class:`LiftResult` (2D keypoints in pixels, flags, root-relative 3D in metres, the
        world placement); with ``person="all"`` a list of them, one per person followed for
        0.5 s or more, ordered by track id (``result.detector["person"]["track_id"]``; a
        keypoint file gives a list of one).
    """
    options, models = _setup(options, fields, models, lifter)
    if Path(source).suffix.lower() == ".json":
        result = _lift_file(source, options, models, progress)
        return [result] if options.per_person else result
    if options.per_person:
        return lift_video_all(source, options, progress=progress, models=models)
    return lift_video(source, options, progress=progress, models=models)


def _lift_file(source, options: LiftOptions, models: Models, progress) -> LiftResult:
    from posecli.keypoints import read_keypoints
    kp = read_keypoints(source)
    xy, conf = to_h36m(kp.xy, kp.conf, kp.layout)
    return lift_keypoints(xy, conf, kp.width, kp.height, kp.fps, valid=kp.valid,
                          lifter=models.lifter, source=str(source), progress=progress,
                          times=kp.times, world=kp.world, visibility=kp.visibility,
                          fusion=models.fusion, **_lift_fields(options))


def _lift_fields(options: LiftOptions) -> dict:
    """The options :func:`lift_keypoints` takes."""
    return {"rigid": options.rigid, "plausible": options.plausible,
            "root_motion": options.root_motion, "focal": options.focal,
            "foot_lock": options.foot_lock}


def track_video(path: str | Path, options: LiftOptions | None = None,
                progress: Progress | None = None, models: Models | None = None,
                newcomers: bool = True, background=None, **fields):
    """Detect and track every person (up to ``options.max_people`` at a time) over a video,
    keeping only keypoints. ``newcomers=False``: follow the people found at the start (or,
    once they are all lost, whoever is found next) without searching for more, which is all
    ``--person auto`` needs (see :class:`posecli.detect2d.solution.PoseTracker`).
    ``background``: a :class:`posecli.camera_motion.BackgroundMotion` fed every frame with the
    boxes of the people found in it, so the camera's motion is measured in the same decode.

    Returns (info, number of frames decoded, tracks: list of
    :class:`posecli.detect2d.tracks.PersonTrack` ordered by id, detector description dict).
    """
    import dataclasses

    from posecli.detect2d.tracks import collect_tracks
    from posecli.video import VideoReader, probe

    options, models = _setup(options, fields, models, None)
    info = probe(path)
    trk = models.tracker
    trk.reset(fps=info.fps)  # the detector's schedule is in seconds of video
    trk.newcomers = newcomers
    per_frame = []
    reader = VideoReader(path, info)
    for i, frame in enumerate(reader):
        found = trk(frame)
        per_frame.append(found)
        if background is not None:  # (on a second thread it was no faster: measured)
            background.add(frame, _frame_boxes(found, info.width, info.height))
        if progress:
            progress("detect", i + 1, info.num_frames)
    tracks = collect_tracks(per_frame, skeleton.LAYOUTS[trk.layout].joints,
                            lr_fixes=trk.tracker.lr_fixed)
    info = dataclasses.replace(info, report=reader.report)  # the frames' timestamps, truncation
    return info, len(per_frame), tracks, trk.description()


def _frame_boxes(found: list, width: int, height: int) -> np.ndarray:
    from posecli.camera_motion import frame_boxes
    return frame_boxes([d.xy for d in found], width, height)


def _person_info(tracks, chosen, info, person) -> dict:
    from posecli.detect2d.tracks import AUTO_RULE
    rule = {"auto": AUTO_RULE, "all": "every person followed for 0.5 s or more"}.get(
        person, f"track {person} (chosen by the user)")
    return {"track_id": None if chosen is None else chosen.id, "rule": rule,
            "tracks": [t.summary(info.width, info.height) for t in tracks]}


def _pick(tracks, info, person):
    from posecli.detect2d.tracks import choose_person
    try:
        return choose_person(tracks, info.width, info.height, person)
    except ValueError as e:
        raise NoPersonError(str(e)) from None


def detect_video(path: str | Path, options: LiftOptions | None = None,
                 progress: Progress | None = None, models: Models | None = None, **fields):
    """Run the 2D detector and tracker over every frame of a video and return one person's
    track (``options.person``: "auto" or a track id; see
    :func:`posecli.detect2d.tracks.choose_person`).

    Returns (info, landmarks (N, K, 2) px with NaN where no person, conf (N, K) (joints outside
    the picture below 0.1, so they are filled as gaps), found (N,), detector description dict
    with a "person" entry: the chosen track id, the rule and every track's summary).
    """
    info, track, det_info = detect_person(path, options, progress, models, **fields)
    return info, track.xy, track.conf, track.found, det_info


def detect_person(path: str | Path, options: LiftOptions | None = None,
                  progress: Progress | None = None, models: Models | None = None,
                  background=None, **fields):
    """As :func:`detect_video`, returning the chosen person's whole
    :class:`posecli.detect2d.tracks.PersonTrack` (with BlazePose's world landmarks and
    visibility): (info, track, detector description dict). Nobody found: an empty track."""
    from posecli.detect2d.tracks import PersonTrack

    options, models = _setup(options, fields, models, None)
    person = "auto" if options.per_person else options.person
    # a track id must name the track `posecli tracks` listed: only "auto" may skip newcomers
    info, n, tracks, det_info = track_video(path, options, progress, models,
                                            newcomers=options.person != "auto",
                                            background=background)
    chosen = _pick(tracks, info, person)
    det_info["person"] = _person_info(tracks, chosen, info, person)
    if chosen is None:
        k = skeleton.LAYOUTS[det_info["layout"]].joints
        chosen = PersonTrack(0, np.full((n, k, 2), np.nan), np.zeros((n, k)), np.zeros(n, bool),
                             np.zeros((n, k), bool))
    return info, chosen, det_info


def to_h36m(xy: np.ndarray, conf: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, 2), (N, K) in a detector layout -> (N, 17, 2), (N, 17) in the H36M layout."""
    if layout == "h36m17":
        return np.asarray(xy, float), np.asarray(conf, float)
    if layout in skeleton.TO_H36M:
        return skeleton.TO_H36M[layout](xy, conf)
    raise UsageError(f"unsupported keypoint layout {layout!r} "
                     f"({', '.join(['h36m17', *skeleton.TO_H36M])})")


def lift_keypoints(xy: np.ndarray, conf: np.ndarray, width: int, height: int, fps: float,
                   valid: np.ndarray | None = None, lifter: Lifter | None = None,
                   source: str = "", progress: Progress | None = None,
                   rigid: bool = True, times: np.ndarray | None = None, plausible: bool = True,
                   root_motion: bool = True, focal: float | None = None,
                   world: np.ndarray | None = None, visibility: np.ndarray | None = None,
                   fusion: "Fusion | str | None" = "on",  # noqa: F821
                   foot_lock: bool = True, camera_shift: np.ndarray | None = None,
                   camera: dict | None = None) -> LiftResult:
    """Lift a 2D track in the H36M layout to 3D.

    Args:
        xy: (N, 17, 2) pixels; conf: (N, 17); valid: (N,) frames where a person was seen
            (default: frames with any finite keypoint). Non-finite or absurd joints count as
            unseen (confidence 0, filled like any gap); a frame with none left is a gap.
        fps: the nominal rate, used for times when ``times`` is None.
        times: (N,) seconds, each frame's presentation time. A clip whose timing the lifter was
            not trained on (variable rate, outside 24-36 fps) is lifted on a uniform 30 fps
            resampling of the track and sampled back at these times (``posecli.timing``).
        rigid: give the skeleton one set of bone lengths for the whole clip (per-bone median
            over detected frames, left and right averaged), keeping bone directions.
        plausible: with ``rigid``, clamp the shin/thigh and forearm/upper-arm ratios to
            anthropometric ranges and put pelvis and thorax midway between hips and shoulders
            (:mod:`posecli.trajectory`).
        root_motion, focal: the world placement (:func:`posecli.trajectory.estimate`).
        world: (N, 33, 3) BlazePose's world landmarks (metres, hip-centred, x right, y down,
            z away from the camera; NaN where missing) of the same frames, or None;
            visibility: their (N, 33) visibility. Kept in the result (``landmarks_world``).
        fusion: how the lifter's 3D is combined with the world landmarks
            (:mod:`posecli.lifter.fusion`): "on" (the shipped learned fusion), "off" or None
            (the pure lifter), a fusion file, or a loaded ``Fusion``. Without world landmarks
            the pure lifter is used and the result's ``lifter["fusion"]`` says so.
        foot_lock: pin feet in contact to the floor (:mod:`posecli.footlock`); the 3D joints
            follow the locked legs.
        camera_shift, camera: the background's shift (N, 2) px since the first frame and its
            report (:mod:`posecli.camera_motion`); the path is corrected for a pan and the
            quality block says the camera moved. None: a static camera.
    """
    from posecli import timing
    from posecli.lifter import fusion as fusion_mod

    xy = np.asarray(xy, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[1:] != (skeleton.NUM_JOINTS, 2) or len(xy) == 0:
        raise UsageError(f"expected keypoints of shape (N>0, 17, 2), got {xy.shape}")
    if conf.shape != xy.shape[:2]:
        raise UsageError(f"expected confidences of shape {xy.shape[:2]}, got {conf.shape}")
    if valid is None:
        valid = np.isfinite(xy).all(axis=(1, 2))
    xy, conf, valid = sanitize_keypoints(xy, conf, np.asarray(valid, bool), width, height)
    if not valid.any():
        raise NoPersonError("no person was found in any frame (no finite keypoint)")
    times = np.arange(len(xy)) / fps if times is None else np.asarray(times, dtype=np.float64)
    if times.shape != (len(xy),) or not np.isfinite(times).all():
        raise UsageError(f"expected {len(xy)} finite frame times, got shape {times.shape}")
    plan = timing.lift_plan(times)
    rate = plan["fps"] or float(fps)
    xy = np.where(valid[:, None, None], xy, 0.0)
    max_gap = max(1, round(MAX_GAP_SECONDS * rate))
    xy, conf, flags = skeleton.fill_gaps(xy, conf, valid, max_gap=max_gap)
    fusion = fusion_mod.resolve(fusion)
    world, visibility = fusion_mod.check_world(world, visibility, len(xy))
    world17 = None if world is None else fusion_mod.world_h36m(world, valid, max_gap)
    lifter = lifter or load_lifter()
    if progress:
        progress("lift", 0, len(xy))
    lifter.flip_disagreement()  # reset: measure this clip only
    x2d = skeleton.normalize_to_frame(xy, width, height)
    if plan["resampled"]:  # lift at the rate the lifter knows, then back to the video's frames
        grid = timing.uniform_grid(times, plan["lifted_fps"])
        pose3d, disagree = lifter.lift(timing.resample(times, x2d, grid))
        pose3d, disagree = (timing.resample(grid, a, times) for a in (pose3d, disagree))
    else:
        pose3d, disagree = lifter.lift(x2d)
    flip_dis = lifter.flip_disagreement()
    pose3d = pose3d - pose3d[:, :1]  # exactly root-relative
    if not np.isfinite(pose3d).all():  # never write a NaN pose as if it were measured
        raise FloatingPointError("the lifter produced non-finite 3D joints")
    pose3d, fusion_info = fusion_mod.apply(fusion, pose3d, world17, conf, disagree)
    raw = pose3d
    if rigid:
        lengths = skeleton.symmetric_bone_lengths(pose3d, flags == skeleton.DETECTED)
        bones = {"raw_m": np.round(lengths, 4).tolist()}
        if plausible:
            lengths, bones["ratios"] = trajectory.plausible_bone_lengths(lengths)
            pose3d = trajectory.square_hips(trajectory.symmetric_hips(pose3d))
        pose3d = skeleton.fix_bone_lengths(pose3d, lengths)
        bones["fixed_m"] = np.round(lengths, 4).tolist()
    # the world placement assumes uniform frames: it gets the clip's (median) rate
    traj = trajectory.estimate(pose3d, xy, conf, flags, width, height, rate, focal=focal,
                               root_motion=root_motion, camera_shift=camera_shift)
    if foot_lock:
        traj, pose3d = footlock.apply(traj, rate)
    if progress:
        progress("lift", len(xy), len(xy))
    result = LiftResult(source=str(source), kind="keypoints", fps=float(rate), width=int(width),
                      height=int(height), keypoints=xy, conf=conf, flags=flags,
                      pose3d=pose3d, lifter={**lifter.info, "rigid_bones": rigid,
                                             "plausible_bones": bool(rigid and plausible),
                                             "fusion": fusion_info},
                      trajectory=traj, bones=bones if rigid else None,
                      times=times, timing=plan, landmarks_world=world,
                      landmarks_visibility=visibility)
    result.quality = quality.report(result, raw, flip_dis, camera)
    result.world_joints()  # once, here: the writers only write
    return result


def sanitize_keypoints(xy: np.ndarray, conf: np.ndarray, valid: np.ndarray, width: int,
                       height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Make bad joints gaps: (N, 17, 2) px, (N, 17), (N,) -> the same, cleaned.

    A joint that is non-finite or absurdly far outside the frame (over 10 frame sizes) gets
    confidence 0 (so gap filling replaces it); a frame with no good joint is not valid; a joint
    never good anywhere is put at its frame's centroid. Confidences are clipped to [0, 1].
    """
    limit = 10.0 * max(width, height)
    good = np.isfinite(xy).all(-1) & (np.abs(np.nan_to_num(xy, nan=np.inf)) <= limit).all(-1)
    good &= valid[:, None]
    valid = good.any(axis=1)
    conf = np.where(good, np.clip(np.nan_to_num(conf, nan=0.0, posinf=1.0, neginf=0.0), 0, 1), 0.0)
    count = good.sum(axis=1)[:, None]             # (N, 1) good joints per frame
    centroid = np.where(good[..., None], xy, 0.0).sum(axis=1) / np.maximum(count, 1)  # 0 where none
    xy = np.where(good[..., None], xy, centroid[:, None, :])
    never = ~(good & (conf >= 0.1)).any(axis=0)   # (17,) never seen confidently
    if never.any() and valid.any():
        # fill_gaps would fall back to these samples: make them the (finite) centroid
        xy[:, never] = centroid[:, None, :]
        conf[:, never] = 0.0
    return xy, conf, valid


def lift_video(path: str | Path, options: LiftOptions | None = None, *,
               progress: Progress | None = None, models: Models | None = None,
               lifter: Lifter | None = None, **fields) -> LiftResult:
    """Detect and track people in every frame of a video and lift one person's track to 3D
    (``options.person``: "auto" or a track id; every person: :func:`lift_video_all`).

    Times are the frames' presentation timestamps; ``result.video`` says how the video was read
    (``truncated`` when its frames end well before the container's duration; with
    ``allow_truncated=False`` that is an error instead).
    """
    options, models = _setup(options, fields, models, lifter)
    models.lifter  # load first: a bad weights file fails before decoding
    background = _background(options)
    info, track, det_info = detect_person(path, options, progress, models, background)
    _check_truncation(path, info, options.allow_truncated)
    if not track.found.any():
        raise NoPersonError(f"{path}: no person was found in any of {len(track.found)} frames")
    camera = _camera_motion(background, info, options)
    return _lift_track(path, info, track, det_info, options, models, progress, camera)


def lift_video_all(path: str | Path, options: LiftOptions | None = None, *,
                   progress: Progress | None = None, models: Models | None = None,
                   lifter: Lifter | None = None, **fields) -> list[LiftResult]:
    """Lift every person tracked long enough (0.5 s) to 3D: one result per track, by id.
    Each result's ``detector["person"]["track_id"]`` names its track."""
    from posecli.detect2d.tracks import liftable

    options, models = _setup(options, fields, models, lifter)
    models.lifter
    background = _background(options)
    info, _, tracks, det_info = track_video(path, options, progress, models,
                                            background=background)
    _check_truncation(path, info, options.allow_truncated)
    people = liftable(tracks, info.fps)
    if not people:
        raise NoPersonError(f"{path}: no person was followed for 0.5 s or more")
    camera = _camera_motion(background, info, options)  # one camera for everybody
    return [_lift_track(path, info, t, {**det_info, "person": _person_info(tracks, t, info, "all")},
                        options, models, progress, camera) for t in people]


def _background(options: LiftOptions):
    """A :class:`posecli.camera_motion.BackgroundMotion` for the tracking pass to feed, or
    None when the camera is declared static (``options.camera_motion`` False)."""
    if not options.camera_motion:
        return None
    from posecli.camera_motion import BackgroundMotion
    return BackgroundMotion()


def _camera_motion(background, info, options: LiftOptions) -> tuple:
    """(background shift (N, 2) px to correct the path for, or None; the quality block's
    ``camera`` facts, or None) from what ``background`` (:func:`_background`) measured while
    the people were tracked, around all of them. Off: (None, None)."""
    if background is None:
        return None, None
    from posecli import camera_motion
    shift, measured = background.result()
    if len(shift) != info.report.num_frames:  # cannot happen: one decode feeds both
        raise RuntimeError(f"camera motion has {len(shift)} frames, tracking {info.report.num_frames}")
    focal = options.focal or trajectory.default_focal(info.width, info.height)
    camera = camera_motion.report(shift, measured, info.width, focal)
    if camera["camera_motion"] <= camera_motion.MOVING_SHARE:
        shift = None  # a static camera: its flow noise is not a pan
    return shift, camera


def _lift_track(path, info, track, det_info, options: LiftOptions, models: Models,
                progress, camera: tuple = (None, None)) -> LiftResult:
    """Lift one person's :class:`PersonTrack` (2D, and BlazePose's world landmarks if any);
    ``camera``: its (shift, facts) from :func:`_camera_motion`."""
    xy, conf = to_h36m(np.nan_to_num(track.xy), track.conf, det_info["layout"])
    shift, camera = camera
    result = lift_keypoints(xy, conf, info.width, info.height, info.fps, valid=track.found,
                            lifter=models.lifter, source=str(path), progress=progress,
                            times=info.report.times, world=track.world,
                            visibility=track.visibility, fusion=models.fusion,
                            camera_shift=shift, camera=camera,
                            **_lift_fields(options))
    result.kind = "video"
    result.video = info.as_dict()
    result.detector = det_info
    result.landmarks, result.landmark_conf = track.xy, track.conf
    return result


def _check_truncation(path, info, allow_truncated: bool) -> None:
    if info.report.truncated and not allow_truncated:
        raise VideoError(truncation_message(str(path), info.as_dict()))


def truncation_message(path: str, video: dict) -> str:
    """One line for a video whose frames end before its container says."""
    return (f"{path}: the file ends early: {video['frames_decoded']} frames decoded of about "
            f"{video['frames_expected']} in its {video['duration']:g} s (truncated or damaged)")
