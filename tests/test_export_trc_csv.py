"""TRC (OpenSim markers) and CSV (joint angles + world joints): read back what we wrote."""
from __future__ import annotations

import csv as stdcsv
from dataclasses import replace

import numpy as np
import pytest

from export_helpers import truth_result
from posecli import skeleton
from posecli.export import bvh, write_all
from posecli.export import csv as posecsv


def with_gap(res, start: int = 40, stop: int = 55):
    """The result with frames start..stop-1 flagged missing (a long gap)."""
    flags = res.flags.copy()
    flags[start:stop] = skeleton.MISSING
    return replace(res, flags=flags)


def read_trc(path):
    lines = path.read_text().split("\n")
    keys, values = lines[1].split("\t"), lines[2].split("\t")
    head = dict(zip(keys, values))
    names = [n for n in lines[3].split("\t")[2:] if n]
    assert lines[5] == ""  # OpenSim's blank line between the labels and the data
    rows = [ln.split("\t") for ln in lines[6:] if ln]
    return lines, head, names, rows


def test_trc_header_units_markers_and_gap(tmp_path):
    res = with_gap(truth_result())
    (path,) = write_all(res, tmp_path, ["trc"])
    lines, head, names, rows = read_trc(path)
    assert lines[0].startswith("PathFileType\t4\t(X/Y/Z)\t")
    assert head["Units"] == "mm"
    assert int(head["NumFrames"]) == res.num_frames == len(rows)
    assert int(head["NumMarkers"]) == 17 and names == list(skeleton.JOINTS)
    assert float(head["DataRate"]) == pytest.approx(res.fps) and head["OrigDataStartFrame"] == "1"
    labels = lines[4].split("\t")[2:]
    assert labels[:3] == ["X1", "Y1", "Z1"] and labels[-1] == "Z17"
    assert all(len(r) == 2 + 3 * 17 for r in rows)  # a gap keeps its columns
    assert [int(r[0]) for r in rows] == list(range(1, res.num_frames + 1))
    np.testing.assert_allclose([float(r[1]) for r in rows], res.frame_times(), atol=1e-6)
    world = res.world_joints() * 1000
    for i, r in enumerate(rows):
        if 40 <= i < 55:
            assert r[2:] == [""] * 51, f"frame {i} should be a gap, not numbers"
        else:
            got = np.array(r[2:], float).reshape(17, 3)
            assert np.abs(got - world[i]).max() <= 0.006  # mm, written to 0.01
    # world frame, Y up, millimetres: ankles near the floor, head well above them
    xyz = np.array([r[2:] for i, r in enumerate(rows) if not 40 <= i < 55], float).reshape(-1, 17, 3)
    assert 1400 < np.median(xyz[:, 10, 1] - xyz[:, 3, 1]) < 2000
    assert abs(np.percentile(xyz[:, [3, 6], 1], 5) - 90) < 50


def known_pose() -> np.ndarray:
    """(2, 17, 3) metres, Y up, facing +Z: right leg straight, left hip and knee bent 90 degrees
    (knee in front), left arm straight out sideways, right upper arm hanging with the forearm
    forward; frame 1 is frame 0 tipped 20 degrees forward about the right hip."""
    p = np.zeros((17, 3))
    p[0], p[7], p[8], p[9], p[10] = (0, 1, 0), (0, 1.25, 0), (0, 1.5, 0), (0, 1.6, 0), (0, 1.75, 0)
    p[1], p[2], p[3] = (-0.1, 1, 0), (-0.1, 0.55, 0), (-0.1, 0.1, 0)
    p[4], p[5], p[6] = (0.1, 1, 0), (0.1, 1, 0.45), (0.1, 0.55, 0.45)
    p[11], p[12], p[13] = (0.2, 1.5, 0), (0.5, 1.5, 0), (0.8, 1.5, 0)
    p[14], p[15], p[16] = (-0.2, 1.5, 0), (-0.2, 1.2, 0), (-0.2, 1.2, 0.3)
    a = np.radians(20)
    tip = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])  # +Y towards +Z
    return np.stack([p, (p - p[1]) @ tip.T + p[1]])


def test_angles_of_a_known_pose():
    a = dict(zip(posecsv.ANGLES, posecsv.joint_angles(known_pose()).T))
    expect = {"knee_flexion_r": 0, "knee_flexion_l": 90, "hip_flexion_r": 0, "hip_flexion_l": 90,
              "elbow_flexion_l": 0, "elbow_flexion_r": 90, "shoulder_elevation_l": 90,
              "shoulder_elevation_r": 0}
    for name, deg in expect.items():
        np.testing.assert_allclose(a[name], deg, atol=1e-6, err_msg=name)  # the same in both frames
    np.testing.assert_allclose(a["trunk_lean"], [0, 20], atol=1e-6)
    np.testing.assert_allclose(a["trunk_lean_forward"], [0, 20], atol=1e-6)


def test_csv_columns_angles_positions_and_gap(tmp_path):
    res = with_gap(truth_result())
    (path,) = write_all(res, tmp_path, ["csv"])
    with path.open(newline="") as f:
        rows = list(stdcsv.reader(f))
    head, rows = rows[0], rows[1:]
    assert head[:3] == ["frame", "time", "flag"] and "knee_flexion_r_deg" in head
    assert head[-3:] == ["r_wrist_x_m", "r_wrist_y_m", "r_wrist_z_m"]
    assert len(rows) == res.num_frames and all(len(r) == len(head) for r in rows)
    assert rows[45][2] == "missing" and rows[45][3:] == [""] * (len(head) - 3)
    world = res.world_joints()
    k = head.index("pelvis_x_m")
    got = np.array(rows[10][k:], float).reshape(17, 3)
    assert np.abs(got - world[10]).max() < 1e-5
    knee = np.array([r[head.index("knee_flexion_r_deg")] for r in rows if r[2] != "missing"], float)
    assert 0 <= knee.min() < 15 and 45 < knee.max() < 90  # a walk: nearly straight at heel strike, ~60 in swing
