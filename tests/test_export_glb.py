"""GLB writer: the file read back (structure, times, forward kinematics), the Khronos glTF
validator, and Blender's own glTF importer."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess

import numpy as np
import pytest

from export_helpers import REPO, blender_joint_positions, truth_result
from posecli.export import bvh, glb, write_all
from test_export_bvh import _blender

VALIDATOR_DIR = REPO / "tests" / ".node"  # .ci/run: npm install --prefix tests/.node gltf-validator@...


def read_glb(data: bytes) -> tuple[dict, bytes]:
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    n_json, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    doc = json.loads(data[20:20 + n_json])
    n_bin, kind = struct.unpack_from("<I4s", data, 20 + n_json)
    assert kind == b"BIN\0"
    return doc, data[28 + n_json:28 + n_json + n_bin]


def accessor(doc: dict, blob: bytes, i: int) -> np.ndarray:
    acc = doc["accessors"][i]
    view = doc["bufferViews"][acc["bufferView"]]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc["type"]]
    dtype = {5126: "<f4", 5121: "u1", 5123: "<u2"}[acc["componentType"]]
    a = np.frombuffer(blob, dtype, acc["count"] * width, view["byteOffset"])
    return a.reshape(acc["count"], width) if width > 1 else a


def test_quaternions_round_trip_and_stay_in_one_hemisphere():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(500, 4))
    q[:20] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] * 5  # 180-degree turns, identity
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    r = glb.quaternion_matrix(q)
    back = glb.quaternions(r[:, None])[:, 0]
    np.testing.assert_allclose(glb.quaternion_matrix(back), r, atol=1e-12)
    # a smooth spin: consecutive keys never flip sign
    a = np.linspace(0, 6 * np.pi, 400)
    spin = np.stack([np.zeros_like(a), np.sin(a / 2), np.zeros_like(a), np.cos(a / 2)], -1)
    k = glb.quaternions(glb.quaternion_matrix(spin))
    assert ((k[1:] * k[:-1]).sum(-1) > 0.99).all()


def fk(doc: dict, blob: bytes) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Joint names, key times and (N, J, 3) world positions from the nodes and the animation."""
    nodes = doc["nodes"]
    joints = doc["skins"][0]["joints"]
    parent = {c: i for i, n in enumerate(nodes) for c in n.get("children", [])}
    anim = doc["animations"][0]
    times = accessor(doc, blob, anim["samplers"][0]["input"])
    n = len(times)
    trans = {j: np.tile(nodes[j].get("translation", [0, 0, 0]), (n, 1)) for j in joints}
    rot = {j: np.tile(np.eye(3), (n, 1, 1)) for j in joints}
    for ch in anim["channels"]:
        s = anim["samplers"][ch["sampler"]]
        assert s["interpolation"] == "LINEAR" and s["input"] == anim["samplers"][0]["input"]
        out = accessor(doc, blob, s["output"]).astype(float)
        node, path = ch["target"]["node"], ch["target"]["path"]
        if path == "translation":
            trans[node] = out
        else:
            assert path == "rotation"
            rot[node] = glb.quaternion_matrix(out)
    g, pos = {}, {}
    for j in joints:  # parents come first
        p = parent.get(j)
        if p is None:
            g[j], pos[j] = rot[j], trans[j]
        else:
            g[j] = g[p] @ rot[j]
            pos[j] = pos[p] + np.einsum("nij,nj->ni", g[p], trans[j])
    return [nodes[j]["name"] for j in joints], times, np.stack([pos[j] for j in joints], 1)


@pytest.mark.parametrize("spin", [False, True])
def test_glb_skeleton_times_and_motion(tmp_path, spin):
    res = truth_result(spin=spin)
    (path,) = write_all(res, tmp_path, ["glb"])
    doc, blob = read_glb(path.read_bytes())
    names, times, pos = fk(doc, blob)
    assert names == [j.name for j in bvh.JOINTS]  # the BVH's joints, in its order
    parent = {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}
    assert [parent.get(i, -1) for i in range(len(names))] == [j.parent for j in bvh.JOINTS]
    np.testing.assert_allclose(times, res.frame_times(), atol=1e-6)  # one key per frame, its own time
    world = res.world_joints()
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    err = np.linalg.norm(pos[:, idx] - world, axis=-1)
    assert err.max() < 1e-3  # metres: Y up, within 1 mm in every frame


def _validator() -> tuple[str, str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    if not (VALIDATOR_DIR / "node_modules" / "gltf-validator").is_dir():
        pytest.skip(f"gltf-validator is not installed (npm install --prefix {VALIDATOR_DIR} gltf-validator)")
    return node, str(VALIDATOR_DIR)


def validate(path) -> dict:
    node, where = _validator()
    r = subprocess.run([node, str(REPO / "tests" / "gltf_validate.mjs"), where, str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def test_khronos_validator_finds_no_issue(tmp_path):
    res = truth_result(spin=True)
    (path,) = write_all(res, tmp_path, ["glb"])
    report = validate(path)
    issues = report["issues"]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]
    assert report["info"]["animationCount"] == 1 and report["info"]["hasSkins"]


def test_khronos_validator_catches_a_broken_file(tmp_path):
    """The validator check can fail: a file whose animation has a non-unit quaternion."""
    res = truth_result()
    (path,) = write_all(res, tmp_path, ["glb"])
    doc, blob = read_glb(path.read_bytes())
    acc = doc["accessors"][doc["animations"][0]["samplers"][1]["output"]]
    off = doc["bufferViews"][acc["bufferView"]]["byteOffset"]
    blob = bytearray(blob)
    blob[off:off + 4] = struct.pack("<f", 3.0)
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    data = b"".join([struct.pack("<4sII", b"glTF", 2, 28 + len(text) + len(blob)),
                     struct.pack("<I4s", len(text), b"JSON"), text,
                     struct.pack("<I4s", len(blob), b"BIN\0"), bytes(blob)])
    bad = tmp_path / "bad.glb"
    bad.write_bytes(data)
    assert validate(bad)["issues"]["numErrors"] > 0


@pytest.mark.blender
@pytest.mark.slow
def test_blender_gltf_importer_gives_the_same_world_joints(tmp_path):
    exe = _blender()
    if exe is None:
        pytest.skip("Blender is not installed (apt-get install -y --no-install-recommends blender)")
    res = truth_result(spin=True)
    (path,) = write_all(res, tmp_path, ["glb"])
    doc = blender_joint_positions(exe, "blender_gltf_positions.py", path, tmp_path)
    names = [j.name for j in bvh.JOINTS]
    got = np.array([[f[n] for n in names] for f in doc["frames"]])
    assert len(got) == res.num_frames  # one key per frame
    np.testing.assert_allclose(np.array(doc["keys"]) / doc["fps"], res.frame_times(), atol=1e-4)
    world = res.world_joints()
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    err = np.linalg.norm(got[:, idx] - world, axis=-1)
    assert err.max() < 1e-3, f"max {err.max() * 1000:.3f} mm"
