"""Streamed video decoding with ffmpeg: every frame exactly once, with its own timestamp.

One frame is in memory at a time. Decoding rules (why: a measuring tool must not invent or
drop frames, nor stretch the picture):

- ``-fps_mode passthrough``: frames leave ffmpeg as the stream holds them, never duplicated to
  a constant rate nor dropped, so the count equals ``ffprobe -count_frames`` (nb_read_frames)
  even when the header's frame rate is wrong or the stream has a variable frame rate.
- Each frame's time is its presentation timestamp (``showinfo``'s integer ``pts`` times the
  filter time base), not ``index / fps``.
- Frames come out upright in display pixels: ffmpeg applies the rotation tag (display matrix)
  itself, and non-square pixels (sample aspect ratio != 1) are rescaled to square ones, widening
  (or heightening) so no detail is lost. Keypoints are therefore in the pixels a player shows.

Only the ffmpeg binary shipped with imageio-ffmpeg is used (no ffprobe needed).
"""
from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from posecli.errors import VideoError  # re-exported: posecli.video.VideoError

#: file suffixes taken as videos when a folder or glob is searched (any file named on the command
#: line is tried with ffmpeg whatever its suffix); the one list, used by posecli.batch too
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".ts", ".mts", ".m2ts")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says, before decoding.

    width, height: display pixels (rotation applied, pixels made square) = the decoded frames.
    fps: the header's average rate (may be wrong; the decoded timestamps are the truth).
    num_frames: estimate (duration x header fps), for progress only; None when unknown.
    """
    path: str
    fps: float
    width: int
    height: int
    num_frames: int | None
    duration: float | None = None        # seconds, container header
    coded_width: int = 0                 # stored pixels, before rotation / SAR
    coded_height: int = 0
    sar: Fraction = Fraction(1)          # sample (pixel) aspect ratio, width / height
    rotation: int = 0                    # degrees, as the display matrix says (multiple of 90)
    report: "DecodeReport | None" = field(default=None, compare=False)  # set after decoding

    def as_dict(self) -> dict:
        """JSON-ready description of how the video was read (for the result's ``input``)."""
        r = self.report
        return {
            "header_fps": round(self.fps, 6), "duration": self.duration,
            "coded_size": [self.coded_width, self.coded_height],
            "sample_aspect_ratio": f"{self.sar.numerator}:{self.sar.denominator}",
            "rotation": self.rotation,
            "timestamps": r.timestamps if r else None,
            "frames_decoded": r.num_frames if r else None,
            "frames_expected": r.frames_expected if r else None,
            "truncated": r.truncated if r else False,
        }


def ffmpeg_exe() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: str | Path) -> VideoInfo:
    """Read frame size, pixel aspect, rotation, rate and duration from the container header."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                              capture_output=True, text=True, errors="replace", timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise VideoError(f"{path}: cannot run ffmpeg ({e})") from None
    return parse_header(path, proc.stderr)


_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (.*)")
_SIZE = re.compile(r",\s(\d+)x(\d+)[\s,\[]|,\s(\d+)x(\d+)$")
_SAR = re.compile(r"\[SAR (\d+):(\d+) DAR")
_FPS = re.compile(r"([\d.]+)(k?) fps")
_TBR = re.compile(r"([\d.]+)(k?) tbr")
_ROT = re.compile(r"rotation of (-?[\d.]+) degrees|^\s*rotate\s*:\s*(-?\d+)", re.M)
_DUR = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


def parse_header(path: str | Path, text: str) -> VideoInfo:
    """``ffmpeg -i`` stderr -> VideoInfo (first video stream). Pure: testable without a file."""
    m = _STREAM.search(text)
    if not m:
        reason = next((l.strip() for l in reversed(text.strip().splitlines())
                       if "Error" in l or "Invalid" in l or "not found" in l), "no video stream")
        raise VideoError(f"{path}: not a readable video ({reason})")
    desc = m.group(1)
    size = _SIZE.search(desc)
    if not size:
        raise VideoError(f"{path}: the video stream has no frame size")
    w, h = (int(v) for v in (size.group(1, 2) if size.group(1) else size.group(3, 4)))
    sar = Fraction(1)
    if (s := _SAR.search(desc)) and int(s.group(1)) > 0 and int(s.group(2)) > 0:
        sar = Fraction(int(s.group(1)), int(s.group(2)))
    fps = 0.0
    for rx in (_FPS, _TBR):
        if (f := rx.search(desc)):
            fps = float(f.group(1)) * (1000 if f.group(2) else 1)
            break
    # side data (rotation) follows the stream line, before the next stream
    after = text[m.end():]
    nxt = re.search(r"Stream #", after)
    rot = 0
    if (r := _ROT.search(after[: nxt.start()] if nxt else after)):
        rot = int(round(float(r.group(1) or r.group(2)))) % 360
    duration = None
    if (d := _DUR.search(text)):
        duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3))
    dw, dh = display_size(w, h, sar, rot)
    num = int(round(duration * fps)) if duration and fps > 0 else None
    return VideoInfo(str(path), fps, dw, dh, num, duration, w, h, sar, rot)


def display_size(w: int, h: int, sar: Fraction, rotation: int) -> tuple[int, int]:
    """Stored size -> upright size in square pixels (never fewer pixels on either axis)."""
    if sar > 1:
        w = int(round(w * sar))
    elif sar < 1:
        h = int(round(h / sar))
    if rotation % 180 == 90:
        w, h = h, w
    return w, h


@dataclass
class DecodeReport:
    """What decoding found. times: (N,) seconds, presentation timestamps of the frames."""
    times: np.ndarray
    frames_expected: int | None   # from the container's duration; None when it gives none
    truncated: bool               # the frames end well before the container's duration
    timestamps: str = "pts"       # "pts", or "header-rate" when the stream had none

    @property
    def num_frames(self) -> int:
        return len(self.times)


@dataclass
class VideoReader:
    """Iterate once over a video's frames; afterwards ``report`` holds their timestamps."""
    path: str | Path
    info: VideoInfo | None = None
    report: DecodeReport | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.info = self.info or probe(self.path)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield frames as (H, W, 3) uint8 RGB arrays in display pixels, one at a time."""
        info = self.info
        w, h = info.width, info.height
        # showinfo first: timestamps are the decoder's; the scale makes pixels square (after
        # ffmpeg's own rotation), and pins the size so the pipe has fixed-size frames
        vf = f"showinfo=checksum=0,scale={w}:{h}:flags=bicubic,setsar=1"
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
               "-i", str(self.path), "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf,
               "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        except OSError as e:
            raise VideoError(f"{self.path}: cannot run ffmpeg ({e})") from None
        log = _StderrLog(proc.stderr)
        size = w * h * 3
        count, finished = 0, False
        try:
            while True:
                buf = _read_exactly(proc.stdout, size)
                if len(buf) < size:  # end of stream (a short last frame of a damaged file)
                    finished = True
                    break
                count += 1
                yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
        finally:
            if not finished and proc.poll() is None:
                proc.kill()  # the consumer stopped early (or an error): do not wait for the rest
            proc.stdout.close()
            proc.wait()
            log.join()
        if count == 0:
            raise VideoError(f"{self.path}: the video has no decodable frames ({log.last_error()})")
        self.report = make_report(log.pts, log.time_base, count, info)
        if self.report.truncated:
            # the container's duration is its longest stream's: audio often outlasts the video.
            # The file is cut only if every stream's data stops early.
            self.report = make_report(log.pts, log.time_base, count, info, packets_end(self.path))


def iter_frames(path: str | Path, info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """Frames only (see :class:`VideoReader` for their timestamps)."""
    yield from VideoReader(path, info)


def make_report(pts: list[int | None], time_base: Fraction | None, count: int,
                info: VideoInfo, data_end: float | None = None) -> DecodeReport:
    """Frame timestamps (ticks in ``time_base``) -> DecodeReport with (count,) times in seconds.
    ``data_end``: seconds where the file's packets (any stream) end, when known
    (:func:`packets_end`)."""
    pts = pts[:count]
    if time_base is None or len(pts) < count or any(p is None for p in pts):
        # no usable timestamps (rare raw streams): the header rate is all there is
        times = np.arange(count) / (info.fps or 30.0)
        kind = "header-rate"
    else:
        times = np.array([p * time_base.numerator / time_base.denominator for p in pts], float)
        times -= min(times[0], 0.0)  # a negative start (edit lists) counts from zero
        kind = "pts"
    return DecodeReport(times, *_completeness(times, info.duration, data_end), timestamps=kind)


def _completeness(times: np.ndarray, duration: float | None,
                  data_end: float | None = None) -> tuple[int | None, bool]:
    """(frames the container's duration implies, whether the frames stop well before it).

    Judged by time, not by a frame count from the header, because the header's rate can be
    wrong (a 60 fps header on a 30 fps stream) while its duration is not. The expected count
    is the decoded one plus the missing time at the median frame interval. ``data_end``
    (seconds, where the packets of every stream end): when it reaches the container's
    duration, another stream (audio) is simply longer than the video, and nothing is missing.
    """
    if not duration or duration <= 0:
        return None, False
    dt = float(np.median(np.diff(times))) if len(times) > 1 else 1 / 30
    dt = dt if dt > 0 else 1 / 30
    missing = duration - (times[-1] + dt)
    # slack: audio tracks and edit lists make the container a little longer than the video
    slack = max(3 * dt, 0.25)
    truncated = missing > slack and not (data_end is not None and duration - data_end <= slack)
    return len(times) + (int(round(missing / dt)) if truncated else 0), bool(truncated)


def packets_end(path: str | Path) -> float | None:
    """Seconds where the file's video and audio packets end (the latest packet's pts plus its
    duration), read without decoding; None when ffmpeg cannot tell.

    A cut file loses every stream's tail; a file whose audio outlasts its video does not.
    """
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
           "-map", "0:v", "-map", "0:a?", "-c", "copy", "-f", "framecrc", "-"]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None
    bases: dict[int, Fraction] = {}
    end = None
    for line in proc.stdout:  # "#tb 0: 1/15360", then "stream, dts, pts, duration, size, crc"
        if line.startswith(b"#tb "):
            k, tb = line[4:].split(b":")
            num, den = tb.strip().split(b"/")
            if int(den):
                bases[int(k)] = Fraction(int(num), int(den))
        elif not line.startswith(b"#"):
            f = line.split(b",")
            try:
                s, pts, dur = int(f[0]), int(f[2]), int(f[3])
            except (IndexError, ValueError):
                continue  # NOPTS or an unexpected line
            if s in bases:
                t = float((pts + max(dur, 0)) * bases[s])
                end = t if end is None else max(end, t)
    proc.wait()
    return end


class _StderrLog:
    """Drain ffmpeg's stderr in a thread (so the pipe never blocks) and collect frame pts."""
    _TB = re.compile(rb"config in time_base: (\d+)/(\d+)")
    _PTS = re.compile(rb"\] n:\s*\d+ pts:\s*(-?\d+|NOPTS)")

    def __init__(self, stream) -> None:
        self.pts: list[int | None] = []
        self.time_base: Fraction | None = None
        self.tail: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:
        for line in stream:
            if (m := self._PTS.search(line)):
                self.pts.append(None if m.group(1) == b"NOPTS" else int(m.group(1)))
            elif self.time_base is None and (m := self._TB.search(line)) and int(m.group(2)):
                self.time_base = Fraction(int(m.group(1)), int(m.group(2)))
            else:
                self.tail = (self.tail + [line.decode(errors="replace").strip()])[-20:]
        stream.close()

    def join(self) -> None:
        self._thread.join(timeout=30)

    def last_error(self) -> str:
        errs = [l for l in self.tail if "rror" in l or "nvalid" in l]
        return (errs or self.tail or ["no frames"])[-1]


def _read_exactly(stream, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        b = stream.read(size - got)
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)
