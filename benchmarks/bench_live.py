"""``posecli live``: what the look-ahead costs in accuracy, and the delays of a real stream.

    python benchmarks/bench_live.py [CLIP.mp4 ...] [--delays 0,0.1,0.25,0.5] [--loops 2]
                                    [--no-stages] [--no-stream] [--no-accuracy] [--json out.json]

Default clip: examples/walk_07_05.mp4 (with its .truth.npz). Clips with a ``.truth.npz``
beside them (``tools/render_clips.py``) are scored against the truth too.

Accuracy (in-process, deterministic): the offline lift (``posecli.lift``, its defaults: the
fusion with BlazePose's world landmarks, foot locking, the camera's pan) gives each frame's 2D
and world landmarks; the live session is fed the same frame by frame, with the pan measured
as ``posecli live`` does (frame pair by frame pair), lifting at every frame, so every frame
gets exactly the look-ahead. Per look-ahead: the live root-relative 3D against the offline
lift's (mm, mean per joint, both pelvis-aligned) and against the truth (MPJPE, mm; the offline
lift's beside it), the pelvis in the world and the foot contacts against the offline ones,
the foot slide (mm a frame an ankle in contact travels; live and offline) and the jitter (mean
joint acceleration, m/s^2).

Stages: the CPU time of the detection thread per frame and of the lift thread per lift (one
causal window with flip), alone and side by side, and the steady-state delay they imply on two
free cores (the look-ahead + a detection + 1.5 lifts: on a shared machine the wall clock
measures the other processes as much as posecli).

Delays (real streams, wall clock): ``posecli live - -o -`` is started, and once it says it is
reading, ``ffmpeg -re -i CLIP -stream_loop LOOPS -f mpegts -`` plays the clip into it in real
time. Per look-ahead: frames received and dropped, posecli's own delay per frame (``delay_ms``:
from the frame leaving the decoder to its line), and the end-to-end delay (the line read here
minus the frame's send time, the sender's start + the frame's time), over every frame and in
the steady state (frames after the first second). The machine is shared: the load average is
printed beside each run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "walk_07_05.mp4"
STEADY_S = 1.0  # frames after this much of the stream count as the steady state


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def aligned_mpjpe(a: np.ndarray, b: np.ndarray) -> float:
    """(N, 17, 3) x 2 -> mean per-joint distance (mm) after putting both pelvises at 0."""
    return float(np.linalg.norm((a - a[:, :1]) - (b - b[:, :1]), axis=-1).mean() * 1000)


def jitter(pose: np.ndarray, fps: float) -> float:
    acc = (pose[2:] - 2 * pose[1:-1] + pose[:-2]) * fps ** 2
    return float(np.linalg.norm(acc, axis=-1).mean())


def pan_shifts(clip: Path, landmarks: np.ndarray) -> np.ndarray:
    """(N, 2) px: the background's shift as ``posecli live`` measures it, frame by frame
    (:class:`posecli.live.session.PanMeter`), around the person's 2D ``landmarks`` (N, K, 2)."""
    from posecli.live.session import PanMeter
    from posecli.video import VideoReader

    pan = PanMeter()
    return np.array([pan(f, xy) for f, xy in zip(VideoReader(clip), landmarks)])


def foot_slide(world: np.ndarray, contacts: np.ndarray) -> float:
    """Mean horizontal ankle travel (mm per frame) between consecutive frames in contact:
    world (N, 17, 3) Y up, contacts (N, 2) (right, left)."""
    steps = []
    for ankle, c in zip((3, 6), np.asarray(contacts, bool).T):
        both = c[1:] & c[:-1]
        steps.append(np.linalg.norm(np.diff(world[:, ankle][:, [0, 2]], axis=0)[both], axis=-1))
    steps = np.concatenate(steps)
    return float(steps.mean() * 1000) if len(steps) else 0.0


def live_from_offline(res, lifter, lookahead: float, fusion=None, shifts=None,
                      foot_lock: bool = True) -> tuple[list[dict], float, np.ndarray]:
    """Feed the offline lift's 2D (and BlazePose's world landmarks, and the background's
    ``shifts`` (N, 2) px) into a live session frame by frame -> (records, ms/frame, the
    session's camera -> world rotation at the end)."""
    from posecli.live.session import Arrived, LiveSession
    from posecli.pipeline import to_h36m

    xy, conf = to_h36m(np.nan_to_num(res.landmarks), res.landmark_conf, res.detector["layout"])
    found = np.isfinite(res.landmarks).all(-1).any(-1)
    marks = res.landmarks_world
    s = LiveSession(lifter, res.width, res.height, lookahead, fusion=fusion, foot_lock=foot_lock)
    out = []
    t0 = time.perf_counter()
    for i in range(len(xy)):
        s.add(Arrived(i, float(res.times[i]), 0.0, xy[i] if found[i] else np.full((17, 2), np.nan),
                      conf[i], None if marks is None or not found[i] else marks[i],
                      None if shifts is None else shifts[i]))
        out += s.emit(0.0)
    out += s.emit(0.0, flush=True)
    return out, (time.perf_counter() - t0) / len(out) * 1000, s.rotation


def accuracy(clips: list[Path], delays: list[float], threads: int) -> list[dict]:
    import posecli
    from posecli.compute import set_torch_threads
    from posecli.lifter import load_lifter
    from posecli.lifter.fusion import resolve

    set_torch_threads(threads)
    lifter = load_lifter(threads=threads)
    fusion = resolve("on")
    rows = []
    for clip in clips:
        res = posecli.lift(clip, threads=threads)  # the defaults: fusion, foot locking, pan
        shifts = pan_shifts(clip, res.landmarks)
        truth_file = clip.with_name(clip.stem + ".truth.npz")
        truth = np.load(truth_file)["joints3d_cam"] if truth_file.exists() else None
        off_pw, off_c = res.trajectory.world[:, 0], res.trajectory.contacts
        for la in delays:
            recs, ms, rot = live_from_offline(res, lifter, la, fusion, shifts)
            ok = np.array([r["joints_3d"] is not None for r in recs])
            live = np.array([r["joints_3d"] if r["joints_3d"] else np.zeros((17, 3)) for r in recs])
            pw = np.array([r["pelvis_world"] or [np.nan] * 3 for r in recs])
            fc = np.array([r["foot_contact"] or [False, False] for r in recs])
            row = {"clip": clip.stem, "lookahead_s": la, "frames": len(recs),
                   "vs_offline_mm": aligned_mpjpe(live[ok], res.pose3d[ok]),
                   "pelvis_world_vs_offline_mm": float(np.nanmean(np.linalg.norm(pw[ok] - off_pw[ok], axis=-1)) * 1000),
                   "contacts_agree": float((fc[ok] == off_c[ok]).mean()),
                   "foot_slide_mm": foot_slide(live @ rot.T + pw[:, None], fc),
                   "offline_foot_slide_mm": foot_slide(res.trajectory.world, off_c),
                   "jitter_ms2": jitter(live[ok], res.fps), "offline_jitter_ms2": jitter(res.pose3d[ok], res.fps),
                   "session_ms_per_frame": ms}
            if truth is not None:
                row["vs_truth_mm"] = aligned_mpjpe(live[ok], truth[ok])
                row["offline_vs_truth_mm"] = aligned_mpjpe(res.pose3d[ok], truth[ok])
            rows.append(row)
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}),
                  flush=True)
    return rows


def stages(threads: int, frames: int = 90) -> dict:
    """CPU cost of the two threads' work, as ``posecli live`` runs them (the threads shared
    out: detector and lifter one each for 2): ms of the thread's own CPU time (immune to other
    processes' load, unlike wall time) per detected frame and per lift (one causal window,
    flip included), alone and with both threads running at once, plus the wall times."""
    import threading

    from posecli.live.run import build_models
    from posecli.options import LiftOptions
    from posecli.video import VideoReader

    tracker, lifter, _ = build_models(LiftOptions(threads=threads))
    images = [f.copy() for _, f in zip(range(frames), VideoReader(CLIP))]
    window = np.random.default_rng(0).normal(0, 0.3, (1, lifter.frames, 17, 2)).astype(np.float32)

    def detect(n):
        tracker.reset()
        c, w = time.thread_time(), time.perf_counter()
        for f in images[:n]:
            tracker(f)
        return (time.thread_time() - c) / n * 1e3, (time.perf_counter() - w) / n * 1e3

    def lift(n):
        c, w = time.thread_time(), time.perf_counter()
        for _ in range(n):
            lifter.windows(window)
        return (time.thread_time() - c) / n * 1e3, (time.perf_counter() - w) / n * 1e3
    detect(10), lift(3)  # warm up
    out = {"detect_alone": detect(len(images)), "lift_alone": lift(30)}
    both = {}
    th = threading.Thread(target=lambda: both.__setitem__("lift", lift(60)))
    th.start()
    both["detect"] = detect(len(images))
    th.join()
    out["detect_together"], out["lift_together"] = both["detect"], both["lift"]
    out = {k: {"cpu_ms": round(v[0], 1), "wall_ms": round(v[1], 1)} for k, v in out.items()}
    out["load"] = loadavg()
    return out


def expected_delay(lookahead: float, detect_ms: float, lift_ms: float, fps: float = 30.0) -> float:
    """The steady-state delay (ms) on free cores: the look-ahead (whole frames), the newest
    frame's detection, half a lift in progress on average, then its own lift."""
    from posecli.lifter.stream import TIME_SLACK
    ahead = np.ceil((lookahead - TIME_SLACK) * fps) / fps
    return float(ahead * 1000 + detect_ms + 1.5 * lift_ms)


def stream_run(clip: Path, delay: float | None, loops: int, extra: list[str]) -> dict:
    """Play ``clip`` in real time into ``posecli live - -o -``; per-frame delays."""
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", "posecli.cli", "live", "-", "-o", "-", *extra]
    if delay is not None:
        cmd += ["--delay", str(delay)]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    live = subprocess.Popen(cmd, stdin=read_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    os.close(read_fd)
    ready = live.stderr.readline()
    if not ready.startswith("live: reading"):
        raise RuntimeError(f"posecli live did not start: {ready}{live.stderr.read()}")
    load_before = loadavg()
    sent_at = time.monotonic()
    sender = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
                               "-stream_loop", str(loops), "-i", str(clip), "-f", "mpegts", "-"],
                              stdout=write_fd)
    os.close(write_fd)
    recs, got = [], []
    for line in live.stdout:
        got.append(time.monotonic())
        recs.append(json.loads(line))
    tail = live.stderr.read().strip().splitlines()
    live.wait()
    sender.wait()
    times = np.array([r["time"] for r in recs])
    own = np.array([r["delay_ms"] for r in recs])
    e2e = (np.array(got) - sent_at - times) * 1000
    steady = times >= STEADY_S

    def stats(a):
        return {"median": round(float(np.median(a)), 1), "max": round(float(a.max()), 1)} if len(a) else {}
    return {"clip": clip.stem, "lookahead_s": delay, "exit": live.returncode,
            "frames": len(recs), "dropped": recs[-1]["dropped"] if recs else None,
            "delay_ms": stats(own), "delay_ms_steady": stats(own[steady]),
            "end_to_end_ms": stats(e2e), "end_to_end_ms_steady": stats(e2e[steady]),
            "summary": tail[-1] if tail else "", "load_before": load_before, "load_after": loadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", type=Path, default=[CLIP])
    ap.add_argument("--delays", default="0,0.1,0.25,0.5")
    ap.add_argument("--loops", type=int, default=2, help="extra plays of the clip in the stream test")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--no-stages", action="store_true")
    ap.add_argument("--live-args", default="", help="more options for posecli live (quoted)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    delays = [float(d) for d in args.delays.split(",")]
    report = {"machine": f"{os.cpu_count()} CPUs", "load_start": loadavg()}
    if not args.no_stages:
        st = report["stages"] = stages(args.threads)
        print(json.dumps(st), flush=True)
        det, lift = st["detect_together"]["cpu_ms"], st["lift_together"]["cpu_ms"]
        report["expected_delay_ms"] = {d: round(expected_delay(d, det, lift), 1) for d in delays}
        print("expected steady-state delay on free cores (ms):", report["expected_delay_ms"], flush=True)
    if not args.no_accuracy:
        report["accuracy"] = accuracy(args.clips, delays, args.threads)
    if not args.no_stream:
        report["stream"] = []
        for d in delays:
            r = stream_run(args.clips[0], d, args.loops, args.live_args.split())
            report["stream"].append(r)
            print(json.dumps(r), flush=True)
    report["load_end"] = loadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
