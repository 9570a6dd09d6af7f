"""Multi-person tracking on composite clips with known truth: identity switches, mixed
skeletons, left/right swaps, skeletons on nobody.

    python benchmarks/multi_person.py [--frames 129] [--tracker new|single] [--json out.json]

The clips are built from the rendered example (examples/walk_07_05.mp4, one person walking
towards the camera, with its 2D truth in walk_07_05.truth.npz):
- ``side``: two copies side by side (the second mirrored and 40 frames later), 1280x480;
- ``cross``: two copies cut out of their background (the rendered body is saturated, the wall
  and floor are not) and pasted on one wide background, sliding past each other in opposite
  directions so that one hides the other mid-clip; the second person's shirt is recoloured
  (``cross_same``: not recoloured, both dressed alike);
- ``leave``: one person sliding out of the frame to the left and back;
- ``single``: the example itself (one person; the detector's runs per frame).
Truth per person and frame: the H36M-17 2D joints (pixels), shifted / mirrored like the pixels.

Metrics (per clip):
- identity switches: a truth person's matched track id changes between frames where both are
  matched (matching: greedy on the mean limb-joint error in torso lengths, at most 0.5);
  track switches: a track id that moves to another person; also reported: the count of output
  pelvis jumps > 10 % of the frame width between frames; the person detector's network runs
  per frame (whole frame and tiles) and the first frame each track is seen;
- mixed skeletons: an output skeleton with two or more limb joints (confidence >= 0.3) nearer
  another person's joints than its own person's by more than half a torso (a limb or more on
  someone else); stray joints: skeletons with exactly one such joint (typically a hidden wrist
  or elbow guessed onto the person behind);
- left/right swap rate: fraction of matched frames where the mirrored labelling of the limbs
  fits the truth better than the given one;
- ghosts: output skeletons matched to no truth person (mean limb-joint error > 0.5 torso
  against every person, either labelling).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# H36M-17 <-> BlazePose-33 for the 12 limb joints both measure (hips, knees, ankles, shoulders,
# elbows, wrists) and the mirror permutation of H36M-17.
H36M_LIMBS = np.array([1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16])
BP_LIMBS = np.array([24, 26, 28, 23, 25, 27, 11, 13, 15, 12, 14, 16])
H36M_FLIP = np.array([0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13])


def load_example(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frames (N, 480, 640, 3) uint8 RGB, truth (N, 17, 2) px) of the rendered example."""
    from posecli.video import iter_frames

    frames = np.stack(list(iter_frames(REPO / "examples" / "walk_07_05.mp4")))
    truth = np.load(REPO / "examples" / "walk_07_05.truth.npz")["joints2d"].astype(np.float64)
    return (frames[:n], truth[:n]) if n else (frames, truth)


def body_mask(frame: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(H, W) bool: the rendered body, inside the box around its 2D truth ``joints`` (17, 2)
    enlarged by 20 %: saturated clothes, the over-exposed face (V > 235) and dark hair, not the
    pale wall and floor."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    m = ((hsv[..., 1] > 70) | (hsv[..., 2] > 235) | (hsv[..., 2] < 60)).astype(np.uint8)
    lo, hi = joints.min(0), joints.max(0)
    pad = 0.2 * (hi - lo).max()
    box = np.zeros_like(m)
    x0, y0 = np.maximum((lo - pad).astype(int), 0)
    x1, y1 = (hi + pad).astype(int)
    box[y0:y1, x0:x1] = 1
    m = cv2.morphologyEx(m & box, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    return cv2.dilate(m, np.ones((3, 3), np.uint8)) > 0


def _mirror(frames: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = frames.shape[2]
    t = truth[:, H36M_FLIP].copy()
    t[..., 0] = w - t[..., 0]
    return frames[:, :, ::-1], t


def _recolour(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = frame.copy()
    out[mask] = frame[mask][:, [1, 2, 0]]  # green shirt -> blue, cyan legs -> magenta-ish
    return out


def _lagged(n: int, lag: int) -> np.ndarray:
    """(n,) frame indices ``lag`` frames ahead, walking back at the end (no jump)."""
    i = np.arange(n) + lag
    return np.where(i < n, i, 2 * (n - 1) - i).clip(0, n - 1)


def side_by_side(frames: np.ndarray, truth: np.ndarray, lag: int = 40):
    """-> (frames (N, H, 2W, 3), truth (N, 2, 17, 2)); person 0 left, person 1 right."""
    n, w = len(frames), frames.shape[2]
    mf, mt = _mirror(frames, truth)
    idx = _lagged(n, lag)
    out = np.concatenate([frames, mf[idx]], axis=2)
    t1 = mt[idx].copy()
    t1[..., 0] += w
    return out, np.stack([truth, t1], axis=1)


def crossing(frames: np.ndarray, truth: np.ndarray, width: int = 960, lag: int = 40,
             travel: float = 620.0, recolour: bool = True):
    """Two people cut out and slid past each other on a wide background.

    Person 0 moves right by ``travel`` px over the clip, person 1 (mirrored, shirt recoloured,
    ``lag`` frames later in the walk) moves left and is pasted in front (shirt recoloured
    unless ``recolour`` is False: then only motion tells them apart).
    -> (frames (N, H, width, 3), truth (N, 2, 17, 2)).
    """
    n, h, w = frames.shape[:3]
    mf, mt = _mirror(frames, truth)
    idx = _lagged(n, lag)
    bg = np.full((h, width, 3), 0, np.uint8)
    bg[:] = np.median(frames[:, :, :40].reshape(-1, 3), axis=0).astype(np.uint8)  # wall colour
    bg[h // 2:] = np.array([150, 150, 150], np.uint8)
    outs, truths = [], []
    for t in range(n):
        s = t / max(n - 1, 1)
        dx0 = int(round(-w / 2 + width * 0.15 + travel * s))  # person 0 centre moves right
        dx1 = int(round(-w / 2 + width * 0.85 - travel * s))  # person 1 centre moves left
        img = bg.copy()
        for src, jt, dx, rec in ((frames[t], truth[t], dx0, False),
                                 (mf[idx[t]], mt[idx[t]], dx1, recolour)):
            m = body_mask(src, jt)
            if rec:
                src = _recolour(src, m)
            x0, x1 = max(0, dx), min(width, dx + w)
            sm, ss = m[:, x0 - dx:x1 - dx], src[:, x0 - dx:x1 - dx]
            img[:, x0:x1][sm] = ss[sm]
        outs.append(img)
        truths.append(np.stack([truth[t] + [dx0, 0], mt[idx[t]] + [dx1, 0]]))
    return np.stack(outs), np.stack(truths)


def leaving(frames: np.ndarray, truth: np.ndarray, out_frames: tuple[int, int] = (50, 80)):
    """One person sliding out of the frame to the left and back. -> (frames, truth (N, 1, 17, 2))."""
    n, h, w = frames.shape[:3]
    a, b = out_frames
    outs, truths = [], []
    bg = np.median(frames[:, :, :40].reshape(-1, 3), axis=0).astype(np.uint8)
    for t in range(n):
        # shift reaches -w (fully out) between frames a and b, ramps over 25 frames either side
        ramp = np.clip(min((t - (a - 25)) / 25, ((b + 25) - t) / 25), 0, 1)
        dx = int(round(-0.8 * w * ramp))
        img = np.empty_like(frames[t])
        img[:] = bg
        x0 = max(0, dx)
        img[:, x0:w + dx] = frames[t][:, x0 - dx:w]
        outs.append(img)
        truths.append((truth[t] + [dx, 0])[None])
    return np.stack(outs), np.stack(truths)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def _torso(t17: np.ndarray) -> float:
    return float(np.linalg.norm(t17[8] - t17[0]))


def evaluate(dets: list[list], truth: np.ndarray, width: int, height: int) -> dict:
    """Score tracker output against the truth.

    Args:
        dets: per frame, a list of (track_id, xy (33, 2) px, conf (33,)).
        truth: (N, P, 17, 2) px.
    """
    n, p = truth.shape[:2]
    last_id = [None] * p
    switches = track_switches = mixed = stray = ghosts = matched = 0
    swaps = np.zeros(p)
    per_person = np.zeros(p)
    track_person: dict = {}
    jumps = 0
    prev_pelvis: dict = {}
    for t in range(n):
        tr = truth[t]
        fr = dets[t]
        for tid, xy, _ in fr:
            pel = xy[[23, 24]].mean(0)
            if tid in prev_pelvis and prev_pelvis[tid][0] == t - 1 \
                    and np.linalg.norm(pel - prev_pelvis[tid][1]) > 0.1 * width:
                jumps += 1  # (between consecutive frames: a re-identified person may have moved)
            prev_pelvis[tid] = (t, pel)
        # match skeletons to people on the limb joints (either labelling), greedily
        cost = np.full((len(fr), p), np.inf)
        for a, (_, xy, conf) in enumerate(fr):
            ok = conf[BP_LIMBS] >= 0.3
            if not ok.any():
                continue
            for i in range(p):
                e = min(np.linalg.norm(xy[BP_LIMBS] - tr[i, perm][H36M_LIMBS], axis=1)[ok].mean()
                        for perm in (np.arange(17), H36M_FLIP))
                cost[a, i] = e / _torso(tr[i])
        pairs, used_a, used_i = [], set(), set()
        for c, a, i in sorted((cost[a, i], a, i) for a in range(len(fr)) for i in range(p)):
            if c <= 0.5 and a not in used_a and i not in used_i:
                pairs.append((a, i)), used_a.add(a), used_i.add(i)
        ghosts += sum(1 for a in range(len(fr)) if a not in used_a)
        for a, i in pairs:
            tid, xy, conf = fr[a]
            matched += 1
            if last_id[i] is not None and last_id[i] != tid:
                switches += 1
            last_id[i] = tid
            track_switches += track_person.get(tid, i) != i
            track_person[tid] = i
            per_person[i] += 1
            own = tr[i, H36M_LIMBS]
            lim = xy[BP_LIMBS]
            ok = conf[BP_LIMBS] >= 0.3
            e_keep = np.linalg.norm(lim - own, axis=1)
            e_flip = np.linalg.norm(lim - tr[i, H36M_FLIP][H36M_LIMBS], axis=1)
            swaps[i] += bool(e_flip[ok].mean() < e_keep[ok].mean()) if ok.any() else 0
            if p > 1:
                others = [j for j in range(p) if j != i]
                e_own = np.minimum(e_keep, e_flip)
                e_other = np.min([np.linalg.norm(lim[:, None] - tr[j][None], axis=2).min(1)
                                  for j in others], axis=0)
                on_other = int((ok & (e_other + 0.5 * _torso(tr[i]) < e_own)).sum())
                mixed += on_other >= 2
                stray += on_other == 1
    return {"frames": n, "people": p, "matched": matched, "matched_per_person": per_person.tolist(),
            "id_switches": switches, "track_switches": track_switches,
            "id_switches_per_1000": 1000 * (switches + track_switches) / max(n, 1),
            "pelvis_jumps": jumps, "mixed_skeletons": mixed, "stray_joints": stray,
            "ghosts": ghosts,
            "lr_swap_rate": float(swaps.sum() / max(matched, 1)),
            "lr_swap_rate_per_person": (swaps / np.maximum(per_person, 1)).tolist()}


class DetectorRuns:
    """Counts the person detector's network runs (whole frame and each tile) while active:
    ``with DetectorRuns() as runs: ...; runs.count``."""

    def __enter__(self):
        from posecli.detect2d import blazepose

        self.cls, self.count = blazepose.PoseDetector, 0
        self.original = self.cls.detect_once

        def counted(det, *a, **k):
            self.count += 1
            return self.original(det, *a, **k)
        self.cls.detect_once = counted
        return self

    def __exit__(self, *exc):
        self.cls.detect_once = self.original


def run_tracker(frames: np.ndarray, kind: str = "new", threads: int = 2, **schedule
                ) -> tuple[list, float]:
    """-> (per frame [(track_id, xy, conf)], seconds per frame). ``single``: the one-person
    BlazePose solution (track id 1 always), for the before/after comparison. ``schedule``:
    PoseTracker options (detect_every, full_every, ...)."""
    return run_tracker_counted(frames, kind, threads, **schedule)[:2]


def run_tracker_counted(frames: np.ndarray, kind: str = "new", threads: int = 2, **schedule
                        ) -> tuple[list, float, int]:
    """As :func:`run_tracker`, plus the person detector's network runs."""
    from posecli.detect2d import create_detector, create_tracker

    if kind == "new" and schedule:
        from posecli.detect2d.solution import PoseTracker
        det = PoseTracker(threads=threads, **schedule)
    else:
        det = create_tracker(threads=threads) if kind == "new" else create_detector(threads=threads)
    det.reset()
    out = []
    with DetectorRuns() as runs:
        t0 = time.perf_counter()
        for f in frames:
            r = det(np.ascontiguousarray(f))
            if kind == "new":
                out.append([(d.track_id, d.xy, d.conf) for d in r])
            else:
                out.append([] if r is None else [(1, r.xy, r.conf)])
        spf = (time.perf_counter() - t0) / len(frames)
    return out, spf, runs.count


def first_frames(dets: list) -> dict[int, int]:
    """{track id: first frame it is seen}."""
    first: dict[int, int] = {}
    for i, fr in enumerate(dets):
        for d in fr:
            first.setdefault(d[0], i)
    return first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--tracker", default="new", choices=["new", "single"])
    ap.add_argument("--clips", default="side,cross,leave")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--schedule", default=None, help="PoseTracker options as JSON, e.g. "
                    "'{\"detect_every\": 15, \"full_every\": 60}' (default: the shipped ones)")
    args = ap.parse_args()
    schedule = json.loads(args.schedule) if args.schedule else {}
    frames, truth = load_example(args.frames)
    makers = {"single": lambda f, t: (f, t[:, None]), "side": side_by_side, "cross": crossing,
              "cross_same": lambda f, t: crossing(f, t, recolour=False),
              "leave": lambda f, t: leaving(f, t)}
    results = {}
    for name in args.clips.split(","):
        clip, tr = makers[name](frames, truth)
        dets, spf, runs = run_tracker_counted(clip, args.tracker, args.threads, **schedule)
        r = evaluate(dets, tr, clip.shape[2], clip.shape[1])
        r["ms_per_frame"] = 1000 * spf
        r["detector_runs_per_frame"] = runs / len(clip)
        r["first_frames"] = first_frames(dets)
        r["tracks"] = len({d[0] for fr in dets for d in fr})
        results[name] = r
        print(name, json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
