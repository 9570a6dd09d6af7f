"""Issue 31: inputs that used to give silently wrong output, a traceback, or an error after the
work. Each test is one case of the issue's list: what the user runs, and what they must see."""
from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from export_helpers import truth_result
from posecli import batch
from posecli.export.json import write as write_json
from posecli.video import VideoReader, probe
from test_bad_input import one_line_error, run
from test_video_timing import VFR_FILTER, ffmpeg

EXAMPLE = REPO / "examples" / "walk_07_05.mp4"
EXAMPLE_KP = REPO / "examples" / "cmu_07_05_walk.keypoints.json"


def bvh_timing(path: Path) -> tuple[int, float, str]:
    """(frames, frame time in s, the whole text) of a BVH file."""
    text = path.read_text()
    frames = int(re.search(r"^Frames:\s*(\d+)", text, re.M).group(1))
    frame_time = float(re.search(r"^Frame Time:\s*(\S+)", text, re.M).group(1))
    return frames, frame_time, text


def video_span(path: Path) -> float:
    """Seconds a player shows a video for: the last frame's time plus one frame interval."""
    reader = VideoReader(path)
    n = sum(1 for _ in reader)
    t = reader.report.times
    return float(t[-1] + (np.median(np.diff(t)) if n > 1 else 0))


@pytest.fixture(scope="module")
def detector_available():
    pytest.importorskip("posecli.detect2d.blazepose")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """Clips made with ffmpeg from the example (129 frames, 30 fps)."""
    d = tmp_path_factory.mktemp("made")
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "23"]
    c = {}
    # 3 s of video, 6 s of audio (phones often record a little more audio than video)
    c["v3"] = d / "v3.mp4"
    ffmpeg("-i", EXAMPLE, "-frames:v", 90, *x264, c["v3"])
    c["long_audio"] = d / "long_audio.mp4"
    ffmpeg("-i", c["v3"], "-f", "lavfi", "-i", "sine=frequency=440:duration=6", "-map", "0:v", "-map", "1:a",
           "-c:v", "copy", "-c:a", "aac", "-movflags", "+faststart", c["long_audio"])
    # the same file really cut in half: video and audio both stop at about 1.7 s
    c["cut"] = d / "cut.mp4"
    whole = c["long_audio"].read_bytes()
    c["cut"].write_bytes(whole[: len(whole) // 2])
    # the first 10 frames, and the first second
    c["ten"] = d / "ten.mp4"
    ffmpeg("-i", EXAMPLE, "-frames:v", 10, *x264, c["ten"])
    c["short"] = d / "short.mp4"
    ffmpeg("-i", EXAMPLE, "-frames:v", 30, *x264, c["short"])
    # 40 frames at 30 fps, 40 at 10, 49 at 60: 129 frames over 6.17 s
    c["vfr"] = d / "vfr.mp4"
    ffmpeg("-i", EXAMPLE, "-vf", VFR_FILTER, "-fps_mode", "passthrough", *x264, c["vfr"])
    return c


@pytest.fixture(scope="module")
def example_result(tmp_path_factory) -> Path:
    """A result JSON of the example video (its true motion; no detector or lifter needed)."""
    path = tmp_path_factory.mktemp("res") / "walk_07_05.json"
    write_json(truth_result(), path)
    return path


# ---- 1. audio longer than the video is not truncation -----------------------------------------

def test_long_audio_is_not_truncation_but_a_cut_file_is(made):
    assert probe(made["long_audio"]).duration == pytest.approx(6.0, abs=0.05)  # the container's
    reader = VideoReader(made["long_audio"])
    assert sum(1 for _ in reader) == 90
    assert not reader.report.truncated and reader.report.frames_expected == 90  # was True, 180
    cut = VideoReader(made["cut"])
    assert sum(1 for _ in cut) < 70
    assert cut.report.truncated


def test_long_audio_lifts_without_warning_even_with_fail_truncated(made, tmp_path, tiny_weights,
                                                                    detector_available):
    # --static-camera: the made clip's moving test pattern reads as a panning camera (a warning
    # of its own); this is about the audio stream not being taken for truncation
    r = run("lift", made["long_audio"], "-o", tmp_path, "--weights", tiny_weights, "-q", "--fail-truncated",
            "--static-camera")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output
    doc = json.loads((tmp_path / "long_audio.json").read_text())
    assert doc["input"]["truncated"] is False and doc["input"]["frames_expected"] == 90


# ---- 2. a variable-frame-rate clip's BVH and MP4 last as long as the clip ----------------------

def test_vfr_bvh_and_mp4_last_as_long_as_the_clip(made, tmp_path, tiny_weights, detector_available):
    r = run("lift", made["vfr"], "-o", tmp_path, "--weights", tiny_weights, "-q", "-f", "json,bvh,mp4")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "vfr.json").read_text())
    t = np.array([f["time"] for f in doc["frames"]])
    span = t[-1] + 1 / doc["input"]["fps"]                 # 6.167 s
    assert len(t) == 129 and span == pytest.approx(6.167, abs=0.01)
    frames, frame_time, _ = bvh_timing(tmp_path / "vfr.bvh")
    assert frames * frame_time == pytest.approx(span, abs=1.01 * frame_time)  # was 129 x 1/30 = 4.3 s
    assert video_span(tmp_path / "vfr.mp4") == pytest.approx(span, abs=0.05)  # was 4.3 s
    assert "fixed" in doc["timing"]["exports"] and "30" in doc["timing"]["exports"]  # the note


def test_uniform_clip_exports_are_not_resampled(tmp_path):
    res = truth_result()
    path = tmp_path / "walk.json"
    write_json(res, path)
    assert json.loads(path.read_text())["timing"] is None or \
        json.loads(path.read_text())["timing"].get("exports") is None
    r = run("export", path, "-f", "bvh")
    assert r.exit_code == 0, r.output
    frames, frame_time, _ = bvh_timing(tmp_path / "walk.bvh")
    assert frames == 129 and frame_time == pytest.approx(1 / res.fps)


# ---- 3. export --video refuses the wrong clip; outputs are named after the result -----------

def test_export_refuses_a_video_that_does_not_match_the_result(made, example_result, tmp_path):
    out = tmp_path / "out"
    err = one_line_error(run("export", example_result, "-f", "bvh,mp4", "--video", made["ten"], "-o", out),
                         "ten.mp4")
    assert "129" in err
    assert not out.exists() or not list(out.iterdir())


def test_export_names_outputs_after_the_result_not_the_video(example_result, tmp_path):
    moved = tmp_path / "moved.mp4"
    shutil.copy(EXAMPLE, moved)
    out = tmp_path / "out"
    r = run("export", example_result, "-f", "bvh,mp4", "--video", moved, "-o", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["walk_07_05.bvh", "walk_07_05.mp4"]


# ---- 4. an old result holding a NaN never writes nan tokens -----------------------------------

def test_export_of_a_result_with_nan_writes_no_nan(example_result, tmp_path):
    doc = json.loads(example_result.read_text())
    doc["frames"][5]["joints_3d"][3][0] = float("nan")       # as an old version could write it
    doc["frames"][6]["pelvis_world"][1] = float("nan")
    doc["frames"][7]["keypoints_2d"][2][1] = float("inf")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    r = run("export", path, "-f", "bvh,mp4")
    assert r.exit_code == 0, r.output
    frames, _, text = bvh_timing(tmp_path / "old.bvh")
    assert frames == 129 and "nan" not in text.lower() and "inf" not in text.lower()
    assert all(math.isfinite(float(v)) for line in text.split("MOTION")[1].splitlines()[3:] for v in line.split())


def test_result_with_a_non_finite_header_number_is_one_line(example_result, tmp_path):
    doc = json.loads(example_result.read_text())
    doc["input"]["fps"] = float("nan")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    one_line_error(run("export", path, "-f", "bvh"), "old.json", "fps")
    assert not (tmp_path / "old.bvh").exists()


# ---- 5. --bvh-scale 0, negative or not finite: refused up front --------------------------------

@pytest.mark.parametrize("scale", ["0", "-1", "nan", "inf"])
def test_bad_bvh_scale_is_refused_up_front(example_result, tmp_path, tiny_weights, scale):
    one_line_error(run("export", example_result, "-f", "bvh", "-o", tmp_path / "e", "--bvh-scale", scale),
                   "--bvh-scale")
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path / "l", "--weights", tiny_weights, "-q",
                       "-f", "bvh", "--bvh-scale", scale), "--bvh-scale")
    assert not (tmp_path / "e").exists() and not (tmp_path / "l").exists()


# ---- 6. a batch re-run in place never takes its own outputs as inputs --------------------------

def test_batch_rerun_in_place_skips_its_own_outputs(made, tmp_path, tiny_weights, monkeypatch, detector_available):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(made["short"], clips / "a.mp4")
    shutil.copy(made["short"], clips / "b.mp4")
    monkeypatch.chdir(clips)
    first = run("lift", ".", "--weights", tiny_weights, "-q", "-f", "json,bvh")
    assert first.exit_code == 0, first.output
    assert {"a.json", "a.bvh", "b.json", "b.bvh"} <= {p.name for p in clips.iterdir()}
    again = run("lift", ".", "--weights", tiny_weights, "-q", "-f", "json,bvh")  # `posecli lift .` twice
    assert again.exit_code == 0, again.output
    skipped = [l.split()[1] for l in again.output.splitlines() if l.startswith("skipped ")]
    assert skipped == ["a.mp4:", "b.mp4:"] and "error" not in again.output, again.output


def test_keypoint_batch_in_place_with_mp4_reruns(tmp_path, tiny_weights, monkeypatch):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(EXAMPLE_KP, clips / "k.json")
    shutil.copy(EXAMPLE_KP, clips / "m.json")
    monkeypatch.chdir(clips)
    assert run("lift", ".", "--weights", tiny_weights, "-q", "-f", "bvh,mp4").exit_code == 0
    assert (clips / "k.mp4").is_file()
    again = run("lift", ".", "--weights", tiny_weights, "-q", "-f", "bvh,mp4")  # k.mp4 is k.json's render
    assert again.exit_code == 0, again.output
    assert [l.split()[1] for l in again.output.splitlines() if l.startswith("skipped ")] == ["k.json:", "m.json:"]


def test_a_result_from_elsewhere_is_still_an_input(tmp_path, tiny_weights):
    # a posecli result is a valid keypoint input when it is not this batch's own output
    assert run("lift", EXAMPLE_KP, "-o", tmp_path / "first", "--weights", tiny_weights, "-q").exit_code == 0
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(tmp_path / "first" / "cmu_07_05_walk.keypoints.json", clips / "r.json")
    assert [c.name for c in batch.discover([clips], exclude=clips)] == ["r.json"]


# ---- 7. --log / --summary that cannot be written: checked up front -----------------------------

@pytest.mark.parametrize("opt", ["--log", "--summary"])
@pytest.mark.parametrize("where", ["dir", "under_a_file"])
def test_log_and_summary_are_checked_up_front(tmp_path, tiny_weights, opt, where):
    target = tmp_path if where == "dir" else tmp_path / "plain.txt" / "x.log"
    (tmp_path / "plain.txt").write_text("a file, not a folder")
    out = tmp_path / "out"
    one_line_error(run("lift", EXAMPLE_KP, "-o", out, "--weights", tiny_weights, "-q", opt, target), opt)
    assert not out.exists()  # before any work


# ---- 8. every number that comes in is checked before any work ---------------------------------

@pytest.mark.parametrize("opt, value", [("--focal", "nan"), ("--focal", "-5"), ("--focal", "inf"),
                                        ("--focal", "1e300"), ("--stride", "-3"), ("--threads", "100000")])
def test_bad_numbers_in_options(tmp_path, tiny_weights, opt, value):
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path / "out", "--weights", tiny_weights, "-q", opt, value), opt)
    assert not (tmp_path / "out").exists()


def _keypoints(tmp_path, edit) -> Path:
    doc = json.loads(EXAMPLE_KP.read_text())
    edit(doc)
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["input"].update(fps=1e-9), ["fps"]),
    (lambda d: d["input"].update(fps=1e9), ["fps"]),
    (lambda d: d["input"].update(width=1e12), ["width"]),
    (lambda d: [f.update(time=i / 30 if i < 128 else 1e9) for i, f in enumerate(d["frames"])], ["time"]),
    (lambda d: [f.update(time=i * 33.3) for i, f in enumerate(d["frames"])], ["time"]),  # milliseconds
])
def test_bad_numbers_in_keypoint_files(tmp_path, tiny_weights, edit, words):
    src = _keypoints(tmp_path, edit)
    r = run("lift", src, "-o", tmp_path / "out", "--weights", tiny_weights, "-q")
    err = one_line_error(r, "kp.json", *words)
    assert "unexpected" not in err and "a bug" not in err


# ---- 9. option errors blame the option, as one line with exit 1 -------------------------------

@pytest.mark.parametrize("opts, words", [(["--jobs", "0"], ["--jobs"]), (["--jobs", "-2"], ["--jobs"]),
                                         (["--max-people", "0"], ["--max-people"])])
def test_lift_option_errors_are_one_line(tmp_path, tiny_weights, opts, words):
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "-q", *opts), *words)


@pytest.mark.parametrize("opts, words", [(["--threads", "0"], ["--threads"]),
                                         (["--max-people", "0"], ["--max-people"])])
def test_tracks_option_errors_blame_the_option(tmp_path, opts, words):
    err = one_line_error(run("tracks", EXAMPLE, "-o", tmp_path / "t", "-q", *opts), *words)
    assert "tflite" not in err


def test_tracks_says_one_person(made, tmp_path, detector_available):
    r = run("tracks", made["short"], "-o", tmp_path, "-q")
    assert r.exit_code == 0, r.output
    assert "1 person " in r.output and "1 people" not in r.output


# ---- 10. no leftovers; every video suffix found in a folder ----------------------------------

def test_export_with_a_missing_video_leaves_nothing(example_result, tmp_path):
    out = tmp_path / "out"
    one_line_error(run("export", example_result, "-f", "bvh,mp4", "--video", tmp_path / "nothere.mp4", "-o", out),
                   "nothere.mp4")
    assert not out.exists() or not list(out.iterdir())


def test_transport_stream_is_found_in_a_folder(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a.ts", "b.mp4", "c.MTS", "notes.txt"):
        (folder / name).write_bytes(b"x")
    assert [c.name for c in batch.discover([folder])] == ["a.ts", "b.mp4", "c.MTS"]


def test_ts_file_lifts_from_its_folder(made, tmp_path, tiny_weights, detector_available):
    folder = tmp_path / "clips"
    folder.mkdir()
    ffmpeg("-i", made["short"], "-c", "copy", "-f", "mpegts", folder / "cam.ts")
    r = run("lift", folder, "-o", tmp_path / "out", "--weights", tiny_weights, "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "cam.json").is_file()
