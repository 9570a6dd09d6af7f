"""The incremental lift: 2D frames in as they arrive, final 3D frames out, over a bounded history.

:class:`LiveSession` does per call of :meth:`LiveSession.emit` what ``posecli lift`` does for a
clip, restricted to what has arrived:

1. gaps: :func:`posecli.skeleton.fill_gaps` over the history (a gap is interpolated only when
   a detection after it has arrived within the look-ahead; otherwise its frames are missing);
2. 3D: the causal window ending at the newest frame (:mod:`posecli.lifter.stream`) for every
   frame not yet emitted; frames ``lookahead`` seconds old are final;
3. fusion with BlazePose's world landmarks (:mod:`posecli.lifter.fusion`): the learned fusion
   runs on the history and the pending frames (the lifter's 3D of emitted frames as they were
   emitted), so its smoothing of the difference sees the look-ahead, as offline sees the clip;
4. rigid bones: the median bone lengths of the last :data:`BONE_FRAMES` detected frames (left =
   right, the anthropometric clamp, square hips), not the whole clip's;
5. trajectory: the pelvis from the 2D track as offline (:func:`posecli.trajectory.root_translation`),
   turned into the first frame's camera axes by the background's shift (the camera's pan,
   measured frame to frame by the caller: :class:`PanMeter`), Gaussian-smoothed over the
   history and the look-ahead (the newest edge reflected, as at the end of a clip); the floor
   is fitted from the first :data:`FLOOR_SECONDS` with a person (updated until then) and then
   kept, so the world frame stays still;
6. foot contacts: :func:`posecli.trajectory.foot_contacts` over the history and the look-ahead
   (with the steadied 2D, as offline);
7. foot locking (:mod:`posecli.footlock`) over the history and the look-ahead. The one step
   that cannot be the offline one: offline a contact is locked at the ankle's mean position
   over the whole contact; live, over the part of it that has arrived, so a planted foot
   still creeps while its contact lasts (by how much, see ``foot_slide`` in
   ``benchmarks/bench_live.py``). Keeping each contact's first point instead keeps the foot
   still but is further from the offline lift (on the example 32 mm at no look-ahead, 24 mm
   at 0.25 s, against 24 and 16 mm).

Arrays in, JSON-ready records out; no threads, no I/O, no clock (``now`` is passed in).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from posecli import footlock, skeleton, trajectory
from posecli.export.json import frame_record
from posecli.lifter.stream import final_count, lift_newest, lift_rate
from posecli.pipeline import MAX_GAP_SECONDS, sanitize_keypoints
from posecli.timing import LIFTER_FPS_RANGE

#: detected frames whose raw bone lengths set the skeleton (10 s at 30 fps)
BONE_FRAMES = 300
#: seconds of frames with a person after which the floor (the world frame) is kept fixed
FLOOR_SECONDS = 2.0
#: history kept beyond the lifter's window: gap filling and smoothing need this much more
MARGIN_SECONDS = 1.0
#: trajectory smoothing, Gaussian sigma (s) for the pelvis's camera x, y, z (as offline)
SMOOTH_S = (0.05, 0.05, 0.15)
PELVIS_HEIGHTS = 300  # --no-root-motion: frames whose pelvis height sets the fixed height


@dataclass
class Arrived:
    """One frame after detection. xy (17, 2) px and conf (17,) of the followed person in the
    H36M layout (xy NaN, conf 0 when nobody was followed); time: seconds since the stream's
    first frame; arrival: the clock (s) when it left the decoder."""
    index: int
    time: float
    arrival: float
    xy: np.ndarray
    conf: np.ndarray
    #: (33, 3) BlazePose's world landmarks of the followed person (metres, hip-centred, camera
    #: axes), None when the detector has none or nobody was followed
    world: np.ndarray | None = None
    #: (2,) px: the background's shift since the stream's first frame (:class:`PanMeter`);
    #: None: not measured (a static camera)
    shift: np.ndarray | None = None

    @property
    def found(self) -> bool:
        return bool(np.isfinite(self.xy).all(axis=-1).any())


@dataclass
class Emitted:
    """Every emitted frame's arrays (kept only for the outputs at the end)."""
    index: list = field(default_factory=list)
    time: list = field(default_factory=list)
    flag: list = field(default_factory=list)
    xy: list = field(default_factory=list)
    conf: list = field(default_factory=list)
    raw: list = field(default_factory=list)
    pose: list = field(default_factory=list)
    world: list = field(default_factory=list)
    contact: list = field(default_factory=list)
    pelvis_camera: list = field(default_factory=list)


class LiveSession:
    """The incremental lift of one stream (see the module docstring).

    Args:
        lifter: a :class:`posecli.lifter.Lifter` (its ``windows`` and ``frames`` are used).
        width, height: frame size (px).
        lookahead: seconds of frames after a frame that must have arrived before it is final.
        rigid, plausible, root_motion, focal, foot_lock: as ``posecli lift``
            (:class:`posecli.options.LiftOptions`).
        fusion: a loaded :class:`posecli.lifter.fusion.Fusion` or None (the pure lifter).
        keep: keep every emitted frame for :meth:`result` (memory grows with the stream).
    """

    def __init__(self, lifter, width: int, height: int, lookahead: float, *, rigid: bool = True,
                 plausible: bool = True, root_motion: bool = True, focal: float | None = None,
                 fusion=None, foot_lock: bool = True, keep: bool = False):
        if not (math.isfinite(lookahead) and lookahead >= 0):
            raise ValueError(f"the look-ahead must be a non-negative number of seconds, got {lookahead}")
        self.lifter, self.width, self.height = lifter, int(width), int(height)
        self.lookahead, self.rigid, self.plausible = float(lookahead), rigid, plausible
        self.root_motion, self.fusion, self.foot_lock = root_motion, fusion, foot_lock
        self.fusion_info: dict = {"name": "off"}
        self.focal = float(focal) if focal else trajectory.default_focal(width, height)
        # history: every arrived frame not yet trimmed; the first `done - base` are emitted
        self.frames: list[Arrived] = []
        self.base = 0   # stream position (count of frames added) of frames[0]
        self.done = 0   # frames emitted so far
        # per emitted frame in the history: raw root translation (NaN unknown), world joints
        # (before foot locking), foot contacts, the lifter's 3D and flip disagreement
        self.t_raw: list[np.ndarray] = []
        self.world: list[np.ndarray] = []
        self.contacts: list[np.ndarray] = []
        self.lifted: list[np.ndarray] = []
        self.disagree: list[np.ndarray] = []
        self.bones: deque = deque(maxlen=BONE_FRAMES)            # raw poses of detected frames
        self.heights: deque = deque(maxlen=PELVIS_HEIGHTS)
        self.floor_points: list[np.ndarray] = []                 # camera joints, until fixed
        self.floor: tuple[np.ndarray, float] | None = None       # (up, d) once fixed
        self.first_pelvis: np.ndarray | None = None              # camera, first frame with a person
        self.rotation, self.origin = np.eye(3), np.zeros(3)
        self.lengths: np.ndarray | None = None
        self.kept = Emitted() if keep else None
        self.rate = lift_rate(np.zeros(0))
        self.keep_s = (lifter.frames - 1) / LIFTER_FPS_RANGE[0] + MARGIN_SECONDS

    # ---- input ----

    def add(self, frame: Arrived) -> None:
        """A frame after detection, in stream order (times increasing)."""
        if self.frames and frame.time <= self.frames[-1].time:
            frame.time = self.frames[-1].time + 1e-6  # a repeated timestamp (broken stream)
        self.frames.append(frame)

    def pending(self) -> int:
        """Frames added but not emitted."""
        return self.base + len(self.frames) - self.done

    def ready(self) -> int:
        """Frames that are final now (their look-ahead has arrived)."""
        if not self.frames:
            return 0
        return final_count(np.array([f.time for f in self.frames]), self.done - self.base,
                           self.lookahead)

    # ---- output ----

    def emit(self, now: float, flush: bool = False, dropped: int = 0) -> list[dict]:
        """Lift and return the records (JSON-ready dicts, with ``delay_ms`` from ``now`` and
        the ``dropped`` count) of every frame that is final; ``flush``: every pending frame
        (the end of the stream: the last ones get the look-ahead there is)."""
        p0 = self.done - self.base
        k = self.pending() if flush else self.ready()
        if k == 0:
            return []
        fr = self.frames
        times = np.array([f.time for f in fr])
        xy = np.stack([f.xy for f in fr])
        conf = np.stack([f.conf for f in fr])
        valid = np.array([f.found for f in fr])
        self.rate = rate = lift_rate(times)
        xy, conf, flags = self._fill(np.nan_to_num(xy), conf, valid, rate)
        lifted, disagree = self._lift(times, xy, p0)               # (M, 17, 3), M = pending
        raw = self._fuse(lifted, disagree, conf, flags, rate)
        pose = self._rigid(raw, flags[p0:], k)
        shift = np.stack([np.zeros(2) if f.shift is None else f.shift for f in fr])
        t_new, t_smooth = self._translation(pose, xy[p0:], conf[p0:], flags, rate, shift[p0:])
        world, contact = self._place(pose, t_smooth[p0:], flags, rate, k, xy - shift[:, None])
        locked = self._lock(world, contact)
        if locked is not world:  # the legs follow the locked feet (as footlock.apply)
            pose = (locked - locked[:, :1]) @ self.rotation
        records = []
        for j in range(k):
            f, i = fr[p0 + j], p0 + j
            rec = frame_record(f.index, f.time, flags[i], xy[i], conf[i], pose[j], self.width,
                               self.height, locked[j, 0], contact[j])
            rec["delay_ms"] = round(max(0.0, now - f.arrival) * 1000, 1)
            rec["dropped"] = int(dropped)
            records.append(rec)
            if self.kept is not None:
                self._keep(f, flags[i], xy[i], conf[i], raw[j], pose[j], locked[j], contact[j],
                           t_smooth[i])
        self.t_raw.extend(t_new[:k])
        self.world.extend(world[:k])
        self.contacts.extend(contact[:k])
        self.lifted.extend(lifted[:k])
        self.disagree.extend(disagree[:k])
        self.done += k
        self._trim()
        return records

    def _fill(self, xy, conf, valid, rate):
        """Sanitised, gap-filled history: (N, 17, 2), (N, 17), flags (N,)."""
        n = len(xy)
        if valid.any():
            xy, conf, valid = sanitize_keypoints(xy, conf, valid, self.width, self.height)
        if not valid.any():  # nobody in the whole history: hold the picture's centre
            centre = np.broadcast_to([self.width / 2, self.height / 2], (n, skeleton.NUM_JOINTS, 2))
            return centre.copy(), np.zeros((n, skeleton.NUM_JOINTS)), np.full(n, skeleton.MISSING)
        return skeleton.fill_gaps(xy, conf, valid, max_gap=max(1, round(MAX_GAP_SECONDS * rate)))

    def _lift(self, times, xy, p0) -> tuple[np.ndarray, np.ndarray]:
        """Root-relative raw 3D (M, 17, 3) of the pending frames from the newest window, and
        each joint's flip disagreement (M, 17) m (zeros without the fusion, which alone uses it)."""
        x2d = skeleton.normalize_to_frame(xy, self.width, self.height)
        if self.fusion is None:
            fn = self.lifter.windows
        else:
            def fn(w):
                return self.lifter.windows(w, disagreement=True)
        out = lift_newest(fn, times, x2d, self.lifter.frames, times[p0:], self.rate)
        raw = out[..., :3] - out[:, :1, :3]
        if not np.isfinite(raw).all():
            raise FloatingPointError("the lifter produced non-finite 3D joints")
        disagree = out[..., 3] if out.shape[-1] > 3 else np.zeros(raw.shape[:2])
        return raw, disagree

    def _fuse(self, lifted, disagree, conf, flags, rate) -> np.ndarray:
        """The pending frames' 3D (M, 17, 3) fused with BlazePose's world landmarks over the
        history (:func:`posecli.lifter.fusion.apply`); the lifter's where there are none."""
        if self.fusion is None:
            return lifted
        from posecli.lifter import fusion as fusion_mod

        missing = np.full((skeleton.BLAZEPOSE33.joints, 3), np.nan)
        marks = np.stack([missing if f.world is None else f.world for f in self.frames])
        world17 = fusion_mod.world_h36m(marks, flags == skeleton.DETECTED,
                                        max(1, round(MAX_GAP_SECONDS * rate)))
        p0 = len(self.lifted)
        every = _after(self.lifted, lifted)
        dis = _after(self.disagree, disagree)
        fused, info = fusion_mod.apply(self.fusion, every, world17, conf, dis)
        if info.get("name") != "off" or self.fusion_info.get("name") == "off":
            self.fusion_info = {k: v for k, v in info.items() if k != "frames_fused"}
        return fused[p0:]

    def _rigid(self, raw, flags, k) -> np.ndarray:
        """One set of bone lengths (the recent detected frames' median) for the pending frames."""
        detected = flags[:k] == skeleton.DETECTED
        if not self.rigid:
            return raw
        recent = list(self.bones) + list(raw[:k][detected])
        sample = np.stack(recent) if recent else raw
        lengths = skeleton.symmetric_bone_lengths(sample)
        pose = raw
        if self.plausible:
            lengths, _ = trajectory.plausible_bone_lengths(lengths)
            pose = trajectory.square_hips(trajectory.symmetric_hips(raw))
        self.bones.extend(raw[:k][detected])
        self.lengths = lengths
        return skeleton.fix_bone_lengths(pose, lengths)

    def _translation(self, pose, xy, conf, flags, rate, shift) -> tuple[np.ndarray, np.ndarray]:
        """Raw root translation of the pending frames (M, 3) in the first frame's camera axes
        (``shift`` (M, 2) px: the background's), NaN where unknown, and the smoothed
        translation of the whole history (N, 3)."""
        t_new = trajectory.root_translation(pose, xy, conf, self.width, self.height, self.focal)
        if np.any(shift):
            t_new = np.einsum("nij,nj->ni", trajectory.pan_rotations(shift, self.focal), t_new)
        t_new[flags[len(flags) - len(pose):] == skeleton.MISSING] = np.nan
        t_all = _after(self.t_raw, t_new)
        if not np.isfinite(t_all).all(axis=1).any():
            t_all[:] = [0.0, 0.0, 3.0]  # nobody yet: 3 m in front of the camera
        t_all = trajectory.fill_nan(t_all)
        smooth = np.stack([trajectory.smooth(t_all[:, c], s * rate) for c, s in enumerate(SMOOTH_S)],
                          axis=1)
        return t_new, smooth

    def _place(self, pose, t, flags, rate, k, steady) -> tuple[np.ndarray, np.ndarray]:
        """World joints (M, 17, 3) and foot contacts (M, 2) of the pending frames (``steady``:
        the history's 2D (N, 17, 2) px, steadied by the background's shift); fits (then
        keeps) the floor."""
        p0 = len(flags) - len(pose)
        seen = flags[p0:] != skeleton.MISSING
        cam = pose + t[:, None]
        if self.first_pelvis is None and seen[:k].any():
            self.first_pelvis = t[int(np.argmax(seen[:k]))]
        if self.floor is None:
            points = self.floor_points + list(cam[seen]) or list(cam)
            up, d = trajectory.fit_floor(np.stack(points))
            self.floor_points.extend(cam[:k][seen[:k]])
            if len(self.floor_points) >= FLOOR_SECONDS * rate:
                self.floor = (up, d)
                self.floor_points = []
            origin_at = self.first_pelvis if self.first_pelvis is not None else t[0]
            self.rotation = trajectory.world_rotation(up)
            self.origin = origin_at - (origin_at @ up - d) * up  # floor point under it
        if self.root_motion:
            world = (cam - self.origin) @ self.rotation.T
        else:
            pelvis = (t - self.origin) @ self.rotation.T
            self.heights.extend(pelvis[:k][seen[:k], 1])
            height = float(np.median(self.heights)) if self.heights else float(pelvis[0, 1])
            world = pose @ self.rotation.T + np.array([0.0, height, 0.0])
        track = _after(self.world, world)
        contact = trajectory.foot_contacts(track, rate, keypoints=steady)[p0:]
        return world, contact

    def _lock(self, world, contacts) -> np.ndarray:
        """The pending frames' world joints (M, 17, 3) with the feet in contact locked over the
        history and the look-ahead (:func:`posecli.footlock.lock_feet`; ``contacts`` (M, 2)
        the pending frames'); ``world`` itself when off."""
        if not (self.foot_lock and self.root_motion):
            return world
        p0 = len(self.world)
        track = _after(self.world, world)
        every = _after(self.contacts, contacts)
        return footlock.lock_feet(track, every, self.rate)[p0:]

    def _keep(self, f, flag, xy, conf, raw, pose, world, contact, pelvis_camera) -> None:
        kept = self.kept
        for name, value in (("index", f.index), ("time", f.time), ("flag", flag), ("xy", xy),
                            ("conf", conf), ("raw", raw), ("pose", pose), ("world", world),
                            ("contact", contact), ("pelvis_camera", pelvis_camera)):
            getattr(kept, name).append(value)

    def result(self, source: str, detector: dict | None = None, video: dict | None = None):
        """Every emitted frame as a :class:`posecli.result.LiftResult` (for the usual writers;
        needs ``keep=True``); None when nothing was emitted. Frames are renumbered from 0 (the
        stream's indices skip dropped frames; ``times`` are the frames' own)."""
        from posecli import quality, timing
        from posecli.result import LiftResult

        k = self.kept
        if k is None or not k.index:
            return None
        times, flags = np.array(k.time), np.array(k.flag)
        fps, uniform = timing.frame_rate(times)
        traj = trajectory.Trajectory(world=np.stack(k.world), contacts=np.stack(k.contact),
                                     rotation=self.rotation, origin=self.origin,
                                     pelvis_camera=np.stack(k.pelvis_camera), focal=self.focal,
                                     root_motion=self.root_motion)
        plan = {"fps": round(fps or self.rate, 6), "uniform": uniform, "resampled": True,
                "lifted_fps": round(self.rate, 6),
                "reason": "live: causal windows on a uniform grid ending at the newest frame"}
        lengths = None if self.lengths is None else np.round(self.lengths, 4).tolist()
        res = LiftResult(source=source, kind="video", fps=float(fps or self.rate),
                         width=self.width, height=self.height, keypoints=np.stack(k.xy),
                         conf=np.stack(k.conf), flags=flags, pose3d=np.stack(k.pose),
                         lifter={**self.lifter.info, "rigid_bones": self.rigid,
                                 "plausible_bones": bool(self.rigid and self.plausible),
                                 "fusion": self.fusion_info, "lookahead_s": self.lookahead},
                         detector=detector, times=times, timing=plan, video=video,
                         trajectory=traj, bones={"fixed_m": lengths} if self.rigid else None)
        res.quality = quality.report(res, np.stack(k.raw), self.lifter.flip_disagreement())
        return res

    def _trim(self) -> None:
        """Forget emitted frames older than the lifter's window and the margins need."""
        newest = self.frames[-1].time
        cut = 0
        while cut < self.done - self.base and newest - self.frames[cut].time > self.keep_s:
            cut += 1
        if cut:
            for history in (self.frames, self.t_raw, self.world, self.contacts, self.lifted,
                            self.disagree):
                del history[:cut]
            self.base += cut


def _after(history: list, new: np.ndarray) -> np.ndarray:
    """The emitted frames' rows kept in ``history`` (a list of arrays shaped like a row of
    ``new``, maybe empty) followed by the pending frames' ``new`` (M, ...): (N + M, ...)."""
    return np.concatenate([np.reshape(history, (-1,) + new.shape[1:]), new])


class PanMeter:
    """The background's shift since the stream's first frame, one frame at a time: what
    ``posecli lift`` measures while it tracks (:class:`posecli.camera_motion.BackgroundMotion`,
    the same frame pairs and corners, the person's box left out of both), keeping only the
    running total.

    Call it with each frame (H, W, 3) uint8 RGB and the followed person's keypoints (K, 2) px
    (NaN where unseen; None: nobody) -> (2,) px. Unlike ``posecli lift``, which leaves a camera whose
    background moved less than :data:`posecli.camera_motion.MOVING_SHARE` uncorrected (it sees
    the whole clip first), the shift is always used: a live run cannot know the camera will
    stay still, and a still camera's shift is its flow noise (about 0.1 % of the width).
    A stream whose frame size changes starts a new measurement from the total so far.
    """

    def __init__(self) -> None:
        self._motion = None
        self._shape: tuple | None = None
        self._base = np.zeros(2)

    def __call__(self, image: np.ndarray, xy: np.ndarray | None) -> np.ndarray:
        from posecli import camera_motion

        if image.shape != self._shape:
            if self._motion is not None:
                self._base = self._base + self._motion.total
            self._motion, self._shape = camera_motion.BackgroundMotion(history=False), image.shape
        h, w = image.shape[:2]
        self._motion.add(image, camera_motion.frame_boxes([] if xy is None else [xy], w, h))
        return self._base + self._motion.total


def follow(people: list, current: int | None, seen: dict[int, int],
           person: "str | int" = "auto") -> int | None:
    """The track to follow in this frame, live.

    people: this frame's detections (``track_id`` set); seen: frames each track id was seen so
    far (updated here); current: the id followed in the previous frame. ``person`` "auto":
    keep the current person while they are in view, else the one seen longest so far (then
    the tallest); a track id: that person only. Returns the id, or None when nobody fits.
    """
    for d in people:
        seen[d.track_id] = seen.get(d.track_id, 0) + 1
    ids = {d.track_id: d for d in people}
    if person != "auto":
        return int(person) if int(person) in ids else None
    if current in ids:
        return current
    if not people:
        return None

    def height(d) -> float:
        ok = d.conf >= 0.3
        return float(np.ptp(d.xy[ok, 1])) if ok.sum() >= 2 else 0.0
    return max(people, key=lambda d: (seen[d.track_id], height(d))).track_id
