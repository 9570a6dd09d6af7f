"""``posecli live``: the threads, the outputs and how a live run ends.

Three threads share the work, so that decoding, detection and lifting overlap on the cores:

- the reader (:class:`posecli.live.source.StreamSource`) puts frames into a bounded queue that
  drops the oldest frame when the detector falls behind (``--backlog`` seconds at most);
- the detection thread (the caller's) runs the tracker on each frame, follows one person and
  measures the camera's pan (:class:`posecli.live.session.PanMeter`);
- the lift thread owns the :class:`posecli.live.session.LiveSession`: it takes every frame
  detected since its last pass, lifts once with the window ending at the newest, and writes
  each final frame as one JSON line (flushed) and, with ``--udp``, one datagram.

A lift costs about two detections (flip included) and the two threads share two cores with
ffmpeg, so the lift thread does not lift at every frame: it waits until :data:`LIFT_BATCH`
frames are final and no frame is waiting for the detector, or until the oldest final frame has
waited :data:`LIFT_WAIT` seconds (see :func:`lift_now`). Detection keeps up, and the delay
stays bounded by the look-ahead, the wait, one lift and the backlog.

Endings: the end of the stream flushes the last frames (with the look-ahead there is), prints
a one-line summary and returns 0; no frame for ``timeout`` seconds ends with one ``error:``
line and 1; Ctrl-C stops at once (lines written so far are kept) and returns 130. The usual
files (``formats`` into ``out_dir``) are written at every ending, from the frames emitted.
"""
from __future__ import annotations

import json
import math
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from posecli import skeleton
from posecli.errors import OutputError, PosecliError, UsageError
from posecli.live import DEFAULT_BACKLOG, DEFAULT_DELAY, DEFAULT_TIMEOUT
from posecli.live.session import Arrived, LiveSession, PanMeter, follow
from posecli.live.source import DropQueue, StreamSource
from posecli.options import LiftOptions

#: most frames the queue holds (a backlog at 60 fps)
MAX_RATE = 60
#: final frames the lift thread lets gather before it lifts (one lift emits them all)
LIFT_BATCH = 2
#: seconds the oldest final frame may wait for its lift while detection has work queued
LIFT_WAIT = 0.1
END, STALL, ABORT = "end", "stall", "abort"


@dataclass(frozen=True)
class LiveConfig:
    """What a live run does besides lifting (the lift's own options: :class:`LiftOptions`).

    source: see :mod:`posecli.live.source`; output: where the lines go ("-" standard output,
    a file, None nowhere); udp: (host, port) for one datagram per line; delay: look-ahead (s);
    timeout: seconds without a frame that end the run; backlog: seconds a frame may wait for
    the detector; out_dir / formats / name: the usual files at the end (formats empty: none),
    ``<out_dir>/<name>.<format>``.
    """
    source: str
    output: str | None = "-"
    udp: tuple[str, int] | None = None
    delay: float = DEFAULT_DELAY
    timeout: float = DEFAULT_TIMEOUT
    backlog: float = DEFAULT_BACKLOG
    out_dir: Path = Path(".")
    formats: tuple[str, ...] = ()
    name: str = "live"

    def __post_init__(self) -> None:
        for name, low in (("delay", 0.0), ("timeout", 1e-9), ("backlog", 1e-9)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= low):
                raise UsageError(f"--{name} must be a {'non-negative' if low == 0 else 'positive'} "
                                 f"number of seconds, got {v}")
        if "mp4" in self.formats:
            raise UsageError("-f mp4 needs the video, which a live run does not keep; use json or bvh")
        src = Path(self.source)
        if self.source != "-" and src.is_file():
            targets = [Path(self.output)] if self.output not in (None, "-") else []
            targets += [self.out_dir / f"{self.name}.{f}" for f in self.formats]
            if any(t.resolve() == src.resolve() for t in targets):
                raise UsageError(f"{self.source}: writing an output there would overwrite the input")


def parse_udp(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); UsageError otherwise."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--udp {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9000")
    return host, int(port)


class Lines:
    """Where each frame's line goes: a text stream (flushed per line) and a UDP socket."""

    def __init__(self, output: str | None, udp: tuple[str, int] | None, stdout: TextIO):
        self.file: TextIO | None = None
        self.owned = False
        if output == "-":
            self.file = stdout
        elif output is not None:
            try:
                self.file = open(output, "w", encoding="utf-8")
            except OSError as e:
                raise OutputError(f"cannot write {output}: {e.strerror or e}") from None
            self.owned = True
        self.udp = udp
        self.sock = None
        if udp is not None:
            family = socket.AF_INET6 if ":" in udp[0] else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.count = 0
        self.udp_errors = 0

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), allow_nan=False)
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()
        if self.sock is not None:
            try:
                self.sock.sendto(line.encode(), self.udp)
            except OSError:
                self.udp_errors += 1  # nobody listening (yet): datagrams are fire and forget
        self.count += 1

    def close(self) -> None:
        if self.owned and self.file is not None:
            self.file.close()
        if self.sock is not None:
            self.sock.close()


def lift_now(final: int, waited: float, detect_waiting: int, batch: int = LIFT_BATCH,
             wait: float = LIFT_WAIT) -> bool:
    """Whether the lift thread lifts now: ``final`` frames are final, the oldest of them for
    ``waited`` seconds, ``detect_waiting`` frames wait for the detector. Lift once ``batch``
    are final and the detector has nothing queued (lifting then takes no time it needs), or
    once the oldest has waited ``wait`` seconds whatever the detector's queue."""
    if final <= 0:
        return False
    return waited >= wait or (final >= batch and detect_waiting == 0)


class LiftWorker(threading.Thread):
    """The lift thread: detected frames in (``put``), lines out (see the module docstring).
    ``waiting()``: frames waiting for the detector now."""

    def __init__(self, lifter, options: LiftOptions, config: LiveConfig, lines: Lines,
                 dropped: Callable[[], int], clock: Callable[[], float], fusion=None,
                 waiting: Callable[[], int] = lambda: 0):
        super().__init__(name="posecli-live-lift", daemon=True)
        self.lifter, self.options, self.config, self.lines = lifter, options, config, lines
        self.dropped, self.clock, self.fusion, self.waiting = dropped, clock, fusion, waiting
        self.lifts = 0
        self.inbox: queue.Queue = queue.Queue()
        self.session: LiveSession | None = None
        self.delays: list[float] = []
        self.failure: BaseException | None = None

    def put(self, item) -> None:
        self.inbox.put(item)

    def _session(self, size: tuple[int, int]) -> LiveSession:
        if self.session is None:
            o = self.options
            self.session = LiveSession(self.lifter, size[0], size[1], self.config.delay,
                                       rigid=o.rigid, plausible=o.plausible,
                                       root_motion=o.root_motion, focal=o.focal,
                                       fusion=self.fusion, foot_lock=o.foot_lock,
                                       keep=bool(self.config.formats))
        return self.session

    def _write(self, records: list[dict]) -> None:
        for r in records:
            self.lines.write(r)
            self.delays.append(r["delay_ms"])

    def _take(self, timeout: float | None) -> list:
        """Everything put since the last call (waiting up to ``timeout`` s for the first; None:
        as long as it takes); [] when nothing came."""
        try:
            items = [self.inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                return items

    def run(self) -> None:
        try:
            final_since = None  # when the oldest final frame was first seen final
            timeout = None
            while True:
                end = None
                for it in self._take(timeout):
                    if isinstance(it, str):
                        end = it
                        break
                    size, frame = it
                    self._session(size).add(frame)
                if end == ABORT:
                    return
                timeout = None
                s = self.session
                if s is None:
                    if end is not None:
                        return
                    continue
                if end is not None:
                    self._write(s.emit(self.clock(), flush=True, dropped=self.dropped()))
                    return
                final, now = s.ready(), self.clock()
                if final == 0:
                    final_since = None
                    continue
                final_since = now if final_since is None else final_since
                if lift_now(final, now - final_since, self.waiting()):
                    self._write(s.emit(self.clock(), dropped=self.dropped()))
                    self.lifts += 1
                    final_since = None
                else:  # wake for the next frame, or when the oldest has waited long enough
                    timeout = max(1e-3, final_since + LIFT_WAIT - now)
        except BaseException as e:  # noqa: BLE001 - reported by the detection thread
            self.failure = e


def _to_h36m(det, layout: str) -> tuple[np.ndarray, np.ndarray]:
    from posecli.pipeline import to_h36m
    xy, conf = to_h36m(det.xy[None], det.conf[None], layout)
    return xy[0], conf[0]


def build_models(options: LiftOptions):
    """(tracker, lifter, fusion or None) with the threads shared out: the detector and the
    lifter run at the same time in two threads, so each gets half (at least one)."""
    from posecli.pipeline import Models
    det_threads = max(1, options.threads // 2)
    lift_threads = max(1, options.threads - det_threads)
    tracker = Models(options.replace(threads=det_threads)).tracker
    lifting = Models(options.replace(threads=lift_threads))
    return tracker, lifting.lifter, lifting.fusion  # the lifter sets torch's pool last


def warm_up(tracker, lifter) -> None:
    """Run the detector and the lifter once before the stream starts: their first calls are
    several times slower than the next ones (the runtimes set themselves up), and would
    otherwise delay the stream's first frames."""
    tracker(np.zeros((256, 256, 3), np.uint8))
    lifter.windows(np.zeros((1, lifter.frames, skeleton.NUM_JOINTS, 2), np.float32), True)
    lifter.flip_disagreement()  # measure the stream only


def run(config: LiveConfig, options: LiftOptions, *, stdout: TextIO | None = None,
        report: Callable[[str], None] | None = None, models=None,
        clock: Callable[[], float] = time.monotonic) -> int:
    """Lift ``config.source`` live. Returns the exit status (0 end of stream, 1 stall or
    failure, 130 Ctrl-C); ``report(line)`` gets a line when the stream is being read (the
    models are loaded) and the one closing line.

    Raises PosecliError for problems found before the stream starts (options, models, outputs).
    """
    stdout = stdout or sys.stdout
    report = report or (lambda line: print(line, file=sys.stderr, flush=True))
    if options.per_person:
        raise UsageError("--person all is not for live: it follows one person (auto or an id)")
    tracker, lifter, fusion = models or build_models(options)
    warm_up(tracker, lifter)
    tracker.reset()
    # as `posecli lift`: following one person needs no search for newcomers while they are in
    # view (a track id must be found wherever it appears)
    tracker.newcomers = options.person != "auto"
    lines = Lines(config.output, config.udp, stdout)
    frames = DropQueue(math.ceil(config.backlog * MAX_RATE) + 1, config.backlog, clock)
    source = StreamSource(config.source, frames, clock)
    worker = LiftWorker(lifter, options, config, lines, lambda: frames.dropped, clock, fusion,
                        waiting=lambda: len(frames))
    pan = PanMeter() if options.camera_motion else None
    worker.start()
    report(f"live: reading {config.source} (look-ahead {config.delay:g} s; Ctrl-C stops)")
    status, started, failure = END, clock(), None
    current, seen, size = None, {}, None
    k = skeleton.NUM_JOINTS
    try:
        while worker.is_alive():
            try:
                frame = frames.get(config.timeout)
            except TimeoutError:
                status = STALL
                break
            if frame is None:
                break
            shape = (frame.image.shape[1], frame.image.shape[0])
            if size is not None and shape != size:
                raise PosecliError(f"{config.source}: the frame size changed from "
                                   f"{size[0]}x{size[1]} to {shape[0]}x{shape[1]}")
            size = shape
            people = tracker(frame.image)
            current = follow(people, current, seen, options.person)
            det = next((d for d in people if d.track_id == current), None)
            xy, conf = (_to_h36m(det, tracker.layout) if det is not None
                        else (np.full((k, 2), np.nan), np.zeros(k)))
            shift = None if pan is None else pan(frame.image, None if det is None else det.xy)
            world = None if det is None else det.world
            worker.put((size, Arrived(frame.index, frame.time, frame.arrival, xy, conf, world,
                                      shift)))
    except KeyboardInterrupt:
        status = ABORT
    except PosecliError as e:
        status, failure = STALL, str(e)
    finally:
        source.stop()
        worker.put(status if status != STALL else END)  # a stall still flushes the last frames
    try:
        worker.join()
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
        status = ABORT
    lines.close()
    if worker.failure is not None and not isinstance(worker.failure, BrokenPipeError):
        raise worker.failure
    return _finish(config, options, worker, source, frames, status, failure, started, clock,
                   report, tracker)


def _finish(config, options, worker, source, frames, status, failure, started, clock, report,
            tracker) -> int:
    """Write the files at the end, print the one closing line, return the exit status."""
    session = worker.session
    n = 0 if session is None else session.done
    wrote = ""
    if config.formats and session is not None and session.kept is not None and n:
        from posecli.export import write_all
        video = {"stream": config.source, "live": True, "frames_received": source.frames,
                 "frames_dropped": frames.dropped}
        res = session.result(config.source, detector=tracker.description(), video=video)
        paths = write_all(res, config.out_dir, list(config.formats),
                          {"bvh": {"scale": options.bvh_scale}}, stem=config.name)
        wrote = "; wrote " + ", ".join(str(p) for p in paths)
    counts = f"{n} frames lifted, {frames.dropped} dropped"
    if isinstance(worker.failure, BrokenPipeError):
        report(f"error: the output was closed after {worker.lines.count} lines ({counts}{wrote})")
        return 1
    if status == ABORT:
        report(f"interrupted: {counts}{wrote}")
        return 130
    if failure is not None:
        report(f"error: {failure} ({counts}{wrote})")
        return 1
    if status == STALL:
        report(f"error: {config.source}: no frame for {config.timeout:g} s: the stream stalled "
               f"({counts}{wrote})")
        return 1
    if source.frames == 0:
        report(f"error: {config.source}: no video frames ({source.error()})")
        return 1
    d = np.array(worker.delays) if worker.delays else np.zeros(1)
    report(f"live: {counts} in {clock() - started:.1f} s; delay median {np.median(d):.0f} ms, "
           f"max {d.max():.0f} ms (look-ahead {config.delay:g} s){wrote}")
    return 0
