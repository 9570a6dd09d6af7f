"""`posecli lift --format json,bvh,mp4` and `posecli export`: the world placement in the JSON,
conversion of an existing result, and the moved-video error."""
from __future__ import annotations

import json

import jsonschema
import numpy as np
from typer.testing import CliRunner

from conftest import REPO
from posecli.cli import app
from posecli.export import bvh
from posecli.export.json import schema
from posecli.keypoints import read_result
from test_export_bvh import fk_from_file

EXAMPLE_KP = REPO / "examples" / "cmu_07_05_walk.keypoints.json"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_lift_writes_three_formats_and_world_block(tmp_path, tiny_weights):
    r = run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "-q", "-f", "json,bvh,mp4")
    assert r.exit_code == 0, r.output
    stem = "cmu_07_05_walk.keypoints"
    for suffix in (".json", ".bvh", ".mp4"):
        assert (tmp_path / (stem + suffix)).stat().st_size > 0
    text = (tmp_path / (stem + ".json")).read_text()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    jsonschema.validate(doc, schema("result"))
    assert doc["world"]["estimated"] is True and doc["world"]["root_motion"] is True
    pelvis = np.array([f["pelvis_world"] for f in doc["frames"]])
    assert pelvis.shape == (len(doc["frames"]), 3) and np.isfinite(pelvis).all()  # untrained lifter: no size check
    assert all(len(f["foot_contact"]) == 2 for f in doc["frames"])
    # the JSON's world joints (rebuilt from it) are what the BVH reproduces
    res = read_result(tmp_path / (stem + ".json"))
    _, pos, _ = fk_from_file(tmp_path / (stem + ".bvh"))
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    assert np.abs(pos[:, idx] - res.trajectory.world).max() < 1e-3


def test_no_root_motion_and_focal(tmp_path, tiny_weights):
    r = run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "-q", "--no-root-motion",
            "--focal", "800")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "cmu_07_05_walk.keypoints.json").read_text())
    assert doc["world"]["root_motion"] is False and doc["world"]["focal_px"] == 800
    pelvis = np.array([f["pelvis_world"] for f in doc["frames"]])
    assert np.ptp(pelvis, axis=0).max() < 1e-9


def test_export_converts_an_existing_result(tmp_path, tiny_weights):
    assert run("lift", EXAMPLE_KP, "-o", tmp_path, "--weights", tiny_weights, "-q").exit_code == 0
    src = tmp_path / "cmu_07_05_walk.keypoints.json"
    r = run("export", src, "-f", "bvh,mp4", "-o", tmp_path / "out", "--bvh-scale", "100")
    assert r.exit_code == 0, r.output
    names, pos, _ = fk_from_file(tmp_path / "out" / "cmu_07_05_walk.keypoints.bvh")
    res = read_result(src)
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    assert np.abs(pos[:, idx] / 100 - res.trajectory.world).max() < 1e-3
    assert (tmp_path / "out" / "cmu_07_05_walk.keypoints.mp4").stat().st_size > 0
    # Mixamo's names and a fixed rate; a bad name set is one line
    r = run("export", src, "-f", "bvh", "-o", tmp_path / "mx", "--bvh-names", "mixamo", "--fps", "24")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "mx" / "cmu_07_05_walk.keypoints.bvh").read_text()
    assert "ROOT mixamorig:Hips" in text and "JOINT mixamorig:LeftToeBase" in text
    assert "Frame Time: 0.041666" in text
    r = run("export", src, "-f", "bvh", "-o", tmp_path / "mx", "--bvh-names", "maya")
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].startswith("error: --bvh-names")


def test_no_foot_lock_keeps_the_raw_motion(tmp_path, tiny_weights):
    for flag, sub in (("--foot-lock", "on"), ("--no-foot-lock", "off")):
        assert run("lift", EXAMPLE_KP, "-o", tmp_path / sub, "--weights", tiny_weights, "-q", flag).exit_code == 0
    on, off = (read_result(tmp_path / s / "cmu_07_05_walk.keypoints.json") for s in ("on", "off"))
    assert json.loads((tmp_path / "off" / "cmu_07_05_walk.keypoints.json").read_text())[
        "provenance"]["settings"]["foot_lock"] is False
    slide = []
    for res in (on, off):
        step = np.linalg.norm(np.diff(res.trajectory.world[:, [3, 6]][..., [0, 2]], axis=0), axis=-1)
        held = res.trajectory.contacts[1:] & res.trajectory.contacts[:-1]
        slide.append(step[held].mean())
    assert slide[0] < slide[1]


def test_export_moved_video_is_one_line_error(tmp_path):
    doc = {"format": "posecli-result/1", "input": {"path": str(tmp_path / "gone.mp4"), "kind": "video",
           "fps": 25.0, "width": 64, "height": 64, "num_frames": 1},
           "frames": [{"index": 0, "time": 0, "flag": "detected", "keypoints_2d": [[1, 1]] * 17,
                       "confidence": [1] * 17, "joints_3d": [[0, 0, 0]] * 17}]}
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    r = run("export", p, "-f", "mp4")
    assert r.exit_code == 1
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error:") and "--video" in last and "gone.mp4" in last
