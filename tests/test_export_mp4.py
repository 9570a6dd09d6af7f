"""MP4 writer: ffprobe checks (H.264, yuv420p, frame count, rate, duration) and the overlay
drawn where the joints are."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from export_helpers import EXAMPLE, truth_result
from posecli.export import mp4, write_all


def ffprobe(path: Path) -> dict:
    exe = shutil.which("ffprobe")
    if exe is None:
        pytest.skip("ffprobe not installed (apt-get install -y ffmpeg)")
    r = subprocess.run([exe, "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                        "stream=codec_name,pix_fmt,width,height,r_frame_rate,nb_read_frames,duration",
                        "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["streams"][0]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    res = truth_result()
    (path,) = write_all(res, tmp_path_factory.mktemp("mp4"), ["mp4"])
    return res, path


def test_ffprobe_h264_yuv420p_same_frames_and_rate(rendered):
    res, path = rendered
    got, src = ffprobe(path), ffprobe(EXAMPLE)
    assert got["codec_name"] == "h264" and got["pix_fmt"] == "yuv420p"
    assert int(got["width"]) % 2 == 0 and int(got["height"]) % 2 == 0
    assert int(got["nb_read_frames"]) == int(src["nb_read_frames"]) == res.num_frames
    assert got["r_frame_rate"] == src["r_frame_rate"]
    assert float(got["duration"]) == pytest.approx(float(src["duration"]), abs=1.5 / res.fps)


def test_overlay_drawn_where_the_joints_are(rendered):
    import imageio_ffmpeg
    res, path = rendered
    i = res.num_frames // 2
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    w, h = meta["size"]
    frame = None
    for k, buf in enumerate(gen):
        if k == i:
            frame = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            break
    gen.close()
    scale = h / res.height
    # sample along the left shin (knee 5 -> ankle 6) and the right thigh (hip 1 -> knee 2),
    # away from the joint discs: the pixels carry the side's colour
    for (a, b), colour in (((5, 6), mp4.LEFT_RGB), ((1, 2), mp4.RIGHT_RGB)):
        pa, pb = res.keypoints[i, a] * scale, res.keypoints[i, b] * scale
        hits = 0
        for f in np.linspace(0.3, 0.7, 9):
            x, y = np.round(pa + f * (pb - pa)).astype(int)
            patch = frame[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).astype(int)
            if (np.abs(patch - np.array(colour)).sum(axis=1) < 90).any():
                hits += 1
        assert hits >= 7, (a, b, hits)


def test_missing_source_video_is_a_clear_error(tmp_path):
    res = truth_result()
    res.source = str(tmp_path / "moved.mp4")
    with pytest.raises(mp4.Mp4Error, match="not found"):
        mp4.write(res, tmp_path / "x.mp4")
    assert not list(tmp_path.glob("*.mp4*"))


def test_3d_view_follows_the_body():
    res = truth_result()
    world = res.trajectory.world.copy()
    world[:, :, 0] += np.linspace(0, 12.0, len(world))[:, None]  # a 12 m walk sideways
    view = mp4.View3D(world, 480, res.fps)
    pelvis = np.array([view(world[i, 0], i) for i in range(len(world))])
    body = np.array([view(world[i], i) for i in range(len(world))])
    assert (body >= 0).all() and (body < 480).all()          # always inside the panel
    assert np.abs(pelvis[:, 0] - 240).max() < 80               # near the middle, all the way
    assert view.scale * 1.0 > 480 / 6                          # and not shrunk to fit the walk


def test_legend_clock_and_soles_are_drawn(rendered):
    import imageio_ffmpeg
    res, path = rendered
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]
    left_w = w - h
    f0 = frames[0].astype(int)
    # the clock: a black box with white text in the video panel's corner
    box = f0[4:24, 4:150]
    assert (box.sum(-1) < 60).mean() > 0.5 and (box.min(-1) > 200).any()
    # the legend: every colour in the 3D panel's top-left corner
    corner = f0[:110, left_w:left_w + 60].reshape(-1, 3)
    for name, colour in mp4.LEGEND:
        assert (np.abs(corner - np.array(colour)).sum(1) < 60).any(), name
    # contacts: the contact colour appears in frames where a foot is planted, and only there
    contact = np.array([(np.abs(fr[120:, left_w:].astype(int) - np.array(mp4.CONTACT_RGB)).sum(-1) < 60).sum()
                        for fr in frames])
    planted = res.trajectory.contacts.any(axis=1)
    assert (contact[planted] > 20).mean() > 0.9 and (contact[~planted] <= 20).mean() > 0.9
