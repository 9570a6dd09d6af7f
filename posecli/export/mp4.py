"""MP4: the source video with the 2D skeleton drawn on it, beside a 3D view of the skeleton on
the floor with its path. H.264, yuv420p (plays in browsers), same frame count and rate as the
input (a clip whose frames are not evenly spaced: a uniform grid at its median rate over its
frame times, see :func:`posecli.timing.export_grid`). Frames are decoded, drawn (OpenCV) and
piped to ffmpeg one at a time: memory does not grow with the clip.

Left panel: the frame (scaled to at most :data:`MAX_HEIGHT` px high). Bones: the person's
left side blue, right side orange, the trunk and head white; joints below
:data:`LOW_CONFIDENCE` are hollow circles; interpolated frames are drawn thin and grey-tinted;
missing frames show "no person".

The left panel also shows the time and frame counter (``t 1.23 s  frame 38 / 129``).

Right panel (square, as high as the left): the world skeleton (Y up, floor at 0; see
:mod:`posecli.trajectory`) with its feet (ankle -> ball -> toe tip, as the BVH turns them),
seen orthographically from azimuth :data:`VIEW_AZIMUTH_DEG` from the camera's side (+Z)
towards +X and elevation :data:`VIEW_ELEVATION_DEG` above the floor. One scale for the clip
(the body's largest extent), the view centred on the pelvis path smoothed over
:data:`FOLLOW_S`, so the camera follows the body and it never leaves the panel. A 0.5 m floor
grid that moves with the world; the pelvis path on the floor (dim: all of it, bright: up to
this frame); a foot in contact has its sole drawn on the floor under it (heel to toe). A
legend names the colours.
"""
from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from posecli import skeleton
from posecli.errors import PosecliError
from posecli.files import atomic_path
from posecli.result import LiftResult

MAX_HEIGHT = 720
VIEW_AZIMUTH_DEG = 30.0
VIEW_ELEVATION_DEG = 20.0
LOW_CONFIDENCE = 0.5
GRID_STEP = 0.5  # metres
FOLLOW_S = 0.5   # seconds: the 3D view's centre follows the pelvis smoothed this much
HEEL_BACK = 0.05  # metres behind the ankle where the sole starts (drawn contacts)

# RGB colours
LEFT_RGB = (60, 140, 255)
RIGHT_RGB = (255, 140, 30)
CENTRE_RGB = (235, 235, 235)
BG_RGB = (28, 30, 36)
GRID_RGB = (70, 75, 85)
PATH_RGB = (120, 220, 120)
CONTACT_RGB = (240, 220, 60)


class Mp4Error(PosecliError):
    """The MP4 cannot be made (no source video, no encoder)."""


def bone_colour(j: int) -> tuple[int, int, int]:
    """RGB colour of the bone ending at H36M joint ``j``."""
    if j in skeleton.LEFT:
        return LEFT_RGB
    if j in skeleton.RIGHT:
        return RIGHT_RGB
    return CENTRE_RGB


def ffmpeg_exe() -> str:
    """A system ffmpeg if there is one, else the one bundled with imageio-ffmpeg (has libx264)."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:  # pragma: no cover
        raise Mp4Error(f"no ffmpeg found ({e})") from None


def view_matrix(azimuth_deg: float = VIEW_AZIMUTH_DEG,
                elevation_deg: float = VIEW_ELEVATION_DEG) -> np.ndarray:
    """(2, 3) orthographic projection of world metres (Y up) to view (right, up) metres."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    right = np.array([np.cos(a), 0.0, -np.sin(a)])
    forward = np.array([-np.sin(a) * np.cos(e), -np.sin(e), -np.cos(a) * np.cos(e)])  # into the screen
    up = np.cross(right, forward)
    return np.stack([right, up])


def follow_path(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (sigma frames) of a (N, D) path that keeps a steady walk centred at
    the clip's ends too (edges padded by point reflection, which continues a straight line)."""
    from posecli.trajectory import smooth
    r = int(np.ceil(3 * sigma))
    if sigma <= 0 or len(x) < 2:
        return np.asarray(x, float).copy()
    r = min(r, len(x) - 1)
    pad = np.concatenate([2 * x[0] - x[r:0:-1], x, 2 * x[-1] - x[-2:-r - 2:-1]])
    return smooth(pad, sigma)[r:r + len(x)]


class View3D:
    """Maps world points to pixels of a ``size`` x ``size`` panel that follows the body: one
    scale for the clip, each frame centred on the smoothed pelvis."""

    def __init__(self, world: np.ndarray, size: int, fps: float, margin: float = 0.08):
        """world: (N, J, 3) metres (every point drawn); fps: frames per second."""
        self.m = view_matrix()
        # the point followed: halfway up the body, over the pelvis's spot on the floor
        mid = 0.5 * float(np.median(world[:, :, 1].max(axis=1)))
        follow = world[:, 0] * np.array([1.0, 0.0, 1.0]) + np.array([0.0, mid, 0.0])
        self.centres = follow_path(follow @ self.m.T, FOLLOW_S * fps)  # (N, 2) view metres
        floor = follow[:, None] * np.array([1.0, 0.0, 1.0])
        v = np.concatenate([world, floor], axis=1) @ self.m.T - self.centres[:, None]
        span = max(float(np.abs(v).max()) * 2, 1.0)
        self.scale = size * (1 - 2 * margin) / span
        self.size = size

    def __call__(self, p: np.ndarray, i: int) -> np.ndarray:
        """(..., 3) world -> (..., 2) int32 pixels of frame ``i``'s view."""
        v = (p @ self.m.T - self.centres[i]) * self.scale
        px = np.stack([self.size / 2 + v[..., 0], self.size / 2 - v[..., 1]], -1)
        return np.round(px).astype(np.int32)

    def background(self, i: int) -> np.ndarray:
        """(size, size, 3) uint8 RGB panel with the floor grid seen in frame ``i``."""
        import cv2
        img = np.full((self.size, self.size, 3), BG_RGB, np.uint8)
        # the floor visible around the centre: invert the view on the floor plane (Y = 0)
        reach = self.size / self.scale * 1.5
        centre_floor = self._floor_point(self.centres[i])
        x0, z0 = np.floor((centre_floor - reach) / GRID_STEP) * GRID_STEP
        x1, z1 = np.ceil((centre_floor + reach) / GRID_STEP) * GRID_STEP
        for x in np.arange(x0, x1 + 1e-9, GRID_STEP):
            a, b = self(np.array([[x, 0, z0], [x, 0, z1]]), i)
            cv2.line(img, tuple(map(int, a)), tuple(map(int, b)), GRID_RGB, 1, cv2.LINE_AA)
        for z in np.arange(z0, z1 + 1e-9, GRID_STEP):
            a, b = self(np.array([[x0, 0, z], [x1, 0, z]]), i)
            cv2.line(img, tuple(map(int, a)), tuple(map(int, b)), GRID_RGB, 1, cv2.LINE_AA)
        return img

    def _floor_point(self, centre: np.ndarray) -> np.ndarray:
        """(2,) view metres -> (x, z) of the floor point seen there."""
        a = self.m[:, [0, 2]]                     # (2, 2): view of floor (x, z)
        return np.linalg.solve(a, centre)


def draw_2d(img: np.ndarray, kp: np.ndarray, conf: np.ndarray, flag: str, scale: float) -> None:
    """Draw the H36M skeleton (kp (17, 2) px of the source frame, conf (17,)) on ``img`` in place."""
    import cv2
    if flag == skeleton.MISSING:
        cv2.putText(img, "no person", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 80, 80), 2, cv2.LINE_AA)
        return
    interp = flag == skeleton.INTERPOLATED
    pts = np.round(np.asarray(kp) * scale).astype(np.int32)
    thick = 1 if interp else max(2, int(round(3 * scale)))
    for j in range(1, skeleton.NUM_JOINTS):
        c = bone_colour(j)
        if interp:
            c = tuple(int(v * 0.5 + 64) for v in c)
        cv2.line(img, tuple(map(int, pts[skeleton.PARENTS[j]])), tuple(map(int, pts[j])), c, thick, cv2.LINE_AA)
    r = max(3, int(round(4 * scale)))
    for j in range(skeleton.NUM_JOINTS):
        low = interp or conf[j] < LOW_CONFIDENCE
        cv2.circle(img, tuple(map(int, pts[j])), r, (255, 255, 255), 1 if low else -1, cv2.LINE_AA)


def draw_3d(img: np.ndarray, px: np.ndarray, feet_px: np.ndarray, path_px: np.ndarray, i: int,
            soles_px: np.ndarray | None, contacts: np.ndarray | None) -> None:
    """Draw frame ``i``'s skeleton (px (17, 2)), its feet (feet_px (2, 2, 2): right, left x
    ball, toe tip), the pelvis path (path_px (N, 2)) and the soles in contact (soles_px
    (2, 2, 2): heel and toe tip on the floor, contacts (2,) bool) on ``img``."""
    import cv2
    if i > 0:
        cv2.polylines(img, [path_px[:i + 1].reshape(-1, 1, 2)], False, PATH_RGB, 2, cv2.LINE_AA)
    if contacts is not None:
        for k in range(2):
            if contacts[k]:
                a, b = (tuple(map(int, q)) for q in soles_px[k])
                cv2.line(img, a, b, CONTACT_RGB, 6, cv2.LINE_AA)
    for j in range(1, skeleton.NUM_JOINTS):
        cv2.line(img, tuple(map(int, px[skeleton.PARENTS[j]])), tuple(map(int, px[j])), bone_colour(j), 3,
                 cv2.LINE_AA)
    for k, ankle in enumerate((3, 6)):
        pts = np.concatenate([px[ankle:ankle + 1], feet_px[k]]).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], False, bone_colour(ankle), 3, cv2.LINE_AA)
    for j in range(skeleton.NUM_JOINTS):
        cv2.circle(img, tuple(map(int, px[j])), 3, (255, 255, 255), -1, cv2.LINE_AA)


LEGEND = (("left", LEFT_RGB), ("right", RIGHT_RGB), ("path", PATH_RGB), ("foot contact", CONTACT_RGB))


def draw_legend(img: np.ndarray) -> None:
    """The colours' names in the 3D panel's top-left corner."""
    import cv2
    scale = max(0.4, img.shape[0] / 900)
    y = int(22 * scale / 0.5)
    for name, colour in LEGEND:
        cv2.line(img, (10, y - 5), (34, y - 5), colour, 4, cv2.LINE_AA)
        cv2.putText(img, name, (42, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (220, 220, 220), 1, cv2.LINE_AA)
        y += int(20 * scale / 0.5)


def draw_clock(img: np.ndarray, t: float, i: int, n: int) -> None:
    """Time and frame counter in the top-left corner of the video panel."""
    import cv2
    text = f"t {t:6.2f} s   frame {i + 1} / {n}"
    scale = max(0.45, img.shape[0] / 900)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(img, (4, 4), (14 + w, 14 + h + base), (0, 0, 0), -1)
    cv2.putText(img, text, (9, 9 + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _frames(video: Path | None, n: int, w: int, h: int):
    """Yield exactly ``n`` RGB frames (h, w, 3): decoded from ``video``, or a plain background
    without a video. Mp4Error when the video does not hold exactly ``n`` frames (the wrong
    clip: its picture would freeze, or stop early, under the skeleton)."""
    if video is None:
        blank = np.full((h, w, 3), 90, np.uint8)
        for _ in range(n):
            yield blank.copy()
        return
    from posecli.video import iter_frames
    count = 0
    for frame in iter_frames(video):
        if count == n:
            raise Mp4Error(f"{video}: the video has more than the result's {n} frames; "
                           "give the video the result was lifted from")
        count += 1
        yield np.array(frame)  # writable copy
    if count < n:
        raise Mp4Error(f"{video}: the video has {count} frames, the result {n}; "
                       "give the video the result was lifted from")


def _shown(frames, show: np.ndarray):
    """Yield (source index, frame) for each output frame ``show[k]`` (non-decreasing source
    indices: a frame repeats or is skipped), reading ``frames`` to its end."""
    it = enumerate(frames)
    i, frame = next(it)
    for k in show:
        while i < k:
            i, frame = next(it)
        yield i, frame
    for _ in it:  # the rest: _frames checks the frame count at the end
        pass


def _unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def encoder_command(path: Path, width: int, height: int, fps: float) -> list[str]:
    """ffmpeg reading raw RGB frames on stdin and writing H.264 yuv420p MP4 at ``fps``."""
    rate = Fraction(fps).limit_denominator(1001)
    return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(rate),
            "-i", "-", "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23",
            "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(path)]


def write(result: LiftResult, path: str | Path, video: str | Path | None = None,
          max_height: int = MAX_HEIGHT) -> None:
    """Render ``result`` as a side-by-side MP4, atomically.

    video: the source video (default: ``result.source`` for video input; keypoint input and
    ``video=""`` draw on a plain background). Raises :class:`Mp4Error` if the video is gone.
    """
    import cv2

    src = None
    if video:
        src = Path(video)
    elif video is None and result.kind == "video":
        src = Path(result.source)
    if src is not None and not src.is_file():
        raise Mp4Error(f"{src}: source video not found (give its new path with --video)")
    n, w, h = result.num_frames, result.width, result.height
    # one frame rate in the file: an unevenly timed clip is shown on a uniform grid, each output
    # frame the latest source frame at or before its time, so it plays as long as the clip
    from posecli import timing
    times = result.frame_times()
    fps, grid = timing.export_grid(times, result.fps)
    show = np.arange(n) if grid is None else timing.shown_frames(times, grid)
    out_h = min(h, max_height) // 2 * 2
    scale = out_h / h
    left_w = int(round(w * scale)) // 2 * 2
    size = out_h
    width = left_w + size

    from posecli.export import bvh
    world, weights, lm, trust, _ = bvh.motion(result, fixed_rate=False)  # per source frame
    feet = bvh.foot_points(*bvh.solve(world, weights, lm, trust))   # (N, 2, 2, 3)
    view = View3D(np.concatenate([world, feet.reshape(n, 4, 3)], axis=1), size, result.fps)
    contacts = result.trajectory.contacts if result.trajectory is not None else None
    pelvis_floor = world[:, 0] * np.array([1.0, 0.0, 1.0])
    flat = np.array([1.0, 0.0, 1.0])
    heel = world[:, [3, 6]] - HEEL_BACK * _unit_rows((feet[:, :, 1] - world[:, [3, 6]]) * flat)
    soles = np.stack([heel * flat, feet[:, :, 1] * flat], axis=2)   # (N, 2, 2, 3) on the floor
    with atomic_path(path) as tmp:
        proc = subprocess.Popen(encoder_command(tmp, width, out_h, fps),
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            canvas = np.zeros((out_h, width, 3), np.uint8)
            for i, frame in _shown(_frames(src, n, w, h), show):
                if frame.shape[:2] != (out_h, left_w):
                    frame = cv2.resize(frame, (left_w, out_h), interpolation=cv2.INTER_AREA)
                draw_2d(frame, result.keypoints[i], result.conf[i], str(result.flags[i]), scale)
                draw_clock(frame, float(times[i] - times[0]), i, n)
                panel = view.background(i)
                path_px = view(pelvis_floor, i)
                cv2.polylines(panel, [path_px.reshape(-1, 1, 2)], False,
                              tuple(v // 3 for v in PATH_RGB), 1, cv2.LINE_AA)
                draw_3d(panel, view(world[i], i), view(feet[i], i), path_px, i, view(soles[i], i),
                        contacts[i] if contacts is not None else None)
                draw_legend(panel)
                canvas[:, :left_w] = frame
                canvas[:, left_w:] = panel
                proc.stdin.write(canvas.tobytes())
            proc.stdin.close()
            rc = proc.wait()
        except BrokenPipeError:
            rc = proc.wait()
        finally:
            if proc.poll() is None:  # an error while drawing: stop the encoder
                proc.kill()
                proc.wait()
        if rc != 0:
            msg = proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise Mp4Error(f"ffmpeg failed: {msg[-1] if msg else rc}")
