"""Speed and file size of the html, glb, trc and csv writers (and json, bvh for reference).

    python benchmarks/bench_exports.py [RESULT.json] [--frames 10000] [--repeat 3]

RESULT.json: a posecli result (default: lift the shipped example video once). ``--frames N``:
also a clip of N frames made of CMU motion capture (the first N frames of the shared
``mocap/cmu_h36m.npz``, several takes one after another; skipped when the shared data is
absent), written with the same writers. Prints, per writer, the best of --repeat runs in ms,
frames/s and the file size.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FORMATS = ("json", "bvh", "html", "glb", "trc", "csv")


def mocap_result(frames: int):
    """A LiftResult of ``frames`` frames of CMU mocap (world joints, Y up) with foot contacts."""
    from posecli import skeleton, trajectory
    from posecli.files import shared_data_dir
    from posecli.result import LiftResult

    path = shared_data_dir() / "mocap" / "cmu_h36m.npz"
    if not path.is_file():
        return None
    with np.load(path) as d:
        world = d["positions"][:frames, :17].astype(np.float64) + d["root"][:frames, None]
        fps = float(d["fps"])
    n = len(world)
    pose = (world - world[:, :1]) * np.array([1.0, -1.0, -1.0])  # camera axes, root-relative
    traj = trajectory.Trajectory(world=world, contacts=trajectory.foot_contacts(world, fps),
                                 rotation=np.diag([1.0, -1.0, -1.0]), origin=np.zeros(3),
                                 pelvis_camera=world[:, 0] * np.array([1.0, -1.0, -1.0]),
                                 focal=1000.0, root_motion=True)
    return LiftResult(source=f"cmu_h36m_{n}.mp4", kind="video", fps=fps, width=640, height=480,
                      keypoints=np.zeros((n, 17, 2)), conf=np.ones((n, 17)),
                      flags=np.array([skeleton.DETECTED] * n, dtype=object), pose3d=pose,
                      lifter={}, trajectory=traj)


def bench(res, repeat: int) -> list[tuple[str, float, int]]:
    from posecli.export import write_all
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for fmt in FORMATS:
            best = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                (path,) = write_all(res, d, [fmt])
                best = min(best, time.perf_counter() - t)
            rows.append((fmt, best, path.stat().st_size))
    return rows


def report(title: str, res, rows) -> None:
    print(f"\n{title}: {res.num_frames} frames")
    print(f"{'format':<6} {'ms':>9} {'frames/s':>10} {'bytes':>11}")
    for fmt, sec, size in rows:
        print(f"{fmt:<6} {sec * 1000:9.1f} {res.num_frames / sec:10.0f} {size:11,d}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("result", nargs="?", help="a posecli result JSON (default: lift the example)")
    ap.add_argument("--frames", type=int, default=10000, help="frames of the long mocap clip (0: none)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    if a.result:
        from posecli.keypoints import read_result
        res = read_result(a.result)
    else:
        from posecli.pipeline import lift_video
        res = lift_video(REPO / "examples" / "walk_07_05.mp4")
    report(Path(res.source).name, res, bench(res, a.repeat))
    if a.frames:
        long = mocap_result(a.frames)
        if long is None:
            print("\n(shared mocap data not found: no long clip)")
        else:
            report("CMU mocap", long, bench(long, a.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
