"""ONNX export and the onnxruntime path: parity with torch within 1e-4 m."""
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from posecli.lifter import LifterConfig, MixSTE, load_model, save_checkpoint, torch_forward  # noqa: E402
from posecli.lifter.onnx import OnnxSession, cached_session, export_model, export_onnx, parity  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "lifter.pt"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = MixSTE(LifterConfig(frames=27, width=32, depth=2, heads=4)).eval()
    d = tmp_path_factory.mktemp("onnx")
    save_checkpoint(model, d / "tiny.pt")
    return model, d


def test_parity_on_random_inputs_of_several_lengths(tiny):
    model, d = tiny
    runner = OnnxSession(export_model(model, d / "tiny.onnx"))
    assert parity(model, runner, lengths=(1, 5, 13, 27)) < 1e-4
    x = np.random.default_rng(2).normal(0, 0.3, (5, 27, 17, 2)).astype(np.float32)
    np.testing.assert_allclose(runner(x), torch_forward(model)(x), atol=1e-4)


def test_from_checkpoint_exports_once_and_reuses_the_cache(tiny, tmp_path):
    model, d = tiny
    digest = load_model(d / "tiny.pt")[1]["sha256"]
    a = cached_session(model, d / "tiny.pt", digest, cache=tmp_path)
    files = list(tmp_path.glob("*.onnx"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime
    b = cached_session(model, d / "tiny.pt", digest, cache=tmp_path)
    assert files[0].stat().st_mtime == mtime
    x = np.random.default_rng(3).normal(0, 0.3, (1, 9, 17, 2)).astype(np.float32)
    np.testing.assert_allclose(a(x), b(x))


def test_export_command_function(tiny, tmp_path, capsys):
    _, d = tiny
    out = export_onnx(d / "tiny.pt", tmp_path / "l.onnx")
    assert out.is_file() and "max |torch - onnxruntime|" in capsys.readouterr().out


def test_shipped_weights_parity(tmp_path):
    if not SHIPPED.is_file():
        pytest.skip("weights/lifter.pt not present")
    model, _ = load_model(SHIPPED)
    runner = OnnxSession(export_model(model, tmp_path / "lifter.onnx"))
    assert parity(model, runner, lengths=(1, 27, 43)) < 1e-4
