"""The comparison window strategies: one centred window per frame, and hard-cut windows."""
import numpy as np
import pytest

from posecli.lifter.windows import lift_centred, lift_hardcut, lift_windows, seams


def pointwise(x):  # (B, T, J, 2) -> (B, T, J, 3): each frame on its own
    return np.concatenate([x, x[..., :1] * 2], axis=-1)


def window_mean(x):  # each output frame = the mean over its window: shows which frames a window held
    return np.repeat(x.mean(axis=1, keepdims=True), x.shape[1], axis=1)


@pytest.mark.parametrize("n", [5, 27, 100])
def test_all_strategies_agree_on_a_pointwise_model(n):
    x = np.random.default_rng(0).normal(size=(n, 17, 2))
    ref = pointwise(x[None])[0]
    for out in (lift_windows(pointwise, x, 27, 13), lift_centred(pointwise, x, 27), lift_hardcut(pointwise, x, 27)):
        np.testing.assert_allclose(out, ref, atol=1e-12)


def test_centred_window_is_centred_with_edge_padding():
    n, t = 40, 9
    x = np.arange(n, dtype=float)[:, None, None].repeat(2, axis=2)
    out = lift_centred(window_mean, x, t, batch=7)
    idx = np.clip(np.arange(n)[:, None] + np.arange(-4, 5)[None], 0, n - 1)
    np.testing.assert_allclose(out[:, 0, 0], idx.mean(axis=1))


def test_hardcut_windows_do_not_overlap():
    n, t = 40, 9
    x = np.arange(n, dtype=float)[:, None, None].repeat(2, axis=2)
    out = lift_hardcut(window_mean, x, t)[:, 0, 0]
    assert out[0] == np.mean(np.arange(9)) and out[9] == np.mean(np.arange(9, 18))
    assert out[-1] == np.mean([36, 37, 38, 39, 39, 39, 39, 39, 39])  # tail padded with the last frame
    assert list(seams(n, t, t, "hardcut")) == [9, 18, 27, 36]
    assert len(seams(n, t, 4, "centre")) == 0
    assert list(seams(20, 9, 4, "blend")) == [4, 8, 9, 11, 13, 17]


def test_lifter_strategy_option_is_validated_and_recorded(tiny_weights):
    from posecli.errors import UsageError
    from posecli.lifter import load_lifter
    assert "window_strategy" not in load_lifter(tiny_weights).info
    assert load_lifter(tiny_weights, strategy="hardcut").info["window_strategy"] == "hardcut"
    with pytest.raises(UsageError, match="window strategy"):
        load_lifter(tiny_weights, strategy="sliding")
