import numpy as np
import pytest

from posecli.lifter.windows import lift_windows, pad_to, taper, window_starts


@pytest.mark.parametrize("n,frames,stride", [(1, 27, 13), (27, 27, 13), (100, 27, 13), (243, 81, 40),
                                             (500, 81, 81), (82, 81, 1)])
def test_windows_cover_every_frame(n, frames, stride):
    starts = window_starts(max(n, frames), frames, stride)
    covered = np.zeros(max(n, frames), bool)
    for s in starts:
        covered[s:s + frames] = True
    assert covered.all() and starts[-1] + frames == max(n, frames)
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


def test_taper_is_positive_and_symmetric():
    w = taper(81, 40)
    assert (w > 0).all() and np.allclose(w, w[::-1]) and w.max() == 1


@pytest.mark.parametrize("n", [5, 27, 64, 300])
def test_a_frame_wise_function_is_reproduced_exactly(n):
    # When every window agrees on every frame, blending must give back exactly that value.
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 17, 2))
    fn = lambda w: np.concatenate([w, w[..., :1] ** 2], axis=-1)  # (B,T,J,2)->(B,T,J,3)
    y = lift_windows(fn, x, frames=27)
    np.testing.assert_allclose(y, fn(x[None])[0], atol=1e-12)


def test_single_window_equals_single_pass():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(27, 17, 2))
    fn = lambda w: np.cumsum(np.concatenate([w, w[..., :1]], -1), axis=1)  # depends on context
    np.testing.assert_allclose(lift_windows(fn, x, 27), fn(x[None])[0])


def test_short_sequences_are_padded_and_cropped_back():
    x = np.arange(5.0)[:, None, None] * np.ones((5, 17, 2))
    xp, off = pad_to(x, 27)
    assert len(xp) == 27 and (xp[off:off + 5] == x).all()
    assert (xp[:off] == x[0]).all() and (xp[off + 5:] == x[-1]).all()


def test_empty_input_is_refused():
    with pytest.raises(ValueError):
        lift_windows(lambda w: w, np.zeros((0, 17, 2)), 27)
