"""The MixSTE lifter: shapes, size of the paper configuration, flip symmetry, windows, seams."""
from pathlib import Path

import numpy as np
import pytest
import torch

from posecli.lifter import PAPER_CONFIG, LifterConfig, MixSTE, count_parameters, from_model, torch_forward
from posecli.lifter.windows import lift_windows, window_starts
from posecli.skeleton import flip_permutation, mirror

SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "lifter.pt"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cmu_07_05_walk.keypoints.json"


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return MixSTE(LifterConfig(frames=243, width=32, depth=1, heads=4)).eval()


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED.is_file():
        pytest.skip("weights/lifter.pt not present")
    from posecli.lifter import load_model
    return load_model(SHIPPED)[0]


@pytest.mark.parametrize("t", [1, 27, 81, 243])
@pytest.mark.parametrize("b", [1, 3])
def test_output_shapes(small, t, b):
    with torch.inference_mode():
        y = small(torch.randn(b, t, 17, 2))
    assert y.shape == (b, t, 17, 3) and torch.isfinite(y).all()


def test_window_longer_than_the_model_is_refused(small):
    with pytest.raises(ValueError):
        small(torch.randn(1, 244, 17, 2))


def test_paper_configuration_has_33_7_million_parameters():
    n = count_parameters(MixSTE(PAPER_CONFIG))
    assert abs(n - 33.7e6) / 33.7e6 < 0.01, n


def _example_2d(frames: int | None = None) -> np.ndarray:
    from posecli.keypoints import read_keypoints
    from posecli.skeleton import normalize_to_frame
    k = read_keypoints(EXAMPLE)
    x = normalize_to_frame(k.xy, k.width, k.height)
    return x if frames is None else x[:frames]


def test_trained_lifter_is_nearly_mirror_symmetric_without_tta(shipped):
    # Without TTA symmetry is learned, not built in. Measured mean disagreement between the
    # mirrored prediction and the prediction of the mirrored input: 12.6 mm (v1), 20.3 mm (v2,
    # whose no-TTA error is nevertheless 16 mm lower). A wrong left/right table gives 144 mm
    # (v2, mirroring x without swapping the sides); bound at 30 mm.
    x = _example_2d(shipped.cfg.frames)[None]
    perm = flip_permutation()
    forward = torch_forward(shipped)
    a = forward(mirror(x, perm))
    b = mirror(forward(x), perm)
    assert np.linalg.norm(a - b, axis=-1).mean() < 0.030


def test_one_window_equals_a_single_pass(small):
    x = np.random.default_rng(1).normal(0, 0.3, (81, 17, 2)).astype(np.float32)
    model = MixSTE(LifterConfig(frames=81, width=32, depth=1, heads=4)).eval()
    model.load_state_dict({k: (v[:, :81] if k == "temporal_pos" else v) for k, v in small.state_dict().items()})
    lifter = from_model(model)
    one = lifter.windows(x[None])[0]
    np.testing.assert_allclose(lifter(x), one, atol=1e-6)
    np.testing.assert_allclose(lift_windows(lifter.windows, x, 81), one, atol=1e-6)


def _acceleration(y: np.ndarray) -> np.ndarray:
    """(N, J, 3) -> (N-2,) mean joint acceleration magnitude at frames 1..N-2."""
    return np.linalg.norm(y[2:] - 2 * y[1:-1] + y[:-2], axis=-1).mean(-1)


def test_blended_windows_leave_no_seam(shipped, shared):
    # On the longest clip of held-out CMU subject 13 (13_10, 600 frames, not used in training),
    # seen by a fixed virtual camera, the joint acceleration at the frames where windows begin
    # or end is no larger than elsewhere (within 20 %).
    from posecli.training.mocap import cmu_eval_sequences, load_cmu
    clip = max(load_cmu(subjects=("13",)), key=lambda c: len(c.world))
    x = cmu_eval_sequences([clip], 1, seed=0)[0].x
    t = shipped.cfg.frames
    stride = t // 2
    y = from_model(shipped, stride=stride)(x)
    acc = _acceleration(y)
    joins = set()
    for s in window_starts(len(x), t, stride):
        joins |= {s, s + t - 1}
    idx = np.array(sorted(j - 1 for j in joins if 1 <= j <= len(x) - 2))   # acc index of frame j
    mask = np.zeros(len(acc), bool)
    mask[idx] = True
    assert mask.any() and (~mask).any()
    assert acc[mask].mean() <= 1.2 * acc[~mask].mean(), (acc[mask].mean(), acc[~mask].mean())
