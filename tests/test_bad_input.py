"""Bad input never becomes wrong output: one `error:` line, or a result with gaps where data was bad."""
import json
import os
import shutil

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO
from posecli.cli import app
from posecli.export.json import schema

EXAMPLE_KP = REPO / "examples" / "cmu_07_05_walk.keypoints.json"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *words):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    errors = [l for l in lines if l.startswith("error:")]
    # one line of ours: no traceback, no usage box
    assert len(errors) == 1 and "Traceback" not in result.output and "╭" not in result.output, result.output
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def keypoint_file(tmp_path, edit, name="kp.json"):
    doc = json.loads(EXAMPLE_KP.read_text())
    edit(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))  # Python writes NaN / Infinity tokens, as a careless tool would
    return path


def lifted(tmp_path, src, weights, *extra):
    out = tmp_path / "out"
    r = run("lift", src, "-o", out, "--weights", weights, "-q", *extra)
    assert r.exit_code == 0, r.output
    text = (out / (src.stem + ".json")).read_text()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    jsonschema.validate(doc, schema("result"))
    return doc


# ---- keypoint files with NaN, null or huge coordinates -----------------------------------------

def test_one_nan_joint_is_a_gap_not_a_poison(tmp_path, tiny_weights):
    def edit(doc):
        doc["frames"][50]["keypoints_2d"][13][0] = float("nan")
    doc = lifted(tmp_path, keypoint_file(tmp_path, edit), tiny_weights)
    assert doc["summary"]["detected"] == 129
    assert doc["frames"][50]["confidence"][13] == 0            # filled like any gap
    pose = np.array([f["joints_3d"] for f in doc["frames"]])
    assert np.isfinite(pose).all()


@pytest.mark.parametrize("bad", [None, 1e300, float("inf")])
def test_null_or_huge_joint(tmp_path, tiny_weights, bad):
    def edit(doc):
        doc["frames"][7]["keypoints_2d"][3] = None if bad is None else [bad, 100.0]
    doc = lifted(tmp_path, keypoint_file(tmp_path, edit), tiny_weights)
    k = np.array(doc["frames"][7]["keypoints_2d"])
    assert np.isfinite(k).all() and np.abs(k).max() < 2000 and doc["frames"][7]["confidence"][3] == 0


def test_frame_without_a_finite_joint_is_a_gap(tmp_path, tiny_weights):
    def edit(doc):
        for f in doc["frames"][20:23]:
            f["keypoints_2d"] = [[float("nan")] * 2] * 17
    doc = lifted(tmp_path, keypoint_file(tmp_path, edit), tiny_weights)
    assert [f["flag"] for f in doc["frames"][20:23]] == ["interpolated"] * 3


def test_all_nan_is_no_person(tmp_path, tiny_weights):
    def edit(doc):
        for f in doc["frames"]:
            f["keypoints_2d"] = [[float("nan")] * 2] * 17
    src = keypoint_file(tmp_path, edit)
    one_line_error(run("lift", src, "-o", tmp_path / "out", "--weights", tiny_weights), "no person", str(src))
    assert not (tmp_path / "out" / "kp.json").exists()


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["frames"].__setitem__(5, None), ["frame 5"]),
    (lambda d: d.__setitem__("frames", {"0": d["frames"][0]}), ["frames"]),
    (lambda d: d["skeleton"].__setitem__("layout", "blazepose33"), ["blazepose33", "17"]),
    (lambda d: d["frames"][9].__setitem__("keypoints_2d", [[1, 2]] * 16), ["frame 9"]),
    (lambda d: d["input"].__setitem__("fps", -1), ["fps"]),
])
def test_malformed_keypoint_files(tmp_path, tiny_weights, edit, words):
    src = keypoint_file(tmp_path, edit)
    one_line_error(run("lift", src, "-o", tmp_path / "out", "--weights", tiny_weights), str(src), *words)


# ---- options checked up front ------------------------------------------------------------------

@pytest.mark.parametrize("opts, words", [
    (["--threads", "0"], ["--threads"]),
    (["--stride", "0"], ["--stride"]),
    (["--stride", "1000"], ["--stride", "27"]),
    (["--format", ""], ["--format"]),
])
def test_bad_options(tmp_path, tiny_weights, opts, words):
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, *opts), *words)


# ---- outputs never overwrite inputs or each other ---------------------------------------------

def test_result_lifted_into_its_own_folder_is_refused(tmp_path, tiny_weights):
    src = tmp_path / "clip.json"
    shutil.copy(EXAMPLE_KP, src)
    before = src.read_bytes()
    one_line_error(run("lift", src, "-o", tmp_path, "--weights", tiny_weights), "overwrite")
    assert src.read_bytes() == before


def test_colliding_stems_are_refused_before_any_work(tmp_path, tiny_weights):
    # clip.json and clip.mp4 would both write clip.json: one line naming both, nothing written
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(EXAMPLE_KP, clips / "clip.json")
    shutil.copy(EXAMPLE_KP, clips / "other.json")
    shutil.copy(REPO / "examples" / "walk_07_05.mp4", clips / "clip.mp4")
    one_line_error(run("lift", clips, "-o", tmp_path / "out", "--weights", tiny_weights, "-q"),
                   "clip.json", "clip.mp4", "same outputs")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_outputs_respect_the_umask(tmp_path, tiny_weights):
    old = os.umask(0o022)
    try:
        assert run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "-q").exit_code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "cmu_07_05_walk.keypoints.json").stat().st_mode & 0o777 == 0o644


def test_unexpected_error_in_a_batch_is_one_line_and_the_batch_goes_on(tmp_path, tiny_weights, monkeypatch):
    from posecli import pipeline
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a.json", "b.json", "c.json"):
        shutil.copy(EXAMPLE_KP, clips / name)
    real = pipeline.lift_keypoints

    def flaky(*a, source="", **kw):
        if source.endswith("b.json"):
            raise ZeroDivisionError("boom")
        return real(*a, source=source, **kw)
    monkeypatch.setattr(pipeline, "lift_keypoints", flaky)
    r = run("lift", clips, "-o", tmp_path / "out", "--weights", tiny_weights, "-q")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert any(l.startswith("error:") and "b.json" in l and "boom" in l for l in r.output.splitlines())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.json", "c.json"]


def test_interrupt_is_one_line(tmp_path, tiny_weights, monkeypatch):
    from posecli import pipeline

    def interrupted(*a, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(pipeline, "lift_keypoints", interrupted)
    r = run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "-q")
    assert r.exit_code == 130 and "Traceback" not in r.output
    lines = [l for l in r.output.splitlines() if l.startswith("interrupted:")]
    assert len(lines) == 1 and "0 done" in lines[0] and "1 not finished" in lines[0], r.output
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob(".*tmp"))


def test_full_disk_names_the_file(tmp_path, tiny_weights, monkeypatch):
    import errno
    import pathlib
    real = pathlib.Path.open

    def full(self, mode="r", *a, **kw):
        if self.name.endswith(".tmp") and "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, mode, *a, **kw)
    monkeypatch.setattr(pathlib.Path, "open", full)
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path / "o", "--weights", tiny_weights),
                   "No space left on device", "cmu_07_05_walk.keypoints.json")
    assert not list((tmp_path / "o").iterdir())


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
@pytest.mark.parametrize("name", ["clip.mp4", "clip.json"])
def test_unreadable_input_is_one_line(tmp_path, tiny_weights, name):
    src = tmp_path / name
    shutil.copy(REPO / "examples" / "walk_07_05.mp4" if name.endswith(".mp4") else EXAMPLE_KP, src)
    src.chmod(0)
    one_line_error(run("lift", src, "-o", tmp_path / "o", "--weights", tiny_weights), name)


# ---- weights -----------------------------------------------------------------------------------

def test_flipped_byte_in_unlisted_weights_is_refused(tmp_path, tiny_weights):
    data = bytearray(tiny_weights.read_bytes())
    data[len(data) // 2] ^= 0xFF            # inside the tensor data, under a name no manifest lists
    bad = tmp_path / "flip.pt"
    bad.write_bytes(bytes(data))
    one_line_error(run("lift", EXAMPLE_KP, "-o", tmp_path / "o", "--weights", bad), "flip.pt", "corrupt")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_random_file_as_weights_is_one_line_of_ours(tmp_path):
    bad = tmp_path / "random.pt"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    r = run("lift", EXAMPLE_KP, "-o", tmp_path / "o", "--weights", bad)
    one_line_error(r, "random.pt", "not a posecli lifter checkpoint")
    assert "weights_only" not in r.output and "arbitrary code" not in r.output
