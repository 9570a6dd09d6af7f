"""BVH writer: forward kinematics of the written file, continuity, and Blender's own importer."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from export_helpers import REPO, truth_result
from posecli.export import bvh, write_all


def parse_bvh(text: str):
    """Minimal reader for the files we write: joint names, parents, offsets, end sites, channels,
    frame time and motion (N, C)."""
    lines = [ln.strip() for ln in text.splitlines()]
    names, parents, offsets, channels, stack = [], [], [], [], []
    i, in_end = 0, False
    while lines[i] != "MOTION":
        tok = lines[i].split()
        if tok[0] in ("ROOT", "JOINT"):
            names.append(tok[1])
            parents.append(stack[-1] if stack else -1)
        elif tok[0] == "End":
            in_end = True
        elif tok[0] == "{":
            if not in_end:
                stack.append(len(names) - 1)
        elif tok[0] == "}":
            if in_end:
                in_end = False
            else:
                stack.pop()
        elif tok[0] == "OFFSET" and not in_end:
            offsets.append([float(v) for v in tok[1:]])
        elif tok[0] == "CHANNELS":
            channels.append(tok[2:])
        i += 1
    frames = int(lines[i + 1].split()[1])
    frame_time = float(lines[i + 2].split()[2])
    motion = np.array([[float(v) for v in ln.split()] for ln in lines[i + 3:] if ln])
    return names, parents, np.array(offsets), channels, frames, frame_time, motion


def fk_from_file(path: Path) -> tuple[list[str], np.ndarray, float]:
    names, parents, offsets, channels, frames, frame_time, motion = parse_bvh(path.read_text())
    assert len(motion) == frames
    assert channels[0] == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    assert all(c == ["Zrotation", "Xrotation", "Yrotation"] for c in channels[1:])
    assert parents == [j.parent for j in bvh.JOINTS]
    root = motion[:, :3]
    angles = np.radians(motion[:, 3:].reshape(frames, len(names), 3))
    return names, bvh.forward_kinematics(root, angles, offsets), frame_time


@pytest.mark.parametrize("spin", [False, True])
def test_fk_of_written_file_reproduces_world_joints(tmp_path, spin):
    res = truth_result(spin=spin)
    (path,) = write_all(res, tmp_path, ["bvh"])
    names, pos, frame_time = fk_from_file(path)
    assert names[0] == "Hips" and "LeftForeArm" in names
    assert frame_time == pytest.approx(1 / res.fps, rel=1e-12)
    world = res.world_joints()
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    err = np.linalg.norm(pos[:, idx] - world, axis=-1)
    assert err.max() < 1e-3  # metres: within 1 mm in every frame
    # the root moves (trajectory) and the floor is at Y = 0 under the feet
    assert np.ptp(pos[:, 0, 2]) > 1.0
    assert abs(np.percentile(world[:, [3, 6], 1], 5) - 0.09) < 0.05


def test_euler_angles_are_continuous_through_a_spin(tmp_path):
    res = truth_result(spin=True)
    (path,) = write_all(res, tmp_path, ["bvh"])
    motion = parse_bvh(path.read_text())[-1]
    jumps = np.abs(np.diff(motion[:, 3:], axis=0))
    assert jumps.max() < 45.0  # degrees per frame: 720 degrees over 129 frames is ~5.6


def test_scale_and_root_offset(tmp_path):
    res = truth_result()
    p = tmp_path / "cm.bvh"
    bvh.write(res, p, scale=100.0)
    names, parents, offsets, _, _, _, motion = parse_bvh(p.read_text())
    assert np.all(offsets[0] == 0)  # importers replace the root OFFSET with its channels
    lengths = np.linalg.norm(offsets, axis=1)
    thigh = lengths[names.index("RightLeg")]
    assert 30 < thigh < 60  # centimetres
    m = parse_bvh(bvh.to_text(*bvh.solve(res.world_joints()), res.fps, 1.0))[-1]
    np.testing.assert_allclose(motion[:, :3], m[:, :3] * 100, atol=1e-3)


def test_no_root_motion_keeps_the_pelvis_in_place(tmp_path):
    res = truth_result(root_motion=False)
    (path,) = write_all(res, tmp_path, ["bvh"])
    motion = parse_bvh(path.read_text())[-1]
    assert np.ptp(motion[:, [0, 2]], axis=0).max() < 1e-6


def _blender() -> str | None:
    exe = shutil.which("blender")
    if exe is None:
        return None
    try:
        r = subprocess.run([exe, "-b", "--factory-startup", "--python-expr", "import bpy"],
                           capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if r.returncode == 0 else None


@pytest.mark.blender
@pytest.mark.slow
def test_blender_importer_gives_the_same_world_joints(tmp_path):
    exe = _blender()
    if exe is None:
        pytest.skip("Blender is not installed (apt-get install -y --no-install-recommends blender)")
    res = truth_result(spin=True)
    (path,) = write_all(res, tmp_path, ["bvh"])
    out = tmp_path / "blender.json"
    r = subprocess.run([exe, "-b", "--factory-startup", "--python",
                        str(REPO / "tests" / "blender_bvh_positions.py"), "--", str(path), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and out.exists(), r.stdout[-2000:] + r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["fps"] == pytest.approx(res.fps)
    names = [j.name for j in bvh.JOINTS]
    got = np.array([[f[n] for n in names] for f in doc["frames"]])
    assert len(got) == res.num_frames
    world = res.world_joints()
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    err = np.linalg.norm(got[:, idx] - world, axis=-1)
    assert err.max() < 1e-3, f"max {err.max() * 1000:.3f} mm"
