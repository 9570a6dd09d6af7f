"""BVH writer: forward kinematics of the written file, continuity, and Blender's own importer."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from export_helpers import blender_joint_positions, parse_bvh, truth_result
from posecli.export import bvh, write_all


def fk_from_file(path: Path) -> tuple[list[str], np.ndarray, float]:
    names, parents, offsets, channels, frames, frame_time, motion = parse_bvh(path.read_text())
    assert len(motion) == frames
    assert channels[0][:3] == ["Xposition", "Yposition", "Zposition"]
    assert [c[-3:] for c in channels] == [[f"{a}rotation" for a in j.order] for j in bvh.JOINTS]
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


def test_scale_and_rest_pose_on_the_floor(tmp_path):
    res = truth_result()
    p = tmp_path / "cm.bvh"
    bvh.write(res, p, scale=100.0)
    names, parents, offsets, _, _, _, motion = parse_bvh(p.read_text())
    lengths = np.linalg.norm(offsets, axis=1)
    thigh = lengths[names.index("RightLeg")]
    assert 30 < thigh < 60  # centimetres
    m = parse_bvh(bvh.to_text(*bvh.solve(res.world_joints()), res.fps, 1.0))[-1]
    np.testing.assert_allclose(motion[:, :3], m[:, :3] * 100, atol=1e-3)
    # the rest pose (every rotation 0, the root at its OFFSET) stands on the floor: the lowest
    # point (toe end sites) at height 0, the hips at leg length + ankle height
    rest = bvh.forward_kinematics(offsets[:1] / 100, np.zeros((1, len(names), 3)), offsets / 100)[0]
    _, ends = bvh.rest_offsets(bvh.skeleton.symmetric_bone_lengths(res.world_joints()))
    toe_tip = rest[names.index("LeftToeBase")] + ends[names.index("LeftToeBase")]
    assert abs(toe_tip[1]) < 1e-6 and rest[:, 1].min() > -1e-6
    assert rest[names.index("LeftFoot"), 1] == pytest.approx(0.09)


def test_mixamo_names_and_trunk_spread_as_mixamo(tmp_path):
    res = truth_result()
    p = tmp_path / "mx.bvh"
    bvh.write(res, p, names="mixamo")
    names, parents, offsets, *_ = parse_bvh(p.read_text())
    assert all(n.startswith("mixamorig:") for n in names)
    plain = [n.split(":")[1] for n in names]
    for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End", "LeftShoulder",
              "LeftArm", "LeftForeArm", "LeftHand", "LeftUpLeg", "LeftLeg", "LeftFoot",
              "LeftToeBase", "RightToeBase"):
        assert n in plain
    # Spine, Spine1, Spine2, Neck climb the trunk in steps (no zero-length bone), Head above
    rest = bvh.forward_kinematics(offsets[:1], np.zeros((1, len(names), 3)), offsets)[0]
    h = [rest[plain.index(n), 1] for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head")]
    steps = np.diff(h)
    assert (steps > 0.05).all(), steps
    # every joint with children has a bone: no child sits on its parent
    for i, par in enumerate(parents):
        if par >= 0:
            assert np.linalg.norm(offsets[i]) > 0.02, plain[i]
    with pytest.raises(Exception):
        bvh.write(res, tmp_path / "x.bvh", names="nope")


def test_fps_resamples_the_bvh(tmp_path):
    res = truth_result()
    p = tmp_path / "r.bvh"
    bvh.write(res, p, fps=60.0)
    *_, frames, frame_time, motion = parse_bvh(p.read_text())
    span = res.frame_times()[-1] - res.frame_times()[0]
    assert frame_time == pytest.approx(1 / 60) and frames == int(span * 60 + 1e-6) + 1
    # the pelvis at the resampled times lies on the original path
    orig = res.world_joints()[:, 0]
    t = res.frame_times()
    mid = np.interp(t[0] + 1 / 60 * 10, t, orig[:, 2])
    assert motion[10, 2] == pytest.approx(mid, abs=2e-3)


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
    doc = blender_joint_positions(exe, "blender_bvh_positions.py", path, tmp_path)
    assert doc["fps"] == pytest.approx(res.fps)
    names = [j.name for j in bvh.JOINTS]
    got = np.array([[f[n] for n in names] for f in doc["frames"]])
    assert len(got) == res.num_frames
    world = res.world_joints()
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    err = np.linalg.norm(got[:, idx] - world, axis=-1)
    assert err.max() < 1e-3, f"max {err.max() * 1000:.3f} mm"


def _turn(points: np.ndarray, centre: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (K, 3) points about a line through ``centre`` along ``axis`` by ``angle`` rad."""
    k = axis / np.linalg.norm(axis)
    c, s = np.cos(angle), np.sin(angle)
    v = points - centre
    return centre + v * c + np.cross(k, v) * s + np.outer(v @ k, k) * (1 - c)


def hard_motion(n: int = 120) -> np.ndarray:
    """(n, 17, 3) world joints of the example's first pose doing what breaks Euler curves:
    the right leg raised to a high knee (thigh 110 deg, knee 140 deg: past 90 on both), the left
    knee flickering 3 degrees either side of straight (noise on a straight leg), the left arm
    swung forward and up overhead and the right arm down along the body, while the body turns
    about the vertical."""
    p0 = truth_result().world_joints()[0]
    rng = np.random.default_rng(0)
    out = np.zeros((n, 17, 3))
    t = np.linspace(0, 1, n)
    for f in range(n):
        p = p0.copy()
        lateral = p[4] - p[1]
        a = np.radians(110) * np.sin(np.pi * t[f])            # right thigh forward
        b = np.radians(140) * np.sin(np.pi * t[f])            # right knee folds back
        p[[2, 3]] = _turn(p[[2, 3]], p[1], lateral, -a)
        p[[3]] = _turn(p[[3]], p[2], lateral, b)           # shin relative to the thigh
        p[[6]] = _turn(p[[6]], p[5], lateral, np.radians(3) * rng.choice([-1, 1]))
        up = np.radians(200) * t[f]                            # left arm forward and overhead
        p[[12, 13]] = _turn(p[[12, 13]], p[11], np.array([0.0, 0.0, 1.0]), -np.pi / 2)
        p[[12, 13]] = _turn(p[[12, 13]], p[11], lateral, -up)
        p[[13]] = _turn(p[[13]], p[12], lateral, -np.radians(60) * t[f])
        yaw = 1.5 * np.pi * t[f]
        out[f] = _turn(p, p[0], np.array([0.0, 1.0, 0.0]), yaw)
    return out


def test_rotation_curves_have_no_spurious_jumps():
    """High knees past 90 degrees, a straight knee with noise, an arm overhead: no channel steps
    more than 40 degrees unless the joint turned that much, and no limb spins about itself."""
    world = hard_motion()
    root, angles, offsets, ends = bvh.solve(world)
    fk = bvh.forward_kinematics(root, angles, offsets)
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    assert np.abs(fk[:, idx] - world).max() < 1e-6
    jumps = bvh.curve_jumps(angles, offsets, ends=ends)
    assert jumps["spurious"] == 0 and jumps["twist_flips"] == 0, jumps
    assert jumps["channel_jumps"] == 0, jumps


def test_example_curves_have_no_jumps(tmp_path):
    for spin in (False, True):
        (path,) = write_all(truth_result(spin=spin), tmp_path, ["bvh"])
        names, _, offsets, channels, frames, _, motion = parse_bvh(path.read_text())
        angles = np.radians(motion[:, 3:].reshape(frames, len(names), 3))
        assert bvh.curve_jumps(angles, offsets)["channel_jumps"] == 0


def _with_landmarks(res, toe_out_deg: float = 30.0):
    """The truth result plus synthetic BlazePose world landmarks (camera axes, hip-centred):
    body points from the joints, feet turned out by ``toe_out_deg`` about the vertical, hands
    with the palm facing down the forearm's own frame, ears across the head."""
    cam = res.pose3d                                    # camera axes, root-relative
    world_rot = res.trajectory.rotation                 # camera -> world
    up_cam = world_rot[1]                               # world up in camera axes
    lm = np.full((res.num_frames, 33, 3), np.nan)
    for bp, h in {11: 11, 12: 14, 13: 12, 14: 15, 15: 13, 16: 16, 23: 4, 24: 1, 25: 5, 26: 2,
                  27: 6, 28: 3}.items():
        lm[:, bp] = cam[:, h]
    across = cam[:, 4] - cam[:, 1]                       # right hip -> left hip
    fwd = np.cross(across, up_cam)
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    for side, (ankle, heel, toe, sign) in {"l": (6, 29, 31, 1.0), "r": (3, 30, 32, -1.0)}.items():
        a = np.radians(toe_out_deg) * sign               # left toes out = towards +across
        k = up_cam / np.linalg.norm(up_cam)
        d = fwd * np.cos(a) + np.cross(k, fwd) * np.sin(a)
        lm[:, heel] = cam[:, ankle] - 0.07 * up_cam - 0.05 * d
        lm[:, toe] = cam[:, ankle] - 0.08 * up_cam + 0.17 * d
    for side, (wrist, elbow, idx, pinky, thumb) in {"l": (13, 12, 19, 17, 21), "r": (16, 15, 20, 18, 22)}.items():
        fore = cam[:, wrist] - cam[:, elbow]
        fore /= np.linalg.norm(fore, axis=1, keepdims=True)
        side_v = fwd - (fwd * fore).sum(1, keepdims=True) * fore  # index towards the front
        side_v /= np.linalg.norm(side_v, axis=1, keepdims=True)
        lm[:, idx] = cam[:, wrist] + 0.08 * fore + 0.03 * side_v
        lm[:, pinky] = cam[:, wrist] + 0.08 * fore - 0.03 * side_v
        lm[:, thumb] = cam[:, wrist] + 0.03 * fore + 0.04 * side_v
    head = cam[:, 9]
    lm[:, 7] = head + 0.5 * across                        # left ear
    lm[:, 8] = head - 0.5 * across
    lm[:, 0] = head + 0.1 * fwd
    res.landmarks_world = lm
    return res


def _yaw(v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(v[..., 0], v[..., 2]))


def test_landmarks_turn_feet_hands_and_head():
    res = truth_result()
    plain = bvh.solve(*bvh.motion(res)[:4])
    lm_res = _with_landmarks(truth_result())
    world, weights, lm, trust, _ = bvh.motion(lm_res)
    root, angles, offsets, ends = bvh.solve(world, weights, lm, trust)
    pos = bvh.forward_kinematics(root, angles, offsets)
    idx = [bvh.H36M_TO_BVH[j] for j in range(17)]
    assert np.abs(pos[:, idx] - world).max() < 1e-6      # the 17 joints stay exact
    # feet: the toes point the way the landmarks' feet do (turned out 30 degrees each)
    body_fwd = np.cross(world[:, 4] - world[:, 1], [0.0, 1.0, 0.0])
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        toe = pos[:, bvh.INDEX[side + "ToeBase"]] - pos[:, bvh.INDEX[side + "Foot"]]
        turn = (_yaw(toe) - _yaw(body_fwd) + 180) % 360 - 180
        assert abs(np.median(turn) - 30 * sign) < 5, (side, np.median(turn))
    # without landmarks the feet follow the knees: not turned out
    pos0 = bvh.forward_kinematics(plain[0], plain[1], plain[2])
    toe0 = pos0[:, bvh.INDEX["LeftToeBase"]] - pos0[:, bvh.INDEX["LeftFoot"]]
    assert abs(np.median((_yaw(toe0) - _yaw(body_fwd) + 180) % 360 - 180)) < 15
    # hands and head have rotations of their own with landmarks, none without
    loc = bvh.local_from_angles(angles)
    loc0 = bvh.local_from_angles(plain[1])
    for name in ("LeftHand", "RightHand"):
        assert np.allclose(loc0[:, bvh.INDEX[name]], np.eye(3), atol=1e-9)
        assert not np.allclose(loc[:, bvh.INDEX[name]], np.eye(3), atol=1e-2)
    hand = bvh.INDEX["LeftHand"]
    g = np.eye(3)[None].repeat(len(loc), 0)
    chain = []
    j = hand
    while j >= 0:
        chain.append(j)
        j = bvh.JOINTS[j].parent
    for j in reversed(chain):
        g = g @ loc[:, j]
    fingers = (g @ ends[hand]) / np.linalg.norm(ends[hand])
    want = lm_res.trajectory.rotation @ (lm_res.landmarks_world[:, [19, 17]].mean(1) - lm_res.landmarks_world[:, 15]).T
    want = (want / np.linalg.norm(want, axis=0)).T
    assert np.degrees(np.arccos(np.clip((fingers * want).sum(-1), -1, 1))).max() < 3
    # NaN landmarks fall back frame by frame, and the curves stay smooth
    lm_res.landmarks_world[40:50] = np.nan
    world, weights, lm, trust, _ = bvh.motion(lm_res)
    root, angles, offsets, ends = bvh.solve(world, weights, lm, trust)
    assert np.isfinite(angles).all()
    assert bvh.curve_jumps(angles, offsets, ends=ends)["channel_jumps"] == 0
