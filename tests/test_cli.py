"""End-to-end tests of the command line, through Typer's CliRunner."""
import json
import os
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO, write_video
from posecli.cli import app
from posecli.export.json import schema

EXAMPLE_KP = REPO / "examples" / "cmu_07_05_walk.keypoints.json"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *words):
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    text = lines[-1]  # progress bars may come before it
    assert text.startswith("error:") and sum(l.startswith("error:") for l in lines) == 1, result.output
    assert "Traceback" not in result.output
    for w in words:
        assert w in text, text


def test_keypoint_file_gives_schema_valid_json(tmp_path, tiny_weights):
    r = run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "-q")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "cmu_07_05_walk.keypoints.json").read_text())
    jsonschema.validate(doc, schema("result"))
    n = len(json.loads(EXAMPLE_KP.read_text())["frames"])
    assert doc["input"]["num_frames"] == n == len(doc["frames"])
    assert doc["summary"] == {"detected": n, "interpolated": 0, "missing": 0}
    pose = np.array([f["joints_3d"] for f in doc["frames"]])
    assert np.isfinite(pose).all() and np.allclose(pose[:, 0], 0)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_example_keypoint_file_matches_its_schema():
    jsonschema.validate(json.loads(EXAMPLE_KP.read_text()), schema("keypoints"))


def test_result_can_be_lifted_again(tmp_path, tiny_weights):
    assert run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "-q").exit_code == 0
    first = tmp_path / "cmu_07_05_walk.keypoints.json"
    again = tmp_path / "again"
    r = run("lift", first, "-o", again, "--weights", tiny_weights, "-q")
    assert r.exit_code == 0, r.output
    a = json.loads(first.read_text())["frames"]
    b = json.loads((again / first.name).read_text())["frames"]
    np.testing.assert_allclose([f["joints_3d"] for f in a], [f["joints_3d"] for f in b], atol=1e-4)


def test_gaps_are_flagged(tmp_path, tiny_weights):
    doc = json.loads(EXAMPLE_KP.read_text())
    for f in doc["frames"][10:13]:
        f["keypoints_2d"] = None          # 0.1 s: interpolated
    for f in doc["frames"][40:80]:
        f["keypoints_2d"] = None          # 1.3 s: missing
    src = tmp_path / "gappy.json"
    src.write_text(json.dumps(doc))
    r = run("lift", src, "-o", tmp_path / "o", "--weights", tiny_weights, "-q")
    assert r.exit_code == 0, r.output
    out = json.loads((tmp_path / "o" / "gappy.json").read_text())
    jsonschema.validate(out, schema("result"))
    assert out["summary"] == {"detected": len(doc["frames"]) - 43, "interpolated": 3, "missing": 40}
    assert out["frames"][11]["flag"] == "interpolated" and out["frames"][11]["joints_3d"] is not None
    assert out["frames"][50]["flag"] == "missing" and out["frames"][50]["joints_3d"] is None


# ---- errors: one clear line, non-zero exit, nothing half-written -------------------------------

def test_missing_file(tmp_path, tiny_weights):
    one_line_error(run("lift", tmp_path / "nope.mp4", "-o", tmp_path, "--weights", tiny_weights), "no such file")


def test_not_a_video(tmp_path, tiny_weights):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    out = tmp_path / "out"
    one_line_error(run("lift", bad, "-o", out, "--weights", tiny_weights), "not a readable video")
    assert not any(out.iterdir())


def test_zero_frames(tmp_path, tiny_weights):
    doc = json.loads(EXAMPLE_KP.read_text())
    doc["frames"] = []
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(doc))
    one_line_error(run("lift", empty, "-o", tmp_path / "o", "--weights", tiny_weights), "zero frames")


def test_zero_frame_video(tmp_path, tiny_weights):
    import subprocess
    import imageio_ffmpeg
    empty = tmp_path / "empty.mp4"  # a valid container holding only silence, no video frame
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=8000:cl=mono", "-t", "0.2", str(empty)], check=True)
    one_line_error(run("lift", empty, "-o", tmp_path / "o", "--weights", tiny_weights), "empty.mp4")


def test_no_person_anywhere(tmp_path, tiny_weights):
    pytest.importorskip("posecli.detect2d.blazepose")
    video = write_video(tmp_path / "blank.mp4", [np.full((240, 320, 3), 128, np.uint8)] * 8)
    out = tmp_path / "out"
    one_line_error(run("lift", video, "-o", out, "--weights", tiny_weights), "no person")
    assert not any(out.iterdir())


def test_unwritable_output(tmp_path, tiny_weights):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a directory cannot be made below a file, even by root
    one_line_error(run("lift", EXAMPLE_KP, "-o", blocker / "out", "--weights", tiny_weights),
                   "cannot write to output directory")


def test_corrupt_weights_are_refused(tmp_path):
    from posecli.weights import find
    try:
        shipped = find("lifter.pt")
    except Exception:
        pytest.skip("no shipped lifter weights")
    bad = tmp_path / "lifter.pt"  # same name: checked against the manifest's sha256
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path / "o", "--weights", bad), "checksum mismatch")


def test_truncated_weights_are_refused(tmp_path, tiny_weights):
    bad = tmp_path / "mine.pt"
    bad.write_bytes(tiny_weights.read_bytes()[:1000])
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path / "o", "--weights", bad), "not a posecli lifter checkpoint")


def test_unknown_format(tmp_path, tiny_weights):
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path, "-f", "fbx", "--weights", tiny_weights), "fbx")


def test_batch_keeps_finished_clips_when_one_fails(tmp_path, tiny_weights):
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a_good.json").write_text(EXAMPLE_KP.read_text())
    (clips / "b_bad.mp4").write_text("garbage")
    (clips / "c_good.json").write_text(EXAMPLE_KP.read_text())
    out = tmp_path / "out"
    r = run("lift", clips, "-o", out, "--weights", tiny_weights, "-q")
    assert r.exit_code == 1
    assert "1 of 3 inputs failed: b_bad.mp4" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["a_good.json", "c_good.json"]


def test_info_lists_versions_and_weights():
    r = run("info")
    assert r.exit_code == 0, r.output
    assert "torch" in r.output and "model files" in r.output


def test_corrupted_and_truncated_video_still_give_valid_json(tmp_path, tiny_weights):
    pytest.importorskip("posecli.detect2d.blazepose")
    data = bytearray((REPO / "examples" / "walk_07_05.mp4").read_bytes())
    rng = np.random.default_rng(0)
    for off in range(len(data) // 3, len(data) // 3 + 4000, 500):  # damage a run of frames
        data[off:off + 50] = rng.integers(0, 256, 50, dtype=np.uint8).tobytes()
    (tmp_path / "damaged.mp4").write_bytes(bytes(data))
    (tmp_path / "truncated.mp4").write_bytes(bytes(data[:len(data) // 2]))
    for name in ("damaged", "truncated"):
        r = run("lift", tmp_path / f"{name}.mp4", "-o", tmp_path / "out", "--weights", tiny_weights, "-q")
        assert r.exit_code == 0, r.output
        doc = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        jsonschema.validate(doc, schema("result"))
        assert doc["input"]["num_frames"] > 20


@pytest.mark.parametrize("route", ["keypoints-torch", "keypoints-onnx", "video-torch"])
def test_lift_never_imports_training_code(tmp_path, tiny_weights, route):
    import subprocess
    import sys
    kind, backend = route.split("-")
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    if kind == "video":
        pytest.importorskip("posecli.detect2d.blazepose")
    src = EXAMPLE_KP if kind == "keypoints" else REPO / "examples" / "walk_07_05.mp4"
    code = ("import sys; from typer.testing import CliRunner; from posecli.cli import app; "
            f"r = CliRunner().invoke(app, ['lift', {str(src)!r}, '-o', {str(tmp_path)!r}, "
            f"'--weights', {str(tiny_weights)!r}, '--backend', {backend!r}, '-q']); "
            "assert r.exit_code == 0, r.output; "
            "print(' '.join(m for m in sys.modules if m.startswith('posecli')))")
    env = {**os.environ, "POSECLI_CACHE": str(tmp_path / "cache")}
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env=env).stdout.split()
    assert "posecli.lifter.runtime" in loaded
    assert (backend == "onnx") == ("posecli.lifter.onnx" in loaded)
    assert not [m for m in loaded if m.startswith("posecli.training")], loaded


def test_stride_changes_the_output_and_is_recorded(tmp_path, tiny_weights):
    # The example keypoint file is longer than the tiny lifter's 27-frame window, so stride 1
    # (every start) and stride 27 (abutting windows) blend different windows.
    docs = {}
    for stride in (1, 27):
        out = tmp_path / f"s{stride}"
        r = run("lift", EXAMPLE_KP, "-o", out, "--weights", tiny_weights, "--stride", stride, "-q")
        assert r.exit_code == 0, r.output
        docs[stride] = json.loads((out / EXAMPLE_KP.with_suffix(".json").name).read_text())
        assert docs[stride]["lifter"]["stride"] == stride and docs[stride]["lifter"]["window"] == 27
    a = np.array([f["joints_3d"] for f in docs[1]["frames"] if f["joints_3d"]])
    b = np.array([f["joints_3d"] for f in docs[27]["frames"] if f["joints_3d"]])
    assert len(a) > 27 and np.abs(a - b).max() > 1e-4


@pytest.mark.parametrize("stride", [0, 28])
def test_stride_outside_the_window_is_a_one_line_error(tmp_path, tiny_weights, stride):
    r = run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "--stride", stride, "-q")
    assert r.exit_code == 1
    assert r.output.strip().count("\n") == 0 and "between 1 and" in r.output
    assert not list(tmp_path.glob("*.json"))


def test_joints_outside_the_picture_are_marked(tmp_path, tiny_weights):
    # a hand-made keypoint file whose left wrist leaves the frame on frames 10-19
    doc = json.loads(EXAMPLE_KP.read_text())
    w = doc["input"]["width"]
    for f in doc["frames"][10:20]:
        f["keypoints_2d"][13] = [w + 40.0, f["keypoints_2d"][13][1]]
    src = tmp_path / "cut.json"
    src.write_text(json.dumps(doc))
    r = run("lift", src, "-o", tmp_path / "out", "--weights", tiny_weights, "-q")
    assert r.exit_code == 0, r.output
    out = json.loads((tmp_path / "out" / "cut.json").read_text())
    jsonschema.validate(out, schema("result"))
    marked = [i for i, f in enumerate(out["frames"]) if 13 in f.get("outside", [])]
    assert marked == list(range(10, 20))
    assert all("outside" not in f for i, f in enumerate(out["frames"]) if not 10 <= i < 20)


def test_lift_help_reads_plainly():
    """Usage `posecli lift [OPTIONS] INPUTS...`, options in panels, no type noise."""
    r = CliRunner().invoke(app, ["lift", "--help"], prog_name="posecli", env={"COLUMNS": "120"})
    assert r.exit_code == 0
    assert "posecli lift [OPTIONS] INPUTS..." in r.output
    for panel in ("Input", "Detection", "Lifting", "Output", "Batches and cluster"):
        assert f"─ {panel} ─" in r.output, panel
    assert "<bool>" not in r.output and "<list[str]>" not in r.output and "{inputs}" not in r.output
