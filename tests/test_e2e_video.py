"""posecli lift on a real video with the shipped detector and lifter weights."""
import json

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

from posecli.cli import app
from posecli.export.json import schema
from posecli.skeleton import bone_lengths


@pytest.fixture(scope="module")
def shipped_lifter():
    from posecli.weights import WeightsError, find
    try:
        return find("lifter.pt")
    except WeightsError:
        pytest.skip("no shipped lifter weights (weights/lifter.pt)")


def test_real_video_gives_plausible_3d(shared, shipped_lifter, tmp_path):
    video = shared / "videos" / "mmh3d_single_person_demo.mp4"
    if not video.is_file():
        pytest.skip(f"{video} absent")
    r = CliRunner().invoke(app, ["lift", str(video), "-o", str(tmp_path), "-q"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "mmh3d_single_person_demo.json").read_text())
    jsonschema.validate(doc, schema("result"))
    assert doc["input"]["num_frames"] == 40 and doc["input"]["fps"] == 12
    assert doc["summary"]["detected"] >= 36
    pose = np.array([f["joints_3d"] for f in doc["frames"] if f["joints_3d"] is not None])
    assert np.isfinite(pose).all()
    bones = bone_lengths(pose)                    # (N, 16) metres
    median = np.median(bones, axis=0)
    # a real skeleton: bones keep their length from frame to frame (within 10 %) ...
    assert (np.abs(bones / median - 1) < 0.10).all()
    # ... and have human size: thigh + shin 0.6-1.1 m, shoulder width 0.2-0.5 m
    leg = median[1] + median[2]
    assert 0.6 < leg < 1.1, leg
    shoulders = np.linalg.norm(pose[:, 11] - pose[:, 14], axis=-1).mean()
    assert 0.2 < shoulders < 0.5, shoulders
