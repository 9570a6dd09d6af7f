"""The one lifter runtime: flip test-time augmentation and the stride, for both backends."""
import numpy as np
import pytest
import torch

from posecli.errors import UsageError
from posecli.lifter import LifterConfig, MixSTE, load_lifter, save_checkpoint
from posecli.skeleton import flip_permutation, mirror


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rt") / "tiny.pt"
    save_checkpoint(MixSTE(LifterConfig(frames=27, width=32, depth=2, heads=4)).eval(), path)
    return path


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_flip_tta_makes_the_lifter_exactly_mirror_symmetric(weights, backend, tmp_path, monkeypatch):
    # With flip TTA, lifting a mirrored input gives the mirrored output (to float32 rounding,
    # 1e-5 m); without it an untrained model is far from symmetric, so the test can fail.
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
        monkeypatch.setenv("POSECLI_CACHE", str(tmp_path))
    x = np.random.default_rng(0).normal(0, 0.3, (60, 17, 2)).astype(np.float32)
    perm = flip_permutation()
    on = load_lifter(weights, backend=backend, flip=True)
    np.testing.assert_allclose(on(mirror(x, perm)), mirror(on(x), perm), atol=1e-5)
    off = load_lifter(weights, backend=backend, flip=False)
    assert np.abs(off(mirror(x, perm)) - mirror(off(x), perm)).max() > 1e-3
    assert on.info["flip_test"] and not off.info["flip_test"]


def test_torch_and_onnx_runtimes_agree(weights, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("POSECLI_CACHE", str(tmp_path))
    x = np.random.default_rng(1).normal(0, 0.3, (100, 17, 2)).astype(np.float32)
    a = load_lifter(weights, backend="torch", stride=5)(x)
    b = load_lifter(weights, backend="onnx", stride=5)(x)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_stride_reaches_the_blending_and_is_validated(weights):
    x = np.random.default_rng(2).normal(0, 0.3, (100, 17, 2)).astype(np.float32)
    one, full = load_lifter(weights, stride=1), load_lifter(weights, stride=27)
    assert (one.stride, full.stride, load_lifter(weights).stride) == (1, 27, 13)
    assert np.abs(one(x) - full(x)).max() > 1e-4
    for bad in (0, -3, 28):
        with pytest.raises(UsageError, match="between 1 and"):
            load_lifter(weights, stride=bad)
