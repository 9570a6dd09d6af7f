"""HRNet, the second 2D detector: network and MMPose checkpoints, heatmap decoding, the flip test,
the crop <-> frame geometry, ONNX parity, the weights' download path, and the CLI end to end
(on synthetic weights: no HRNet weights can be had here)."""
import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO
from posecli import skeleton
from posecli.cli import app
from posecli.detect2d import heatmaps as hm
from posecli.detect2d.crops import Roi
from posecli.detect2d.hrnet import INPUT_SIZE, HRNetPose, box_roi
from posecli.errors import WeightsError

VIDEO = REPO / "examples" / "walk_07_05.mp4"
TRUTH = REPO / "examples" / "walk_07_05.truth.npz"
MMPOSE_KEYS = Path(__file__).parent / "data" / "hrnet_w32_mmpose_keys.txt"
runner = CliRunner()


def gaussians(centres: np.ndarray, h: int = 64, w: int = 48, sigma: float = 2.0) -> np.ndarray:
    """(N, K, 2) cell positions -> (N, K, h, w) Gaussian heatmaps peaking at 1."""
    y, x = np.mgrid[0:h, 0:w]
    c = np.asarray(centres, float)[..., None, None, :]
    return np.exp(-((x - c[..., 0]) ** 2 + (y - c[..., 1]) ** 2) / (2 * sigma ** 2)).astype(np.float32)


# ---- network and checkpoints ------------------------------------------------------------------

@pytest.fixture(scope="module")
def random_net():
    """Our HRNet with every weight and BatchNorm statistic random (BN is not an identity)."""
    import torch
    from posecli.detect2d.hrnet_net import HRNet
    torch.manual_seed(0)
    net = HRNet()
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif name.endswith(("running_mean", "bias")):
                t.normal_(0, 0.1)
            elif name.endswith("weight") and t.ndim == 1:
                t.uniform_(0.5, 1.5)
    return net.eval()


def mmpose_names(state: dict, head: str = "head") -> dict:
    """Our state dict under MMPose's key names (``backbone.*``, ``<head>.final_layer.*``)."""
    return {(f"{head}.{k}" if k.startswith("final_layer") else f"backbone.{k}"): v
            for k, v in state.items()}


def test_network_shapes_and_size(random_net):
    import torch
    with torch.inference_mode():
        y = random_net(torch.zeros(2, 3, INPUT_SIZE[1], INPUT_SIZE[0]))
    assert tuple(y.shape) == (2, 17, 64, 48)
    # HRNet-w32 has 28.5 M parameters (Sun et al., Table 1: 28.5M)
    assert abs(sum(p.numel() for p in random_net.parameters()) / 1e6 - 28.5) < 0.1


def test_key_names_are_mmposes():
    """Our module names, mapped, are exactly MMPose 1.3.2's state-dict keys and shapes for
    td-hm_hrnet-w32_8xb64-210e_coco-256x192 (listed by tools/hrnet_parity/mmpose_dump.py)."""
    from posecli.detect2d.hrnet_net import HRNet
    theirs = {}
    for line in MMPOSE_KEYS.read_text().splitlines():
        key, shape = line.split(maxsplit=1)
        theirs[key] = tuple(json.loads(shape))
    ours = {k: tuple(v.shape) for k, v in mmpose_names(HRNet().state_dict()).items()}
    assert ours == theirs


@pytest.mark.parametrize("head", ["head", "keypoint_head"])  # MMPose 1.x, 0.x model zoo
def test_mmpose_checkpoint_loads(tmp_path, random_net, head):
    import torch
    from posecli.detect2d.hrnet import load_checkpoint
    path = tmp_path / "hrnet.pth"
    torch.save({"meta": {}, "state_dict": mmpose_names(random_net.state_dict(), head)}, path)
    x = torch.randn(1, 3, 256, 192)
    with torch.inference_mode():
        assert torch.equal(load_checkpoint(path)(x), random_net(x))


class _Payload:
    """Unpickling this would create a file: a checkpoint must never run code."""
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_checkpoint_meta_objects_load_without_running_code(tmp_path, random_net):
    """mmengine writes numpy arrays and config objects into ``meta`` (torch's weights_only
    loader refuses them): the tensors still load, and nothing in the pickle is executed."""
    import torch
    from posecli.detect2d.hrnet import load_checkpoint
    flag = tmp_path / "executed"
    meta = {"dataset_meta": {"sigmas": np.ones(17)}, "payload": _Payload(flag)}
    torch.save({"meta": meta, "state_dict": mmpose_names(random_net.state_dict())}, tmp_path / "m.pth")
    x = torch.randn(1, 3, 256, 192)
    with torch.inference_mode():
        assert torch.equal(load_checkpoint(tmp_path / "m.pth")(x), random_net(x))
    assert not flag.exists()


def test_foreign_checkpoint_is_one_clear_error(tmp_path, random_net):
    import torch
    from posecli.detect2d.hrnet import load_checkpoint
    state = mmpose_names(random_net.state_dict())
    state.pop("head.final_layer.bias")
    state["backbone.conv1.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save({"state_dict": state}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"not an HRNet-w32.*missing: final_layer.bias.*wrong shape: conv1.weight"):
        load_checkpoint(tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable torch checkpoint"):
        load_checkpoint(tmp_path / "junk.pth")


@pytest.mark.slow
def test_onnx_export_matches_torch(tmp_path, random_net):
    import torch
    from posecli.detect2d.hrnet import OnnxNet, TorchNet, export_onnx
    ckpt = tmp_path / "hrnet.pth"
    torch.save({"state_dict": mmpose_names(random_net.state_dict())}, ckpt)
    path, err = export_onnx(ckpt, tmp_path / "hrnet.onnx")
    assert err is not None and err < 1e-4, err
    x = np.random.default_rng(1).normal(0, 1, (1, 3, 256, 192)).astype(np.float32)  # batch 1 too
    assert np.abs(OnnxNet(path)(x) - TorchNet(random_net)(x)).max() < 1e-4


# ---- decoding -----------------------------------------------------------------------------------

def test_dark_finds_subpixel_peaks():
    rng = np.random.default_rng(0)
    true = np.stack([rng.uniform(4, 43, (3, 17)), rng.uniform(4, 59, (3, 17))], -1)
    maps = gaussians(true)
    xy, conf = hm.decode(maps, "dark")
    err = np.linalg.norm(xy - true, axis=-1)
    assert err.max() < 0.1, err.max()           # cells; measured ~0.01
    quarter = np.linalg.norm(hm.decode(maps, "quarter")[0] - true, axis=-1)
    assert quarter.mean() > 3 * err.mean()       # the classic shift is coarser
    assert (conf > 0.93).all() and (conf <= 1).all()  # integer-cell peak of a sub-cell Gaussian
    # already-Gaussian maps need no smoothing: exact up to float32
    assert np.linalg.norm(hm.decode(maps, "dark", kernel=0)[0] - true, axis=-1).max() < 1e-3


def test_decoding_edge_cases():
    maps = gaussians(np.array([[[0.0, 30.0], [47.0, 63.0]]]))     # peaks on the border
    maps = np.concatenate([maps, np.full((1, 1, 64, 48), np.nan, np.float32),
                           np.zeros((1, 1, 64, 48), np.float32)], 1)
    xy, conf = hm.decode(maps)
    np.testing.assert_allclose(xy[0, :2], [[0, 30], [47, 63]])  # kept, not extrapolated
    assert np.isnan(xy[0, 2]).all() and conf[0, 2] == 0         # no finite value
    assert np.isfinite(xy[0, 3]).all() and conf[0, 3] == 0      # flat: a guess with no confidence
    with pytest.raises(ValueError, match="unknown refinement"):
        hm.decode(maps, "bogus")


def test_unflip_realigns_and_swaps_left_right():
    """Heatmaps of a mirrored crop, mirrored back, peak where the crop's own would."""
    perm = skeleton.COCO17.flip_permutation()
    rng = np.random.default_rng(1)
    true = np.stack([rng.uniform(5, 42, 17), rng.uniform(5, 58, 17)], -1)[None]  # cells
    # in the mirrored crop (pixel index x -> 191 - x) keypoint k shows up as keypoint perm[k]
    px = true * 4
    mirrored = np.stack([(INPUT_SIZE[0] - 1 - px[..., 0]) / 4, px[..., 1] / 4], -1)[:, perm]
    back = hm.unflip(gaussians(mirrored), perm)
    got = hm.decode(back, "dark")[0]
    assert np.abs(got - true).max() < 0.1, np.abs(got - true).max()
    whole = hm.unflip(gaussians(mirrored), perm, shift=1.0)     # MMPose's whole-cell shift
    assert np.abs(hm.decode(whole, "dark")[0][..., 0] - true[..., 0]).mean() > 0.2


# ---- geometry: frame -> crop -> heatmap -> frame ------------------------------------------------

def blob_net(x: np.ndarray) -> np.ndarray:
    """A stand-in network: every keypoint's heatmap peaks at the brightest blob of the crop
    (its intensity centroid, in input pixel indices / 4), like a perfect model of one point."""
    img = x.mean(1)                                           # (N, H, W)
    w = np.clip(img - img.mean((1, 2), keepdims=True), 0, None) ** 2
    yy, xx = np.mgrid[0:img.shape[1], 0:img.shape[2]]
    c = np.stack([(w * xx).sum((1, 2)), (w * yy).sum((1, 2))], -1) / w.sum((1, 2))[:, None]
    return gaussians(np.repeat(c[:, None] / 4, 17, 1))


@pytest.mark.parametrize("flip", [False, True])
def test_keypoints_land_where_they_are_in_the_frame(flip):
    """A bright spot at a known sub-pixel frame position comes back there through the crop warp,
    the network's heatmap convention, the flip test and the crop -> frame mapping."""
    rng = np.random.default_rng(2)
    model = HRNetPose(blob_net, flip=flip)
    yy, xx = np.mgrid[0:480, 0:640]
    for _ in range(3):
        p = rng.uniform([200, 150], [440, 330])
        frame = np.clip(20 + 230 * np.exp(-((xx + 0.5 - p[0]) ** 2 + (yy + 0.5 - p[1]) ** 2) / (2 * 6.0 ** 2)),
                        0, 255).astype(np.uint8)[..., None].repeat(3, -1)
        box = np.array([p[0] - 90, p[1] - 150, p[0] + 70, p[1] + 130]) + rng.uniform(-20, 20, 4)
        roi = box_roi(box)
        assert math.isclose(roi.aspect, 256 / 192) and roi.size >= (box[2] - box[0]) * 1.25 - 1e-9
        res = model(frame, [roi])[0]
        err = np.linalg.norm(res.xy - p, axis=1).max()
        assert err < 0.6, err   # frame pixels: one crop pixel here is ~1.2 frame pixels


def test_box_roi_keeps_the_network_aspect():
    wide = box_roi(np.array([0, 0, 300, 100]))           # lying person: height grows
    tall = box_roi(np.array([0, 0, 60, 300]))            # standing: width grows
    for r, (w, h) in ((wide, (375, 500)), (tall, (281.25, 375))):
        assert math.isclose(r.size, w) and math.isclose(r.size * r.aspect, h)


# ---- weights: the download path ---------------------------------------------------------------

def test_missing_weights_offline_name_the_url_and_the_options(tmp_path, monkeypatch):
    from posecli.detect2d import hrnet
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]       # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/{hrnet.CHECKPOINT_NAME}"
    monkeypatch.setattr(hrnet, "CHECKPOINT_URL", url)
    monkeypatch.setenv("POSECLI_CACHE", str(tmp_path))
    with pytest.raises(WeightsError) as e:
        hrnet.open_hrnet(None)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and "--pose-checkpoint" in msg and "--pose-model" in msg
    assert not list(tmp_path.iterdir())


# ---- the command line, end to end ---------------------------------------------------------------

# A standing person in the 48x64 heatmap grid (COCO order; the person's left on the image right).
STANDING = np.array([[24, 10], [25, 9], [23, 9], [26, 10], [22, 10], [28, 17], [20, 17], [29, 26],
                     [19, 26], [29, 34], [19, 34], [27, 35], [21, 35], [27, 46], [21, 46], [27, 57],
                     [21, 57]], float)


def template_onnx(path: Path) -> Path:
    """An ONNX 'HRNet' whose heatmaps are always a standing person (dynamic batch): the real
    input and output contract, for plumbing tests."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    t = gaussians(STANDING[None])                               # (1, 17, 64, 48)
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=1),
             helper.make_node("Mul", ["m", "zero"], ["z"]),
             helper.make_node("Add", ["z", "template"], ["heatmaps"])]
    graph = helper.make_graph(
        nodes, "template",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", 17, 64, 48])],
        [numpy_helper.from_array(t, "template"), numpy_helper.from_array(np.zeros(1, np.float32), "zero")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.slow
def test_lift_with_hrnet_onnx_end_to_end(tmp_path, tiny_weights):
    from posecli.export.json import schema
    import jsonschema
    model = template_onnx(tmp_path / "standing.onnx")
    r = runner.invoke(app, ["lift", str(VIDEO), "--detector", "hrnet", "--pose-model", str(model),
                            "-o", str(tmp_path / "out"), "--weights", str(tiny_weights), "-q"])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "walk_07_05.json").read_text())
    jsonschema.validate(doc, schema("result"))
    assert doc["detector"]["name"] == "hrnet" and doc["detector"]["layout"] == "coco17"
    assert "onnxruntime" in doc["detector"]["model"]
    truth = np.load(TRUTH)
    xy = np.array([f["keypoints_2d"] for f in doc["frames"]], float)
    assert len(xy) == len(truth["joints2d"]) and np.isfinite(xy).all()
    # the template is a standing person centred in the crop, so on the first frame (a crop made
    # from BlazePose's person detector) its pelvis lands on the person's (9 px here); later
    # crops follow the template's own keypoints, not the person
    height = np.ptp(truth["joints2d"][0, :, 1])
    assert np.linalg.norm(xy[0, 0] - truth["joints2d"][0, 0]) < 0.1 * height


@pytest.mark.parametrize("args, words", [
    (["--pose-model", "x.onnx"], ["--detector hrnet"]),                       # BlazePose
    (["--detector", "hrnet", "--pose-model", "a.pth"], ["expected an .onnx"]),
    (["--detector", "hrnet", "--pose-checkpoint", "a.onnx"], ["--pose-model"]),
    (["--detector", "hrnet", "--pose-model", "missing.onnx"], ["not found"]),
    (["--detector", "hrnot"], ["unknown detector", "hrnet"]),
])
def test_pose_model_options_are_checked_first(tmp_path, args, words):
    r = runner.invoke(app, ["lift", str(VIDEO), "-o", str(tmp_path), "-q", *args])
    assert r.exit_code == 1, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error:") and all(w in last for w in words), last
    assert not list(tmp_path.iterdir())
