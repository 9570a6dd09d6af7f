"""A live source through ffmpeg: frames as they arrive, each with its own timestamp.

SOURCE is ``-`` (a stream on standard input, e.g. MPEG-TS), a camera (``/dev/video0``, or an
index: ``0`` is ``/dev/video0`` on Linux and AVFoundation's camera 0 on macOS), or anything
ffmpeg opens (``rtsp://``, ``srt://``, ``udp://``, ``http://`` ...; a file is played at its
own pace, ``-re``, as if it were a camera).

ffmpeg decodes it with the offline rules (:mod:`posecli.video`: every frame once, upright,
square pixels) and writes each frame as a PPM image (a header with its size, then RGB), so
the size needs no probing before reading; each frame's presentation timestamp comes from
``showinfo`` on ffmpeg's log. Probing is kept short (``-probesize``/``-analyzeduration``) so
the first frames are not held back seconds before they are passed on.

A reader thread reads frames as fast as ffmpeg gives them (ffmpeg, and a network sender
behind it, never wait for us) into a :class:`DropQueue`: when the consumer falls behind, the
oldest frames are dropped and counted rather than queued without bound.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from posecli.errors import VideoError
from posecli.video import _StderrLog, ffmpeg_exe

# ffmpeg's input probing: enough for a keyframe of an HD stream, a fraction of a second of it
PROBE_ARGS = ["-probesize", "500000", "-analyzeduration", "500000"]
# square pixels as offline (posecli.video.display_size): widen or heighten, never shrink
SQUARE = ("scale=w='if(gt(sar,1),round(iw*sar),iw)':h='if(between(sar,0.001,0.999),"
          "round(ih/sar),ih)',setsar=1")
PTS_WAIT_S = 1.0  # how long a frame waits for its timestamp on ffmpeg's log


@dataclass
class Frame:
    """One decoded frame: (H, W, 3) uint8 RGB, its index in the stream (from 0), its time
    (seconds since the stream's first frame, from its timestamp) and arrival (the clock, s)."""
    image: np.ndarray
    index: int
    time: float
    arrival: float


def input_args(source: str, platform: str = sys.platform) -> tuple[list[str], bool]:
    """ffmpeg's input arguments for SOURCE, and whether it reads our standard input."""
    if source == "-":
        return ["-i", "pipe:0"], True
    if source.isdigit():  # a camera index
        if platform.startswith("linux"):
            return ["-f", "v4l2", "-i", f"/dev/video{source}"], False
        if platform == "darwin":
            return ["-f", "avfoundation", "-framerate", "30", "-i", f"{source}:none"], False
        raise VideoError(f"camera {source}: give the camera as ffmpeg names it on this system "
                         f"(e.g. video=\"NAME\" with dshow) or as a URL")
    if source.startswith("/dev/video"):
        return ["-f", "v4l2", "-i", source], False
    if "://" not in source and Path(source).is_file():
        return ["-re", "-i", source], False  # a file plays at its own pace, as a camera would
    if source.startswith("udp://") and "overrun_nonfatal" not in source:
        # a burst larger than ffmpeg's UDP buffer is a dropped packet, not the end of the stream
        source += ("&" if "?" in source else "?") + "fifo_size=1000000&overrun_nonfatal=1"
    return ["-i", source], False


def ffmpeg_command(source: str) -> tuple[list[str], bool]:
    """The whole ffmpeg command line for SOURCE (frames as PPM on standard output)."""
    args, stdin = input_args(source)
    return ([ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "info", *PROBE_ARGS, *args,
             "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", f"showinfo=checksum=0,{SQUARE}",
             "-fps_mode", "passthrough", "-f", "image2pipe", "-c:v", "ppm", "pipe:1"], stdin)


def read_ppm(stream) -> np.ndarray | None:
    """One binary PPM (P6, maxval 255) from a byte stream -> (H, W, 3) uint8; None at the end
    (or a frame cut short)."""
    magic = stream.readline()
    if not magic:
        return None
    if magic.strip() != b"P6":
        raise VideoError(f"unexpected data from ffmpeg ({magic[:20]!r})")
    dims = stream.readline().split()
    maxval = stream.readline().strip()
    if len(dims) != 2 or maxval != b"255":
        raise VideoError("unexpected PPM header from ffmpeg")
    w, h = int(dims[0]), int(dims[1])
    data = stream.read(w * h * 3)
    if len(data) < w * h * 3:
        return None
    return np.frombuffer(data, np.uint8).reshape(h, w, 3)


class DropQueue:
    """A frame queue that never grows past ``capacity`` and never holds a frame longer than
    ``max_wait`` seconds: the oldest frames are dropped (and counted) instead.

    ``put`` (the reader) never blocks; ``get`` (the consumer) waits up to ``timeout`` for a
    frame. ``close()`` marks the end; then ``get`` returns None once the queue is empty.
    """

    def __init__(self, capacity: int, max_wait: float, clock: Callable[[], float] = time.monotonic):
        self.capacity, self.max_wait, self.clock = max(1, int(capacity)), float(max_wait), clock
        self.items: deque = deque()
        self.dropped = 0
        self.closed = False
        self.cond = threading.Condition()

    def put(self, frame: Frame) -> None:
        with self.cond:
            self.items.append(frame)
            while len(self.items) > self.capacity:
                self.items.popleft()
                self.dropped += 1
            self.cond.notify()

    def __len__(self) -> int:
        """Frames waiting for the consumer now."""
        return len(self.items)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        """The oldest frame that has not waited too long; None at the end. TimeoutError when
        nothing arrives for ``timeout`` seconds."""
        deadline = self.clock() + timeout
        with self.cond:
            while True:
                now = self.clock()
                while self.items and now - self.items[0].arrival > self.max_wait:
                    self.items.popleft()
                    self.dropped += 1
                if self.items:
                    return self.items.popleft()
                if self.closed:
                    return None
                if now >= deadline:
                    raise TimeoutError
                self.cond.wait(deadline - now)


class StreamSource:
    """ffmpeg reading SOURCE in a child process, a thread putting its frames into ``queue``.

    ``error`` holds ffmpeg's last error line once the stream ended without a frame.
    """

    def __init__(self, source: str, queue: DropQueue, clock: Callable[[], float] = time.monotonic):
        self.source, self.queue, self.clock = source, queue, clock
        cmd, self.uses_stdin = ffmpeg_command(source)
        try:
            # its own process group: Ctrl-C reaches posecli, which then stops ffmpeg itself
            self.proc = subprocess.Popen(cmd, stdin=None if self.uses_stdin else subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         start_new_session=True)
        except OSError as e:
            raise VideoError(f"{source}: cannot run ffmpeg ({e})") from None
        self.log = _StderrLog(self.proc.stderr)
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self.t0: float | None = None
        self.failure: str | None = None
        self.thread = threading.Thread(target=self._run, name="posecli-live-reader", daemon=True)
        self.thread.start()

    def _time(self, k: int, arrival: float) -> float:
        """Frame k's time from its timestamp on ffmpeg's log (arrival time if it has none)."""
        deadline = self.clock() + PTS_WAIT_S
        while len(self.log.pts) <= k and self.clock() < deadline and self.proc.poll() is None:
            time.sleep(0.0005)  # the log line is written before the frame: rarely waits
        pts = self.log.pts[k] if len(self.log.pts) > k else None
        tb = self.log.time_base
        t = float(pts * tb) if pts is not None and tb is not None else arrival
        if self.t0 is None:
            self.t0 = t
        return t - self.t0

    def _run(self) -> None:
        try:
            while True:
                image = read_ppm(self.proc.stdout)
                if image is None:
                    break
                arrival = self.clock()
                self.size = self.size or (image.shape[1], image.shape[0])
                self.queue.put(Frame(image, self.frames, self._time(self.frames, arrival), arrival))
                self.frames += 1
        except (VideoError, OSError, ValueError) as e:
            self.failure = str(e)
        finally:
            self.queue.close()

    def error(self) -> str:
        """Why the stream gave no frame: ffmpeg's last error line."""
        self.proc.poll()
        self.log.join()
        return self.failure or self.log.last_error()

    def stop(self) -> None:
        """End ffmpeg (if still running) and the reader."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(timeout=3)

