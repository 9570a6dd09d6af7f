"""Streamed video decoding with ffmpeg (via imageio-ffmpeg): one frame in memory at a time."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from posecli.errors import VideoError  # re-exported: posecli.video.VideoError

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float
    width: int   # pixels, after the container's rotation is applied
    height: int
    num_frames: int | None  # estimate from the container; None when unknown


def probe(path: str | Path) -> VideoInfo:
    """Read fps and frame size from the container without decoding the whole file."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        gen.close()
    except (RuntimeError, OSError, StopIteration) as e:
        raise VideoError(f"{path}: not a readable video ({_first_line(e)})") from None
    w, h = meta["size"]
    if meta.get("rotate", 0) in (90, 270, -90):  # ffmpeg autorotates the frames it hands out
        w, h = h, w
    fps = float(meta.get("fps") or 0.0)
    if fps <= 0:
        raise VideoError(f"{path}: the container gives no frame rate")
    nframes = meta.get("nframes")
    num = int(nframes) if isinstance(nframes, (int, float)) and np.isfinite(nframes) else None
    if num is None and meta.get("duration"):
        num = int(round(meta["duration"] * fps))
    return VideoInfo(str(path), fps, int(w), int(h), num)


def iter_frames(path: str | Path, info: VideoInfo | None = None) -> Iterator[np.ndarray]:
    """Yield frames as (H, W, 3) uint8 RGB arrays, one at a time (memory does not grow).

    Frames that ffmpeg cannot decode are skipped by ffmpeg itself; a stream that yields no
    frame at all raises :class:`VideoError`.
    """
    import imageio_ffmpeg

    info = info or probe(path)
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(gen)
        w, h = meta["size"]
        if meta.get("rotate", 0) in (90, 270, -90):
            w, h = h, w
        count = 0
        for buf in gen:
            frame = np.frombuffer(buf, dtype=np.uint8)
            if frame.size != w * h * 3:  # truncated last frame of a damaged file
                break
            count += 1
            yield frame.reshape(h, w, 3)
    except RuntimeError as e:
        raise VideoError(f"{path}: decoding failed ({_first_line(e)})") from None
    finally:
        gen.close()
    if count == 0:
        raise VideoError(f"{path}: the video has no decodable frames")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
