"""Training: loss terms, data samplers, overfitting a tiny model, checkpoint/resume round trip."""
import json

import numpy as np
import pytest
import torch

from posecli.lifter import LifterConfig, MixSTE, load_model
from posecli.skeleton import H36M17 as H36M
from posecli.skeleton import PARENTS, bone_lengths
from posecli.training.augment import CmuAug, corrupt_2d, resample, scale_bones
from posecli.training.cameras import CameraAug, look_at, project, random_camera, view
from posecli.training.losses import joint_weights, mixste_loss, mpjve, temporal_consistency, weighted_mpjpe
from posecli.training.mocap import CmuSampler, MocapClip, cmu_window


def test_joint_weights_follow_the_paper():
    w = joint_weights(H36M.names)
    assert w.tolist() == [1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4]


def test_loss_terms_on_tiny_tensors():
    gt = torch.zeros(1, 2, 2, 3)
    pred = torch.zeros(1, 2, 2, 3)
    pred[0, 1, 1] = torch.tensor([3.0, 4.0, 0.0])        # one joint of one frame off by 5
    w = torch.tensor([1.0, 2.0])
    # weighted MPJPE: (2 * 5) / 4 entries
    assert weighted_mpjpe(pred, gt, w).item() == pytest.approx(2.5)
    # temporal consistency: one difference of squared norm 25, weight 2, over 1x1x2 entries
    assert temporal_consistency(pred, w).item() == pytest.approx(25.0)
    # MPJVE: velocity error 5 on one joint of the single difference, mean over 2 joints
    assert mpjve(pred, gt).item() == pytest.approx(2.5)
    total, parts = mixste_loss(pred, gt, w)
    assert total.item() == pytest.approx(2.5 + 0.5 * 25 + 2.0 * 2.5)
    assert set(parts) == {"wmpjpe", "tc", "mpjve"}
    assert temporal_consistency(pred[:, :1], w).item() == 0.0


def _walker(n: int = 120) -> np.ndarray:
    """A synthetic person (n, 17, 3), Y up, walking along +x with swinging limbs."""
    rest = np.array([[0, .9, 0], [0, .9, -.1], [0, .5, -.1], [0, .08, -.1], [0, .9, .1], [0, .5, .1],
                     [0, .08, .1], [0, 1.15, 0], [0, 1.4, 0], [0, 1.55, 0], [0, 1.7, 0], [0, 1.4, .18],
                     [0, 1.12, .2], [0, .85, .2], [0, 1.4, -.18], [0, 1.12, -.2], [0, .85, -.2]], float)
    t = np.arange(n)[:, None]
    out = np.repeat(rest[None], n, 0)
    swing = 0.25 * np.sin(2 * np.pi * t / 30)
    for j, s in ((2, 1), (3, 1.5), (5, -1), (6, -1.5), (12, -1), (13, -1.5), (15, 1), (16, 1.5)):
        out[:, j, 0] += s * swing[:, 0]
    out[..., 0] += 0.04 * t
    return out


def test_virtual_camera_sees_the_person_and_targets_are_root_relative():
    rng = np.random.default_rng(0)
    world = _walker()
    for _ in range(20):
        cam = random_camera(rng, world)
        uv, y = view(world, cam)
        assert np.allclose(y[:, 0], 0)
        assert (uv[..., 0] >= 0).all() and (uv[..., 0] <= cam["w"]).all()
        assert (uv[..., 1] >= 0).all() and (uv[..., 1] <= cam["h"]).all()
        # camera axes: the head (Y up in the world) is above the pelvis in the image (y down)
        assert (y[:, 10, 1] < -0.5).all()
        # rotation is proper and orthonormal
        assert np.allclose(cam["R"] @ cam["R"].T, np.eye(3), atol=1e-9)
        assert np.linalg.det(cam["R"]) == pytest.approx(1.0)


def test_look_at_and_projection_conventions():
    r = look_at(np.array([0.0, 1.0, -5.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    # looking along +z with y up: camera x (right) is world -x, camera y (down) is world -y
    assert np.allclose(r, np.diag([-1.0, -1.0, 1.0]))
    uv = project(np.array([[0.5, -0.25, 2.0]]), 1000.0, np.array([320.0, 240.0]))
    assert np.allclose(uv, [[570.0, 115.0]])


def test_augmented_windows_shapes_and_ranges():
    clips = [MocapClip(_walker(200), "x", "a"), MocapClip(_walker(30), "y", "short")]
    s = CmuSampler(clips, 27)
    x, y = s.batch(np.random.default_rng(1), 8)
    assert x.shape == (8, 27, 17, 2) and y.shape == (8, 27, 17, 3)
    assert x.dtype == np.float32 and np.isfinite(x).all() and np.isfinite(y).all()
    assert np.allclose(y[:, :, 0], 0, atol=1e-6)
    assert np.abs(x).max() < 3


def test_bone_scaling_keeps_lengths_constant_over_time():
    world = _walker()
    scaled = scale_bones(np.random.default_rng(0), world, 0.1)
    b0, b1 = bone_lengths(world), bone_lengths(scaled)
    ratio = b1 / b0
    assert np.allclose(ratio, ratio[0], atol=1e-9)          # same scaling in every frame
    assert (np.abs(ratio - 1) <= 0.1 + 1e-9).all()
    assert np.allclose(ratio[0][[0, 3]], ratio[0][[3, 0]])   # left/right symmetric (hips)


def test_resample_speed():
    world = _walker()
    assert np.allclose(resample(world, 10, 1.0, 5), world[10:15])
    assert np.allclose(resample(world, 10, 2.0, 3), world[[10, 12, 14]])
    assert np.allclose(resample(world, 0, 0.5, 3)[1], (world[0] + world[1]) / 2)


def test_detector_noise_is_bounded_and_keeps_shape():
    rng = np.random.default_rng(3)
    uv = rng.uniform(100, 400, (81, 17, 2))
    for _ in range(20):
        out = corrupt_2d(rng, uv)
        assert out.shape == uv.shape and np.isfinite(out).all()
        assert np.median(np.abs(out - uv)) < 30


@pytest.mark.slow
def test_tiny_model_overfits_one_sequence():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    world = _walker(16)
    cam = random_camera(rng, world, CameraAug())
    uv, y = view(world, cam)
    from posecli.skeleton import normalize_to_frame
    x = torch.from_numpy(normalize_to_frame(uv, cam["w"], cam["h"]))[None]
    y = torch.from_numpy(y.astype(np.float32))[None]
    model = MixSTE(LifterConfig(frames=16, width=32, depth=1, heads=4, drop_path=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    steps = 300
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    w = joint_weights(H36M.names)
    for _ in range(steps):
        loss, _ = mixste_loss(model(x), y, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        err = torch.linalg.vector_norm(model(x) - y, dim=-1).mean().item()
    assert err < 0.005, f"{err * 1000:.1f} mm after {steps} steps"


def test_train_checkpoint_resume_round_trip(tmp_path, monkeypatch):
    from posecli.training import train as train_mod
    from posecli.training.mocap import cmu_eval_sequences

    clips = [MocapClip(_walker(120), "a", "a1"), MocapClip(_walker(90), "b", "b1")]
    val = cmu_eval_sequences([MocapClip(_walker(60), "v", "v1")], 1)

    def fake_build(cfg):
        return CmuSampler(clips, cfg.frames, CmuAug()), val, H36M, {"dataset": "synthetic walker"}

    monkeypatch.setattr(train_mod, "build_data", fake_build)
    base = dict(frames=9, width=16, depth=1, heads=2, steps_per_epoch=2, batch=2, warmup_steps=1,
                schedule="exp")  # the learning rate must not depend on the total epoch count
    out = tmp_path / "run"
    train_mod.train(train_mod.TrainConfig(epochs=2, **base), out, progress=False)
    # a straight 3-epoch run and a 2-epoch run resumed to 3 epochs end with identical weights
    train_mod.train(train_mod.TrainConfig(epochs=3, **base), out, resume=True, progress=False)
    straight = tmp_path / "straight"
    train_mod.train(train_mod.TrainConfig(epochs=3, **base), straight, progress=False)
    hist = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    a = torch.load(out / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(straight / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k], b[k]) for k in a)
    model, meta = load_model(out / "best.pt")           # weights_only loader reads it
    assert model.cfg.frames == 9 and "val" in meta
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["lifter"]["width"] == 16
