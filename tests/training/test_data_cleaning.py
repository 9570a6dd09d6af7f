"""Training data: cleaning of the CMU clips, tumbles, and window making that does not depend on
how many worker processes make the windows (GPU training) or where a run was resumed."""
import numpy as np
import pytest
import torch

from posecli.skeleton import bone_lengths
from posecli.training.augment import tumble
from posecli.training.metrics import knee_flexion_deg
from posecli.training.mocap import DAZ_KNEE_MAP, CmuSampler, MocapClip, raise_daz_hips, straighten_daz_knees
from posecli.training.train import BatchSource, load_split, save_split


def _daz_like(n: int = 40) -> np.ndarray:
    """A standing-then-sitting figure (n, 17, 3), Y up, with Daz proportions (shin/thigh 1.23)."""
    rest = np.array([[0, .9, 0], [-.1, .9, 0], [-.1, .532, 0], [-.1, .078, 0], [.1, .9, 0], [.1, .532, 0],
                     [.1, .078, 0], [0, 1.15, 0], [0, 1.4, 0], [0, 1.55, 0], [0, 1.7, 0], [.18, 1.4, 0],
                     [.2, 1.12, 0], [.2, .85, 0], [-.18, 1.4, 0], [-.2, 1.12, 0], [-.2, .85, 0]], float)
    out = np.repeat(rest[None], n, 0)
    # second half: thighs swing forward (sitting), shins keep hanging down
    a = np.linspace(0, np.pi / 2, n)[n // 2:]
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        thigh = 0.368
        out[n // 2:, knee] = out[n // 2:, hip] + thigh * np.stack([0 * a, -np.cos(a), np.sin(a)], -1)
        out[n // 2:, ankle] = out[n // 2:, knee] + [0, -0.454, 0]
    return out


def test_raising_the_daz_hips_gives_adult_leg_proportions_and_keeps_the_skeleton_rigid():
    w = _daz_like()
    b0 = bone_lengths(w)
    assert np.allclose(b0[:, 2] / b0[:, 1], 0.454 / 0.368, atol=1e-3)   # shin / thigh (bones of joints 3, 2)
    fixed = raise_daz_hips(w)
    b = bone_lengths(fixed)
    assert np.allclose(b[:, 2] / b[:, 1], 1.01, atol=2e-3)
    assert np.ptp(b[:, :6], axis=0).max() < 1e-6                       # leg bones constant over frames
    np.testing.assert_allclose(fixed[0, [2, 3, 5, 6]], w[0, [2, 3, 5, 6]], atol=1e-9)  # standing: knees stay
    np.testing.assert_allclose(fixed[:, 0], (fixed[:, 1] + fixed[:, 4]) / 2)          # pelvis = mid-hips
    assert (fixed[:, [1, 4], 1] > w[:, [1, 4], 1]).all()                                 # hips rose


def _bent_legs(flex_deg: np.ndarray) -> np.ndarray:
    """(n, 17, 3) figures, Y up, whose knees bend by flex_deg (n,) in the sagittal plane."""
    w = np.repeat(_daz_like(2)[:1], len(flex_deg), 0)
    f = np.radians(flex_deg)
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        w[:, ankle] = w[:, knee] + 0.454 * np.stack([0 * f, -np.cos(f), -np.sin(f)], -1)  # foot back
    return w


def test_straightening_the_daz_knees_maps_the_flexion_and_keeps_the_skeleton_rigid():
    flex = np.array([5.0, 11.74, 12.5, 30.0, 60.0, 95.0, 140.0])
    w = _bent_legs(flex)
    assert np.allclose(knee_flexion_deg(w), flex[:, None], atol=1e-6)
    out = straighten_daz_knees(w)
    knots = np.array(DAZ_KNEE_MAP)
    want = np.interp(flex, knots[:, 0], knots[:, 1])
    assert np.allclose(knee_flexion_deg(out), want[:, None], atol=1e-6)
    assert (want[1:] < flex[1:] - 5).all() and want[1] < 1.0                # Daz 11.7 deg = straight
    np.testing.assert_allclose(bone_lengths(out), bone_lengths(w), atol=1e-9)
    # hips and knees stay (the whole figure may shift up or down by the same amount)
    dy = out[0, 0, 1] - w[0, 0, 1]
    np.testing.assert_allclose(out[:, [0, 1, 2, 4, 5]], w[:, [0, 1, 2, 4, 5]] + [0, dy, 0], atol=1e-9)
    # the bend stays in the leg's plane: the ankle stays behind the knee, not sideways
    np.testing.assert_allclose(out[:, [3, 6], 0], w[:, [3, 6], 0], atol=1e-9)
    assert straighten_daz_knees(_bent_legs(np.zeros(3))).shape == (3, 17, 3)  # no bend plane: no NaN
    assert np.isfinite(straighten_daz_knees(_bent_legs(np.zeros(3)))).all()


def test_daz_knee_map_is_the_fit_on_takes_stored_in_two_rigs(shared):
    from posecli.training.mocap import fit_daz_knee_map
    fitted = np.array(fit_daz_knee_map())
    np.testing.assert_allclose(fitted, np.array(DAZ_KNEE_MAP), atol=0.01)
    knots = np.array(DAZ_KNEE_MAP)
    assert (np.diff(knots[:, 0]) > 0).all() and (np.diff(knots[:, 1]) >= 0).all()   # monotone


def test_cleaning_gives_daz_knees_the_other_rigs_flexion(shared):
    """Held-out take 07_05 (not used in the fit): Daz and iClone copies of the same walk."""
    from posecli.training.mocap import load_cmu
    before = [c for c in load_cmu(subjects=("07",), clean=True, daz_knees=False) if c.name == "07_05"]
    after = [c for c in load_cmu(subjects=("07",), clean=True) if c.name == "07_05"]
    med = lambda c: float(np.median(knee_flexion_deg(c.world)))  # noqa: E731
    p5 = lambda c: float(np.percentile(knee_flexion_deg(c.world), 5))  # noqa: E731
    (iclone, daz_b, *_), (iclone_a, daz_a, *_) = before, after   # file order: iClone, Daz, DeepMimic
    assert med(iclone) == med(iclone_a)                             # other rigs untouched
    assert med(daz_b) - med(iclone) > 5 and p5(daz_b) - p5(iclone) > 5
    assert abs(med(daz_a) - med(iclone)) < 2 and abs(p5(daz_a) - p5(iclone)) < 3


def test_clean_cmu_drops_t_pose_frames_and_bad_clips(shared):
    from posecli.training.mocap import load_cmu
    raw = {c.name: c for c in load_cmu(subjects=("60", "02"))}
    clean = {c.name: c for c in load_cmu(subjects=("60", "02"), clean=True)}
    assert "60_06" in raw and "60_06" not in clean and "60_07" not in clean
    # the Daz rig's T-pose and the blended frame after it: a joint jumps 0.7-0.85 m, then 0.3 m
    start = lambda c: np.abs(np.diff(c.world[:4], axis=0)).max()  # noqa: E731
    assert min(start(c) for n, c in raw.items() if n.startswith("60")) > 0.5
    assert max(start(c) for c in clean.values()) < 0.25
    assert len(raw["60_01"].world) - len(clean["60_01"].world) == 2


def test_tumbled_windows_keep_their_bones_and_stand_on_the_floor():
    w = _daz_like()
    out = tumble(np.random.default_rng(0), w, (170.0, 180.0))
    np.testing.assert_allclose(bone_lengths(out), bone_lengths(w), atol=1e-9)
    assert out[..., 1].min() == pytest.approx(0.0)
    assert (out[:, 10, 1] < out[:, 0, 1]).mean() > 0.9            # upside down: head below pelvis


def test_worker_processes_make_the_same_batches_as_the_main_process():
    clips = [MocapClip(_daz_like(60), "a", "a1"), MocapClip(_daz_like(90), "b", "b1")]
    sampler = CmuSampler(clips, 9)
    here, pool = BatchSource(sampler, 3, 4, 0), BatchSource(sampler, 3, 4, 2)
    try:
        for epoch, step in ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1)):
            a, b = here.get(epoch, step, 3), pool.get(epoch, step, 3)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
        assert not np.array_equal(here.get(0, 0, 3)[0], here.get(0, 1, 3)[0])
    finally:
        pool.close()


def test_large_checkpoints_are_split_below_the_limit_and_read_back(tmp_path):
    state = {"w": torch.arange(50_000, dtype=torch.float32), "epoch": 3}
    save_split(state, tmp_path / "last.pt", part_bytes=60_000)
    parts = sorted(tmp_path.glob("last.pt.part*"))
    assert len(parts) >= 3 and all(p.stat().st_size <= 60_000 for p in parts)
    assert not (tmp_path / "last.pt").exists()
    back = load_split(tmp_path / "last.pt")
    assert back["epoch"] == 3 and torch.equal(back["w"], state["w"])
    save_split({"epoch": 4}, tmp_path / "last.pt", part_bytes=60_000)  # small again: one file, no stale parts
    assert load_split(tmp_path / "last.pt")["epoch"] == 4 and not list(tmp_path.glob("last.pt.part*"))
