"""The shipped lifter's ONNX export (weights/lifter.onnx, made by tools/ship_lifter_onnx.py):
verified by the manifest, an export of exactly the shipped lifter.pt, the same numbers, and the
default `posecli lift` route runs it without importing torch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posecli import weights

pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[2]


def test_export_is_of_the_shipped_checkpoint_and_verified():
    import onnxruntime as ort

    manifest = weights.load_manifest()
    path = weights.verified("lifter.onnx")                       # sha256 of the manifest
    pt = weights.find(weights.LIFTER)
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]
                                ).get_modelmeta().custom_metadata_map
    # stale after a new lifter.pt: rerun tools/ship_lifter_onnx.py
    assert meta["checkpoint_sha256"] == weights.sha256(pt) == manifest[weights.LIFTER]["sha256"]
    assert manifest["lifter.onnx"]["checkpoint_sha256"] == manifest[weights.LIFTER]["sha256"]
    assert json.loads(meta["config"])["frames"] == manifest[weights.LIFTER]["config"]["frames"]


def test_onnx_and_torch_give_the_same_lift():
    from posecli.lifter import load_lifter

    truth = np.load(REPO / "examples" / "walk_07_05.truth.npz")
    from posecli.skeleton import normalize_to_frame
    x = normalize_to_frame(truth["joints2d"], int(truth["width"]), int(truth["height"])).astype(np.float32)
    onnx, torch_ = load_lifter(backend="onnx"), load_lifter(backend="torch")
    assert onnx.info["weights"] == torch_.info["weights"] == weights.LIFTER
    assert onnx.info["sha256"] == torch_.info["sha256"]          # results record the checkpoint
    assert onnx.info["config"] == torch_.info["config"] and onnx.info["backend"] == "onnx"
    np.testing.assert_allclose(onnx(x), torch_(x), atol=1e-4)    # metres


def test_a_stale_export_is_not_used(monkeypatch):
    """An export whose recorded checkpoint is not the manifest's lifter.pt is passed over: the
    checkpoint itself is loaded."""
    from posecli.lifter import runtime

    real = weights.load_manifest()
    fake = {**real, weights.LIFTER: {**real[weights.LIFTER], "sha256": "0" * 64}}
    monkeypatch.setattr(weights, "load_manifest", lambda: fake)
    assert runtime.shipped_onnx() is None


def test_default_lift_does_not_import_torch(tmp_path):
    """`posecli lift clip.mp4` with the shipped lifter (onnxruntime, the default backend) never
    imports torch: start-up is the import of onnxruntime and the TFLite runtime only."""
    from conftest import write_video
    from posecli.video import iter_frames

    frame = next(iter(iter_frames(REPO / "examples" / "walk_07_05.mp4")))
    video = write_video(tmp_path / "one.mp4", [frame], fps=30)
    code = ("import sys; from typer.testing import CliRunner; from posecli.cli import app; "
            f"r = CliRunner().invoke(app, ['lift', {str(video)!r}, '-o', {str(tmp_path / 'out')!r}, '-q']); "
            "assert r.exit_code == 0, r.output; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env={**os.environ, "POSECLI_CACHE": str(tmp_path / "cache")})
    assert out.stdout.split()[-1] == "False"
    doc = json.loads((tmp_path / "out" / "one.json").read_text())
    assert doc["lifter"]["backend"] == "onnx" and doc["lifter"]["weights"] == weights.LIFTER
