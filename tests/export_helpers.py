"""A LiftResult built from the shipped example's truth (no detector, no lifter): fast and exact."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from posecli import skeleton, trajectory
from posecli.result import LiftResult

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "walk_07_05.mp4"


def truth_result(spin: bool = False, root_motion: bool = True) -> LiftResult:
    """The example clip's true 3D (made rigid) and 2D as a LiftResult with a trajectory.

    spin: also turn the body a full 720 degrees about the vertical over the clip (tests that
    Euler angles stay continuous).
    """
    with np.load(REPO / "examples" / "walk_07_05.truth.npz") as t:
        cam, kp = t["joints3d_cam"], t["joints2d"]
        fps, w, h, focal = float(t["fps"]), int(t["width"]), int(t["height"]), float(t["K"][0, 0])
    pose = cam - cam[:, :1]
    if spin:
        a = np.linspace(0, 4 * np.pi, len(pose))
        c, s = np.cos(a), np.sin(a)
        rot = np.zeros((len(a), 3, 3))
        rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
        pose = np.einsum("nij,nkj->nki", rot, pose)
    pose = trajectory.symmetric_hips(pose)
    pose = skeleton.fix_bone_lengths(pose, skeleton.symmetric_bone_lengths(pose))
    n = len(pose)
    conf = np.ones((n, 17))
    flags = np.array([skeleton.DETECTED] * n, dtype=object)
    traj = trajectory.estimate(pose, kp, conf, flags, w, h, fps, focal=focal, root_motion=root_motion)
    return LiftResult(source=str(EXAMPLE), kind="video", fps=fps, width=w, height=h, keypoints=kp,
                      conf=conf, flags=flags, pose3d=pose,
                      lifter={"weights": "truth", "sha256": "0" * 64, "config": {}, "window": 1,
                              "stride": 1, "flip_test": False, "backend": "torch"},
                      trajectory=traj)


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


def blender_joint_positions(exe: str, script: str, src: Path, tmp_path: Path) -> dict:
    """Run ``tests/<script>`` in Blender (``exe``) on ``src``; returns the JSON it writes (per
    frame, every bone head's world position in the file's own axes). Skips when Blender's
    Python lacks numpy (Debian's glTF importer needs apt python3-numpy)."""
    import json
    import subprocess

    import pytest

    out = tmp_path / "blender.json"
    r = subprocess.run([exe, "-b", "--factory-startup", "--python", str(REPO / "tests" / script), "--",
                        str(src), str(out)], capture_output=True, text=True, timeout=300)
    if "No module named 'numpy'" in r.stdout + r.stderr:
        pytest.skip("Blender's Python has no numpy (apt-get install python3-numpy)")
    assert r.returncode == 0 and out.exists(), r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(out.read_text())
