"""Speed of posecli on this machine, in one run: stages, whole process, MediaPipe, window strategies.

    python benchmarks/bench_speed.py [VIDEO] [--frames 1000,10000] [--threads 2]
        [--mediapipe-python /tmp/mpvenv/bin/python] [--mediapipe-frames 1000] [--no-strategies]

1. Per-stage profile (in this process, on the first clip size): decode alone, decode + 2D
   detection (with the person-detector / landmark-model call counts), lifting, JSON writing, in
   ms/frame; and the detector's ms/frame with 1 and 2 TFLite threads.
2. Whole process, ``python -m posecli.cli lift CLIP -q`` as a child process, per clip size
   (the example clip looped to 1,000 and 10,000 frames, copied without re-encoding): wall time,
   frames/s and peak RSS of the child.
3. MediaPipe Pose (full model, video mode, its own Python loop with OpenCV decoding) on the same
   clip, in turn, with another interpreter (a throw-away venv: ``python3 -m venv /tmp/mpvenv &&
   /tmp/mpvenv/bin/pip install mediapipe==0.10.14``); skipped with a note when it is absent.
4. Window strategies of the lifter runtime on held-out data with known 3D (CMU subjects 07, 13,
   85 seen by fixed-seed virtual cameras, ground-truth 2D; and the shipped rendered clip's 2D):
   ours (seq2seq windows half a window apart, blended), one call per output frame with a centred
   window, and non-overlapping hard-cut windows: lifting ms/frame and cost relative to ours,
   MPJPE, and seam jitter: mean joint acceleration (mm/frame^2) on the frames touching a window
   boundary vs on all other frames.

Run it with ``PYTHONPATH`` pointing at another checkout to profile that code (e.g. before and
after a change): the same script, the same clips, in turn.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "walk_07_05.mp4"

MEDIAPIPE_SCRIPT = """
import sys, cv2, mediapipe as mp
cap = cv2.VideoCapture(sys.argv[1]); n = 0
with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)); n += 1
print(n)
"""


# ---- clips and child processes ------------------------------------------------------------------

def looped_clip(src: Path, frames: int, dest: Path) -> Path:
    """``src`` repeated until it has ``frames`` frames, stream-copied (no re-encoding)."""
    import imageio_ffmpeg

    from posecli.video import probe
    n = probe(src).num_frames or 1
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-stream_loop",
                    str(-(-frames // n) - 1), "-i", str(src), "-c", "copy", "-frames:v", str(frames),
                    str(dest)], check=True)
    return dest


def run_child(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run ``cmd``: (wall seconds, the child's peak RSS in MiB, stdout).

    Peak RSS is the child's VmHWM, polled from /proc (it only grows): ru_maxrss would count
    this large parent's pages, which the child holds between fork and exec.
    """
    wall, peak, out, _ = run_child_cpu(cmd, env)
    return wall, peak, out


def run_child_cpu(cmd: list[str], env: dict | None = None) -> tuple[float, float, str, float]:
    """As :func:`run_child`, plus the CPU seconds (user + system) of the child and of the
    processes it waited for (ffmpeg): on a shared machine CPU time moves less than wall time.
    The child runs in the temporary folder: ``python -m`` and ``-c`` put the working folder
    first on sys.path, so a child started in a checkout would import that checkout's posecli
    whatever its PYTHONPATH says."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as errs:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=errs, text=True, env=env,
                                cwd=tempfile.gettempdir())
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _vm_hwm_kib(proc.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.seek(0), errs.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {errs.read().strip()[-500:]}")
        return wall, peak / 1024, out.read(), cpu


def loadavg() -> str:
    """The 1-minute load average now (the machine is shared: every timing notes it)."""
    return f"{os.getloadavg()[0]:.1f}"


#: Counts the person detector's network runs (whole frame and each tile) of whatever posecli
#: is on the path, per frame of a clip, as ``posecli lift`` runs the tracker (``--person
#: auto``) and as ``posecli tracks`` / ``--person all`` do.
RUNS_SCRIPT = """
import sys, json
from posecli.detect2d import blazepose
runs = [0]
original = blazepose.PoseDetector.detect_once
def counted(self, *a, **k):
    runs[0] += 1
    return original(self, *a, **k)
blazepose.PoseDetector.detect_once = counted
from posecli import pipeline
out = {}
info, lm = pipeline.detect_video(sys.argv[1])[:2]        # as `posecli lift` (--person auto)
out["auto"], runs[0] = runs[0] / len(lm), 0
info, n, tracks = pipeline.track_video(sys.argv[1])[:3]  # as `posecli tracks`, --person all
out["all"] = runs[0] / n
print(json.dumps({"frames": n, "per_frame": out["auto"], "per_frame_all": out["all"],
                  "tracks": len(tracks)}))
"""


def detector_runs(clip: Path, code: str) -> dict:
    """The person detector's runs per frame on ``clip`` with the posecli at ``code``:
    {"per_frame": --person auto, "per_frame_all": every person, "frames", "tracks"}."""
    out = run_child([sys.executable, "-c", RUNS_SCRIPT, str(clip)],
                    {**os.environ, "PYTHONPATH": code})[2]
    return json.loads(out.strip().splitlines()[-1])


def one_frame_clip(src: Path, dest: Path) -> Path:
    """The first frame of ``src`` as a 1-frame H.264 clip."""
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(src),
                    "-frames:v", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(dest)], check=True)
    return dest


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


# ---- 1. per-stage profile ------------------------------------------------------------------------

def stage_profile(video: Path, threads: int, detector: str = "blazepose-full") -> dict:
    """Seconds of each stage of the default ``posecli lift`` on one clip, in this process:
    decode; detect (tracking, decode excluded); camera (the background's flow, measured in the
    same pass); lift (the lifter, the fusion with BlazePose's 3D, foot locking, the path);
    json. The models are loaded first (start-up is timed separately, ``--startup``)."""
    from posecli import pipeline, skeleton
    from posecli.export.json import to_dict
    from posecli.options import LiftOptions
    from posecli.video import iter_frames, probe

    options = LiftOptions(threads=threads, detector=detector)
    models = pipeline.Models(options)
    models.lifter, models.tracker, models.fusion  # load outside the timings
    info = probe(video)
    t0 = time.perf_counter()
    n = sum(1 for _ in iter_frames(video, info))
    t_decode = time.perf_counter() - t0

    calls = count_detector_calls()
    background = _Timed(pipeline._background(options))
    t0 = time.perf_counter()
    info, track, det = pipeline.detect_person(video, options, models=models, background=background)
    t_track = time.perf_counter() - t0
    calls.restore()

    t0 = time.perf_counter()
    camera = pipeline._camera_motion(background.inner, info, options)
    result = pipeline._lift_track(video, info, track, det, options, models, None, camera)
    t_lift = time.perf_counter() - t0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        Path(d, "r.json").write_text(json.dumps(to_dict(result), separators=(",", ":")))
    t_json = time.perf_counter() - t0
    return {"frames": n, "decode": t_decode, "detect": t_track - t_decode - background.seconds,
            "camera": background.seconds, "decode+detect+camera": t_track, "lift": t_lift,
            "json": t_json, "person_detector_calls": calls.counts["detect"],
            "landmark_calls": calls.counts["landmarks"],
            "skeleton_ok": bool(np.isfinite(result.pose3d).all()) and skeleton.NUM_JOINTS == 17}


def print_stages(st: dict) -> None:
    """The table of :func:`stage_profile`'s figures, ms and frames/s per stage."""
    n = st["frames"]
    print(f"{'stage':<22}{'ms/frame':>10}{'frames/s':>10}")
    for k in ("decode", "detect", "camera", "decode+detect+camera", "lift", "json"):
        print(f"{k:<22}{1000 * st[k] / n:>10.2f}{n / st[k]:>10.1f}")
    total = st["decode+detect+camera"] + st["lift"] + st["json"]
    print(f"{'total (piped)':<22}{1000 * total / n:>10.2f}{n / total:>10.1f}")
    print(f"person detector ran on {st['person_detector_calls']} of {n} frames, "
          f"landmark model on {st['landmark_calls']}")


class _Timed:
    """A :class:`posecli.camera_motion.BackgroundMotion` whose ``add`` calls are timed."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, 0.0

    def add(self, *a) -> None:
        t0 = time.perf_counter()
        self.inner.add(*a)
        self.seconds += time.perf_counter() - t0


class count_detector_calls:
    """Count the person-detector and landmark-model runs (``__call__`` patched on the two model
    classes of :mod:`posecli.detect2d.blazepose`, which the one-person and tracking solutions share)."""

    def __init__(self):
        from posecli.detect2d import blazepose
        self.counts, self.saved = {"detect": 0, "landmarks": 0}, {}
        classes = {"detect": getattr(blazepose, "PoseDetector", None),
                   "landmarks": getattr(blazepose, "PoseLandmarker", None)}
        if None in classes.values():  # another detector layout: counts not available
            self.counts = {k: None for k in self.counts}
            return
        for name, cls in classes.items():
            original = cls.__call__
            self.saved[name] = (cls, original)

            def wrapped(*a, _name=name, _orig=original, **k):
                self.counts[_name] += 1
                return _orig(*a, **k)
            cls.__call__ = wrapped

    def restore(self) -> None:
        for cls, original in self.saved.values():
            cls.__call__ = original


def detector_threads(video: Path, frames: int = 200) -> dict[int, float]:
    """Detector ms/frame (decode excluded) with 1 and 2 TFLite threads, first ``frames`` frames."""
    from posecli.detect2d import create_detector
    from posecli.video import iter_frames
    imgs = []
    for f in iter_frames(video):
        imgs.append(f.copy())
        if len(imgs) == frames:
            break
    out = {}
    for threads in (1, 2):
        det = create_detector("blazepose-full", threads=threads)
        det.reset()
        det(imgs[0])  # warm-up
        det.reset()
        t0 = time.perf_counter()
        for f in imgs:
            det(f)
        out[threads] = 1000 * (time.perf_counter() - t0) / len(imgs)
    return out


# ---- 4. window strategies -------------------------------------------------------------------------

def strategy_data(max_frames: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """[(name, x2d (N,17,2) normalised, truth (N,17,3) metres root-relative)], held-out only."""
    from posecli import skeleton
    data = []
    try:
        from posecli.training.evaluate import load_eval_data
        seqs, *_ = load_eval_data("cmu", 17, cameras_per_clip=1)
        total = 0
        for s in seqs:
            if total >= max_frames:
                break
            k = min(len(s.x), max_frames - total)
            data.append((f"cmu {s.subject} {s.action}", s.x[:k], s.y[:k]))
            total += k
    except Exception as e:  # shared data absent: the rendered example alone
        print(f"note: held-out CMU data not used ({type(e).__name__}: {e})")
    truth = np.load(REPO / "examples" / "walk_07_05.truth.npz")
    y = truth["joints3d_cam"] - truth["joints3d_cam"][:, :1]
    x = skeleton.normalize_to_frame(truth["joints2d"], int(truth["width"]), int(truth["height"]))
    data.append(("rendered walk_07_05", x, y))
    return data


def acceleration(p: np.ndarray) -> np.ndarray:
    """(N, J, 3) metres -> (N,) mean joint acceleration in mm/frame^2 (0 at both ends)."""
    a = np.zeros(len(p))
    a[1:-1] = 1000 * np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean(axis=-1)
    return a


def compare_strategies(threads: int, max_frames: int) -> list[dict]:
    """Cost, accuracy and seam jitter of each window strategy with the shipped lifter."""
    import inspect

    import torch

    from posecli.lifter import load_lifter
    if "strategy" not in inspect.signature(load_lifter).parameters:
        print("note: this checkout has no window strategies; comparison skipped")
        return []
    from posecli.lifter.windows import STRATEGIES, seams

    torch.set_num_threads(threads)
    data = strategy_data(max_frames)
    rows = []
    for strategy in STRATEGIES:
        lifter = load_lifter(strategy=strategy)
        lifter(data[0][1][:lifter.frames * 2])  # warm-up
        t = frames = 0
        err, seam_acc, other_acc = [], [], []
        for _, x, y in data:
            best = float("inf")
            for _ in range(1 if strategy == "centre" else 3):  # best of 3: the machine is shared
                t0 = time.perf_counter()
                p = lifter(x)
                best = min(best, time.perf_counter() - t0)
            t += best
            frames += len(x)
            p = p - p[:, :1]
            err.append(1000 * np.linalg.norm(p - y, axis=-1).mean(axis=-1))
            acc = acceleration(p)
            s = seams(len(x), lifter.frames, lifter.stride, strategy)
            at = np.zeros(len(x), bool)
            at[np.clip(np.concatenate([s - 1, s]), 1, len(x) - 2)] = len(s) > 0
            inner = np.zeros(len(x), bool)
            inner[1:-1] = True
            seam_acc.append(acc[at & inner])
            other_acc.append(acc[~at & inner])
        seam = np.concatenate(seam_acc)
        rows.append({"strategy": strategy, "frames": frames, "ms_per_frame": 1000 * t / frames,
                     "mpjpe_mm": float(np.concatenate(err).mean()),
                     "acc_seams": float(seam.mean()) if len(seam) else None,
                     "acc_elsewhere": float(np.concatenate(other_acc).mean()), "seam_frames": int(len(seam)),
                     "window": lifter.frames, "stride": lifter.stride})
    base = rows[0]["ms_per_frame"]
    for r in rows:
        r["cost_vs_ours"] = r["ms_per_frame"] / base
    return rows


def interleaved(clip: Path, args, tmp: Path) -> dict:
    """Whole process of this code, ``--compare-code`` and MediaPipe, in turn, ``repeats`` times:
    on a shared machine only ratios measured side by side mean something. Medians, seconds;
    the ratio is posecli's wall time over MediaPipe's (0.5x: twice MediaPipe's speed)."""
    from posecli.video import probe
    n = probe(clip).num_frames
    tools = {"posecli (this)": str(REPO)}
    if args.compare_code:
        tools[f"posecli ({args.compare_code})"] = str(args.compare_code)
    script = tmp / "mp_pose.py"
    script.write_text(MEDIAPIPE_SCRIPT)
    walls: dict[str, list[float]] = {k: [] for k in tools}
    cpus: dict[str, list[float]] = {k: [] for k in tools}
    loads: list[str] = [loadavg()]
    have_mp = Path(args.mediapipe_python).exists()
    if have_mp:
        walls["mediapipe"], cpus["mediapipe"] = [], []
    for _ in range(args.repeats):
        for name, code in tools.items():
            with tempfile.TemporaryDirectory() as out:
                env = {**os.environ, "PYTHONPATH": code}
                w, _, _, c = run_child_cpu([sys.executable, "-m", "posecli.cli", "lift", str(clip), "-o",
                                            out, "-q", "--threads", str(args.threads)], env)
                walls[name].append(w), cpus[name].append(c)
        if have_mp:
            w, _, _, c = run_child_cpu([args.mediapipe_python, str(script), str(clip)])
            walls["mediapipe"].append(w), cpus["mediapipe"].append(c)
        loads.append(loadavg())
    med = {k: float(np.median(v)) for k, v in walls.items()}
    cpu = {k: float(np.median(v)) for k, v in cpus.items()}
    runs = {k: detector_runs(clip, code) for k, code in tools.items()} if not args.no_runs else {}
    print(f"\n2b. in turn, {args.repeats} rounds, {n}-frame clip (load average {', '.join(loads)}): "
          "median wall s (frames/s), median CPU s" + (", time vs MediaPipe's" if have_mp else "")
          + ", person-detector runs per frame (lift --person auto / all)")
    for k, v in med.items():
        ratio = f"{v / med['mediapipe']:.2f}x" if have_mp else ""
        r = f"{runs[k]['per_frame']:.3f} / {runs[k]['per_frame_all']:.3f}" if k in runs else ""
        print(f"{k:<32}{v:>7.1f} s ({n / v:6.1f} frames/s) CPU {cpu[k]:6.1f} s {ratio:>7} {r:>7}"
              f"   runs: {', '.join(f'{w:.1f}' for w in walls[k])}")
    return {"frames": n, "walls": walls, "cpus": cpus, "median": med, "median_cpu": cpu,
            "loads": loads, "detector_runs": runs}


def startup(args, tmp: Path) -> dict:
    """``posecli lift`` on a 1-frame clip and on the example, this code and ``--compare-code``
    in turn, ``repeats`` times: median wall seconds (start-up dominates the first)."""
    clips = {"1 frame": one_frame_clip(args.video, tmp / "one.mp4"), args.video.name: args.video}
    tools = {"this": str(REPO)}
    if args.compare_code:
        tools[str(args.compare_code)] = str(args.compare_code)
    walls = {(c, t): [] for c in clips for t in tools}
    loads = [loadavg()]
    for _ in range(args.repeats):
        for c, clip in clips.items():
            for t, code in tools.items():
                with tempfile.TemporaryDirectory() as out:
                    walls[c, t].append(run_child([sys.executable, "-m", "posecli.cli", "lift", str(clip),
                                                  "-o", out, "-q", "--threads", str(args.threads)],
                                                 {**os.environ, "PYTHONPATH": code})[0])
        loads.append(loadavg())
    print(f"\n5. start-up: posecli lift, in turn, {args.repeats} rounds (load average {', '.join(loads)}): "
          "median wall s")
    for (c, t), v in walls.items():
        print(f"{c:<20}{t:<28}{np.median(v):>7.2f} s   runs: {', '.join(f'{w:.2f}' for w in v)}")
    return {f"{c} | {t}": {"median": float(np.median(v)), "runs": v} for (c, t), v in walls.items()}


# ---- main ------------------------------------------------------------------------------------------

def machine_note(threads: int) -> str:
    import torch
    load = os.getloadavg()
    return (f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} "
            f"(1 / 5 min) at start; python {platform.python_version()}, torch {torch.__version__}; "
            f"posecli threads {threads}; code {Path(__import__('posecli').__file__).parent.parent}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path, nargs="?", default=EXAMPLE)
    ap.add_argument("--frames", default="1000,10000", help="clip sizes, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mediapipe-python", default="/tmp/mpvenv/bin/python")
    ap.add_argument("--mediapipe-frames", default="1000", help="clip sizes MediaPipe runs on")
    ap.add_argument("--no-strategies", action="store_true")
    ap.add_argument("--no-stages", action="store_true")
    ap.add_argument("--strategy-frames", type=int, default=1000, help="held-out frames for the strategies")
    ap.add_argument("--json", type=Path, help="also write every number here")
    ap.add_argument("--compare-code", type=Path, help="another checkout (e.g. before a change): its whole "
                    "process runs in turn with this one and MediaPipe, --repeats times, medians reported")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-whole", action="store_true", help="skip section 2-3 (one run per clip size)")
    ap.add_argument("--no-interleaved", action="store_true", help="skip the in-turn comparison "
                    "(run unless this is given)")
    ap.add_argument("--no-runs", action="store_true", help="skip counting the detector's runs")
    ap.add_argument("--startup", action="store_true", help="also time a 1-frame clip and the example")
    args = ap.parse_args()
    args.video = args.video.resolve()
    sizes = [int(s) for s in args.frames.split(",") if s]
    mp_sizes = {int(s) for s in args.mediapipe_frames.split(",") if s}
    print(machine_note(args.threads))
    report: dict = {"machine": machine_note(args.threads)}

    with tempfile.TemporaryDirectory() as tmp:
        from posecli.video import probe
        clips = {n: looped_clip(args.video, n, Path(tmp) / f"clip_{n}.mp4") for n in sizes}

        if not args.no_stages:
            st = stage_profile(clips[sizes[0]], args.threads)
            report["stages"] = st
            n = st["frames"]
            print(f"\n1. stages, {n}-frame clip of {args.video.name}, in-process, {args.threads} threads")
            print_stages(st)
            th = detector_threads(clips[sizes[0]])
            report["detector_threads_ms"] = th
            print("detector alone, ms/frame: " + ", ".join(f"{k} TFLite thread(s) {v:.2f}" for k, v in th.items()))

        if not args.no_whole:
            print("\n2-3. whole process (child), posecli vs MediaPipe Pose on the same clip, in turn")
            print(f"{'tool':<12}{'frames':>8}{'wall s':>9}{'frames/s':>10}{'peak RSS MiB':>14}{'time vs MP':>14}")
            env = {**os.environ}
            report["whole"] = []
            have_mp = Path(args.mediapipe_python).exists()
            for size, clip in clips.items():
                n = probe(clip).num_frames  # stream copy cuts at a packet: the true count
                with tempfile.TemporaryDirectory() as out:
                    wall, rss, _ = run_child([sys.executable, "-m", "posecli.cli", "lift", str(clip), "-o", out,
                                              "-q", "--threads", str(args.threads)], env)
                row = {"tool": "posecli", "frames": n, "wall_s": wall, "fps": n / wall, "rss_mib": rss}
                mp_row = None
                if size in mp_sizes and have_mp:
                    script = Path(tmp) / "mp_pose.py"
                    script.write_text(MEDIAPIPE_SCRIPT)
                    mwall, mrss, mout = run_child([args.mediapipe_python, str(script), str(clip)])
                    mp_row = {"tool": "mediapipe", "frames": int(mout.split()[-1]), "wall_s": mwall,
                              "fps": int(mout.split()[-1]) / mwall, "rss_mib": mrss}
                    row["time_vs_mediapipe"] = wall / mwall
                for r in filter(None, (row, mp_row)):
                    report["whole"].append(r)
                    ratio = f"{r['time_vs_mediapipe']:.2f}x" if "time_vs_mediapipe" in r else ""
                    print(f"{r['tool']:<12}{r['frames']:>8}{r['wall_s']:>9.1f}{r['fps']:>10.1f}{r['rss_mib']:>14.0f}{ratio:>14}")
            if not have_mp:
                print(f"note: MediaPipe not found at {args.mediapipe_python}: ratio skipped "
                      "(python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.14)")

        if not args.no_interleaved:
            report["interleaved"] = interleaved(clips[sizes[0]], args, Path(tmp))
        if args.startup:
            report["startup"] = startup(args, Path(tmp))

    if not args.no_strategies:
        rows = compare_strategies(args.threads, args.strategy_frames)
        report["strategies"] = rows
        if rows:
            print(f"\n4. window strategies, shipped lifter (T={rows[0]['window']}, flip TTA), "
                  f"{rows[0]['frames']} held-out frames (GT 2D)")
            print(f"{'strategy':<10}{'ms/frame':>10}{'cost':>7}{'MPJPE mm':>10}{'acc seams':>11}"
                  f"{'acc else':>10}{'ratio':>7}  (acc: mean joint acceleration, mm/frame^2)")
            for r in rows:
                seam = f"{r['acc_seams']:.2f}" if r["acc_seams"] is not None else "none"
                ratio = f"{r['acc_seams'] / r['acc_elsewhere']:.2f}" if r["acc_seams"] is not None else "-"
                print(f"{r['strategy']:<10}{r['ms_per_frame']:>10.3f}{r['cost_vs_ours']:>6.1f}x"
                      f"{r['mpjpe_mm']:>10.1f}{seam:>11}{r['acc_elsewhere']:>10.2f}{ratio:>7}")
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
