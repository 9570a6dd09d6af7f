"""Metrics against hand-computed cases, the HumanEva-I loader, and the evaluation command."""
import json

import numpy as np
import pytest

from posecli.training.metrics import mpjpe, mpjve, p_mpjpe, procrustes_align


def _rotation(rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_mpjpe_hand_computed():
    gt = np.zeros((2, 2, 3))
    pred = gt.copy()
    pred[0, 0] = [3, 4, 0]      # 5
    pred[1, 1] = [0, 0, 2]      # 2
    assert mpjpe(pred, gt) == pytest.approx(7 / 4)


def test_mpjve_hand_computed():
    gt = np.zeros((3, 1, 3))
    pred = np.zeros((3, 1, 3))
    pred[1, 0, 0] = 1.0         # velocities +1 then -1 against 0
    assert mpjve(pred, gt) == pytest.approx(1.0)
    assert mpjve(pred + 5.0, gt + 2.0) == pytest.approx(1.0)   # constant offsets do not count


def test_p_mpjpe_ignores_rotation_scale_translation_of_the_prediction():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(4, 17, 3))
    pred = gt + rng.normal(0, 0.05, gt.shape)
    base = p_mpjpe(pred, gt)
    for _ in range(3):
        r = _rotation(rng)
        moved = 2.7 * pred @ r.T + rng.normal(size=3)
        assert p_mpjpe(moved, gt) == pytest.approx(base, rel=1e-9)
    # a similarity transform of the ground truth itself is aligned away exactly
    assert p_mpjpe(0.5 * gt @ _rotation(rng).T - 3, gt) == pytest.approx(0.0, abs=1e-9)
    assert mpjpe(procrustes_align(pred, gt), gt) == pytest.approx(base)


def test_p_mpjpe_does_not_use_reflections():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(1, 17, 3))
    mirrored = gt * np.array([-1, 1, 1])
    assert p_mpjpe(mirrored, gt) > 0.1


def test_humaneva_loader_reproduces_the_camera_projection(shared):
    from posecli.training.datasets import load_humaneva
    seqs = load_humaneva("Validate")
    assert {s.subject for s in seqs} == {"S1", "S2", "S3"} and {s.action for s in seqs} == {"Walking", "Jog"}
    by_cam: dict = {}
    for s in seqs:
        w = s.meta["world"]
        from posecli.training.datasets import load_humaneva_cameras
        cam = [c for c in load_humaneva_cameras()["cameras"][s.subject] if c["id"] == s.camera][0]
        xc = (w - cam["t"]) @ cam["R"].T
        assert (xc[..., 2] > 1.5).all()                      # in front of the camera
        assert np.allclose(s.y, xc - xc[:, :1], atol=1e-5)   # root-relative camera frame
        by_cam.setdefault((s.subject, s.camera), []).append((xc, s.meta["pixels"]))
    for key, items in by_cam.items():
        xc = np.concatenate([a for a, _ in items]).reshape(-1, 3)
        uv = np.concatenate([b for _, b in items]).reshape(-1, 2)
        ab = xc[:, :2] / xc[:, 2:]
        err = []
        for d in range(2):  # fit a pinhole (focal, centre) per axis, since the intrinsics are not given
            a = np.c_[ab[:, d], np.ones(len(ab))]
            sol, *_ = np.linalg.lstsq(a, uv[:, d], rcond=None)
            err.append(a @ sol - uv[:, d])
            assert 600 < sol[0] < 900
        assert np.hypot(*err).mean() < 3.0, key              # a few pixels (lens distortion)


def test_humaneva_in_h36m_layout(shared):
    from posecli.skeleton import HUMANEVA15_TO_H36M17 as HE_TO_H36M
    from posecli.training.datasets import humaneva_as_h36m, load_humaneva
    s = load_humaneva("Validate")[:1]
    h = humaneva_as_h36m(s)[0]
    assert h.x.shape[1:] == (17, 2) and h.y.shape[1:] == (17, 3)
    np.testing.assert_allclose(h.y[:, list(HE_TO_H36M)], s[0].y)
    np.testing.assert_allclose(h.x[:, 7], (h.x[:, 0] + h.x[:, 8]) / 2)


@pytest.mark.slow
def test_evaluate_command_on_humaneva(shared, tmp_path):
    import torch
    from typer.testing import CliRunner
    import typer

    from posecli.cli_research import register
    from posecli.skeleton import HUMANEVA15 as HUMANEVA
    from posecli.lifter import LifterConfig, MixSTE, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "he.pt"
    save_checkpoint(MixSTE(LifterConfig(frames=27, joints=HUMANEVA.joints, width=16, depth=1, heads=2)), path)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(app, ["evaluate", "--weights", str(path), "--data", "humaneva",
                                   "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "r.json").read_text())
    assert set(r) >= {"overlap", "non-overlap"}
    assert len(r["overlap"]["cells"]) == 6
    assert all(np.isfinite(v["p1"]) and v["p2"] <= v["p1"] for v in r["overlap"]["cells"].values())
    # per-joint errors are a decomposition of P1: their mean over joints is the overall P1
    pj = r["overlap"]["per_joint"]
    assert len(pj) == len(r["joint_names"]) == HUMANEVA.joints
    assert np.mean(pj) == pytest.approx(r["overlap"]["all"]["p1"], rel=1e-3)
