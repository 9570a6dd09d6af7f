"""Following several people from frame to frame: quality gates, association, re-identification
and left/right consistency. Pure numpy (plus OpenCV for colour histograms); no model runs here.

The solution (:mod:`.solution`) turns each frame into candidate poses (one per person it looked
at) and hands them to :class:`Tracker.update`, which gives each one a stable identity.

Identities are kept by, in order of trust:
1. the ROI a candidate came from (a track's own landmarks from the previous frame), accepted
   when its body centre lies where the track's constant-velocity motion model expects it;
2. for the other candidates (fresh detections, or a track's candidate that jumped), a greedy
   match against every live or recently lost track on a cost mixing the motion-predicted centre
   distance, size and a clothing colour histogram of the torso (re-identification after an
   occlusion or a short exit);
3. a new identity otherwise.
Two candidates that are the same person (two tracks' ROIs converged on one body) are merged
before that, keeping the one that continues its own track best, so one body never carries two
identities and the abandoned track is left to be re-found.

Units: pixels in the frame, x right, y down; scale = a person's torso length in pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from posecli import skeleton
from posecli.detect2d.boxes import iou, points_box
from posecli.skeleton import Layout

__all__ = ["BodySpec", "BLAZEPOSE33", "COCO17", "Candidate", "Track", "Tracker", "body_scale", "centre",
           "plausible", "outside_frame", "oks", "fix_left_right", "colour_histogram",
           "histogram_distance"]


@dataclass(frozen=True)
class BodySpec:
    """What the tracker needs to know about a keypoint layout (indices into its K keypoints)."""
    shoulders: tuple[int, int]                 # (left, right)
    hips: tuple[int, int]                      # (left, right)
    limbs: tuple[tuple[int, int], ...]         # bones checked against the torso length
    arms: tuple[tuple[int, int], ...]          # (left, right) index pairs swapped with the arms
    legs: tuple[tuple[int, int], ...]          # likewise the legs (and feet)
    sigmas: tuple[float, ...]                  # per-keypoint OKS falloff, fraction of the scale


def body_spec(layout: Layout, sigmas: tuple[float, ...]) -> BodySpec:
    """The tracker's view of a keypoint layout from :mod:`posecli.skeleton` (names, left/right)."""
    ix = layout.names.index
    pairs = list(zip(layout.left, layout.right))
    arm = ("shoulder", "elbow", "wrist", "pinky", "index", "thumb")
    leg = ("hip", "knee", "ankle", "heel", "foot_index")
    side = lambda i: layout.names[i][2:]  # noqa: E731  ("l_knee" -> "knee")
    return BodySpec(
        shoulders=(ix("l_shoulder"), ix("r_shoulder")), hips=(ix("l_hip"), ix("r_hip")),
        limbs=tuple((ix(f"{s}_{a}"), ix(f"{s}_{b}")) for s in "lr"
                    for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))),
        arms=tuple((l, r) for l, r in pairs if side(l) in arm),
        legs=tuple((l, r) for l, r in pairs if side(l) in leg),
        sigmas=sigmas)


#: BlazePose's 33 landmarks (face points are left alone by the left/right fix: the face model
#: part is reliable and the head's facing is what the limbs are checked against implicitly).
BLAZEPOSE33 = body_spec(skeleton.BLAZEPOSE33, tuple(
    [0.05] * 11 + [0.08, 0.08, 0.07, 0.07, 0.06, 0.06] + [0.06] * 6
    + [0.1, 0.1, 0.09, 0.09, 0.09, 0.09] + [0.09] * 4))

#: COCO's 17 keypoints (HRNet), with the same per-joint falloffs as BlazePose's.
COCO17 = body_spec(skeleton.COCO17, tuple(
    [0.05] * 5 + [0.08, 0.08, 0.07, 0.07, 0.06, 0.06, 0.1, 0.1, 0.09, 0.09, 0.09, 0.09]))


# ---------------------------------------------------------------------------------------------
# Pure per-pose measures
# ---------------------------------------------------------------------------------------------

def centre(xy: np.ndarray, spec: BodySpec = BLAZEPOSE33) -> np.ndarray:
    """(2,) body centre: midpoint of the mid-shoulder and mid-hip points (pixels)."""
    return (xy[list(spec.shoulders)].mean(0) + xy[list(spec.hips)].mean(0)) / 2


def body_scale(xy: np.ndarray, spec: BodySpec = BLAZEPOSE33) -> float:
    """Torso length in pixels (mid-shoulder to mid-hip), at least the shoulder and hip widths
    so that a torso pointing at the camera still has a size."""
    sh, hp = xy[list(spec.shoulders)], xy[list(spec.hips)]
    torso = float(np.linalg.norm(sh.mean(0) - hp.mean(0)))
    return max(torso, float(np.linalg.norm(sh[0] - sh[1])), float(np.linalg.norm(hp[0] - hp[1])),
               1.0)


def plausible(xy: np.ndarray, conf: np.ndarray, spec: BodySpec = BLAZEPOSE33,
              max_limb: float = 1.9, max_width: float = 2.2, min_core_conf: float = 0.3
              ) -> tuple[bool, str]:
    """Is (xy (K, 2) px, conf (K,)) one human body? -> (ok, reason when not).

    A landmark result that spans two people (arms on one, legs on the other) or lies on nobody
    has limbs far longer than its torso or left and right sides far apart. Ratios are to the
    torso length (mid-shoulder to mid-hip), so they do not depend on the person's size; the
    limits are loose (a human's upper arm is ~0.6 torso, thigh ~0.85; foreshortening only
    shortens) so that odd poses pass. ``min_core_conf``: at least the shoulders or the hips
    must be seen (mean confidence), or the result is a guess about someone out of view.
    """
    sh, hp = list(spec.shoulders), list(spec.hips)
    if max(float(np.mean(conf[sh])), float(np.mean(conf[hp]))) < min_core_conf:
        return False, "neither shoulders nor hips visible"
    torso = max(float(np.linalg.norm(xy[sh].mean(0) - xy[hp].mean(0))), 1.0)
    lengths = np.array([np.linalg.norm(xy[a] - xy[b]) for a, b in spec.limbs]) / torso
    if lengths.max() > max_limb:
        return False, f"limb {lengths.max():.1f} torso lengths long"
    widths = np.array([np.linalg.norm(xy[sh[0]] - xy[sh[1]]),
                       np.linalg.norm(xy[hp[0]] - xy[hp[1]])]) / torso
    if widths.max() > max_width:
        return False, f"left and right sides {widths.max():.1f} torso lengths apart"
    return True, ""


def outside_frame(xy: np.ndarray, width: int, height: int, margin: float = 0.0) -> np.ndarray:
    """(K,) bool: keypoints (K, 2) px outside the picture [0, width) x [0, height) by more than
    ``margin`` pixels (non-finite points count as outside)."""
    x, y = xy[:, 0], xy[:, 1]
    inside = (x >= -margin) & (x < width + margin) & (y >= -margin) & (y < height + margin)
    return ~(inside & np.isfinite(xy).all(1))


def oks(a: np.ndarray, b: np.ndarray, scale: float, sigmas: np.ndarray,
        weight: np.ndarray | None = None) -> float:
    """Object keypoint similarity of two poses (K, 2) px in [0, 1]: mean over keypoints of
    exp(-d^2 / (2 (scale * sigma)^2)), weighted by ``weight`` (K,) (default: all 1)."""
    d2 = ((np.asarray(a) - np.asarray(b)) ** 2).sum(-1)
    s = np.exp(-d2 / (2 * (max(scale, 1.0) * np.asarray(sigmas)) ** 2))
    w = np.ones(len(s)) if weight is None else np.asarray(weight, dtype=np.float64)
    s = np.where(np.isfinite(s), s, 0.0)
    return float((s * w).sum() / max(w.sum(), 1e-9))


def _swap(arr: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    out = arr.copy()
    for left, right in pairs:
        out[[left, right]] = arr[[right, left]]
    return out


def fix_left_right(xy: np.ndarray, conf: np.ndarray, prev: np.ndarray, scale: float,
                   spec: BodySpec = BLAZEPOSE33, margin: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """Swap the left/right labels of the arms and of the legs (independently) when the swapped
    labelling continues the previous frame's pose ``prev`` (K, 2) much better.

    A labelling is scored by the summed distance of its left and right keypoints to last frame's
    ones; the swap is taken only when it costs less than ``margin`` times the current one and
    the two sides are at least 0.3 * ``scale`` apart (when they are close, as in a side view,
    either labelling fits and the model's own is kept).

    Returns (xy, conf, arms swapped, legs swapped).
    """
    flips = []
    for pairs in (spec.arms, spec.legs):
        idx_l = [p[0] for p in pairs[:3]]
        idx_r = [p[1] for p in pairs[:3]]
        keep = (np.linalg.norm(xy[idx_l] - prev[idx_l], axis=1).sum()
                + np.linalg.norm(xy[idx_r] - prev[idx_r], axis=1).sum())
        swap = (np.linalg.norm(xy[idx_r] - prev[idx_l], axis=1).sum()
                + np.linalg.norm(xy[idx_l] - prev[idx_r], axis=1).sum())
        apart = np.linalg.norm(xy[idx_l] - xy[idx_r], axis=1).mean()
        flips.append(bool(np.isfinite(swap) and swap < margin * keep and apart > 0.3 * scale))
    for do, pairs in zip(flips, (spec.arms, spec.legs)):
        if do:
            xy, conf = _swap(xy, pairs), _swap(conf, pairs)
    return xy, conf, flips[0], flips[1]


def colour_histogram(frame: np.ndarray, xy: np.ndarray, spec: BodySpec = BLAZEPOSE33,
                     bins: tuple[int, int] = (12, 4)) -> np.ndarray | None:
    """Hue-saturation histogram (bins[0] * bins[1],), summing to 1, of the torso (the box
    spanned by the shoulders and hips, shrunk by a quarter so it holds clothing, not
    background); None when that box is empty or outside the frame. ``frame`` is RGB uint8."""
    pts = xy[list(spec.shoulders) + list(spec.hips)]
    box = points_box(pts)
    if not np.isfinite(box).all():
        return None
    c, half = (box[:2] + box[2:]) / 2, np.maximum((box[2:] - box[:2]) * 0.375, 2.0)
    h, w = frame.shape[:2]
    x0, y0 = np.clip(np.floor(c - half).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(c + half).astype(int), 0, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(bins), [0, 180, 0, 256]).reshape(-1)
    return hist / max(float(hist.sum()), 1.0)


def histogram_distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Hellinger distance of two normalised histograms in [0, 1]; 0.5 when either is unknown."""
    if a is None or b is None:
        return 0.5
    return float(np.sqrt(max(0.0, 1.0 - np.sqrt(a * b).sum())))


# ---------------------------------------------------------------------------------------------
# Tracks
# ---------------------------------------------------------------------------------------------

@dataclass
class Candidate:
    """One pose found in the current frame, before it has an identity."""
    xy: np.ndarray            # (K, 2) px
    conf: np.ndarray          # (K,) in [0, 1]
    score: float              # presence probability
    source: int | None = None  # id of the track whose ROI produced it (None: a fresh detection)
    extra: object = None      # anything the caller wants back (e.g. the landmark result)
    appearance: np.ndarray | None = None
    world: np.ndarray | None = None       # (K, 3) per-keypoint 3D (relabelled with xy)
    visibility: np.ndarray | None = None  # (K,) (relabelled with xy)


@dataclass
class Track:
    """One person's identity and its state (pixels, frames)."""
    id: int
    xy: np.ndarray                  # (K, 2) last pose
    conf: np.ndarray                # (K,)
    velocity: np.ndarray            # (2,) px / frame of the centre, smoothed
    scale: float                    # torso length, px, smoothed
    last_frame: int
    first_frame: int
    hits: int = 1
    appearance: np.ndarray | None = None
    extra: object = None
    lr_fixes: int = 0               # frames where arms or legs were relabelled
    streak: int = 1                 # consecutive frames seen up to the last one
    lr_run: int = 0                 # consecutive frames relabelled up to the last one

    def predicted_centre(self, frame: int, spec: BodySpec = BLAZEPOSE33, horizon: int = 5
                         ) -> np.ndarray:
        """(2,) px: the centre expected at ``frame``; the constant-velocity guess is trusted for
        ``horizon`` frames at most (a person who stopped behind someone does not fly on)."""
        return centre(self.xy, spec) + self.velocity * min(frame - self.last_frame, horizon)


@dataclass
class Tracker:
    """Gives each candidate pose of a frame a stable identity (see the module docstring).

    Args:
        max_lost: frames a lost track is remembered for re-identification (a few seconds).
        motion_gate: a track's own candidate keeps its identity while its centre is within this
            many torso lengths of the predicted centre.
        match_gate: largest association cost accepted for other candidates.
        same_person_oks: two candidates this similar (OKS) are one person.
        fix_lr, lr_min_streak, lr_max_run: relabel left/right (see :func:`fix_left_right`) once a
            track has been seen ``lr_min_streak`` frames in a row, for at most ``lr_max_run``
            frames in a row.
    """
    spec: BodySpec = BLAZEPOSE33
    max_lost: int = 90
    motion_gate: float = 0.8
    match_gate: float = 1.6
    same_person_oks: float = 0.5
    fix_lr: bool = True
    lr_min_streak: int = 3
    lr_max_run: int = 2
    tracks: dict[int, Track] = field(default_factory=dict)
    #: frames relabelled left/right per track id, kept after a track is forgotten
    lr_fixed: dict[int, int] = field(default_factory=dict)
    frame: int = -1
    _next_id: int = 1

    def reset(self) -> None:
        self.tracks.clear()
        self.lr_fixed.clear()
        self.frame, self._next_id = -1, 1

    def live(self) -> list[Track]:
        """Tracks seen in the last frame, oldest first."""
        return sorted((t for t in self.tracks.values() if t.last_frame == self.frame),
                      key=lambda t: t.first_frame)

    def lost(self) -> list[Track]:
        """Tracks not seen in the last frame but still remembered."""
        return [t for t in self.tracks.values() if t.last_frame < self.frame]

    # -- association -----------------------------------------------------------------------
    def _merge_duplicates(self, cands: list[Candidate]) -> list[Candidate]:
        """Drop candidates that are the same person as a better one (best first: a track's own
        candidate that continues the track closest, then presence score)."""
        sig = np.asarray(self.spec.sigmas)

        def rank(c: Candidate) -> tuple:
            t = self.tracks.get(c.source) if c.source is not None else None
            if t is None:
                return (1, 0.0, -c.score)
            d = np.linalg.norm(centre(c.xy, self.spec)
                               - t.predicted_centre(self.frame + 1, self.spec))
            return (0, d / t.scale, -c.score)

        def same(c: Candidate, k: Candidate) -> bool:
            s = max(body_scale(c.xy, self.spec), body_scale(k.xy, self.spec))
            if oks(c.xy, k.xy, s, sig, np.minimum(c.conf, k.conf) + 0.1) >= self.same_person_oks:
                return True
            return iou(points_box(c.xy, c.conf, 0.3), points_box(k.xy, k.conf, 0.3)[None])[0] >= 0.7

        kept: list[Candidate] = []
        for c in sorted(cands, key=rank):
            if not any(same(c, k) for k in kept):
                kept.append(c)
        return kept

    def _cost(self, t: Track, c: Candidate, frame: int) -> float:
        """Association cost of candidate ``c`` to track ``t``: predicted-centre distance in
        torso lengths (the allowance grows with the time lost), size change, appearance."""
        gap = frame - t.last_frame
        d = np.linalg.norm(centre(c.xy, self.spec) - t.predicted_centre(frame, self.spec))
        dist = d / (t.scale * (1.0 + 0.15 * (gap - 1)))
        size = abs(np.log(body_scale(c.xy, self.spec) / t.scale))
        return float(dist + size + 1.5 * histogram_distance(t.appearance, c.appearance))

    def update(self, cands: list[Candidate]) -> list[tuple[Track, Candidate]]:
        """Advance one frame: give each candidate an identity -> (track, candidate) pairs, the
        candidate's pose possibly relabelled left/right."""
        self.frame += 1
        f = self.frame
        cands = self._merge_duplicates(cands)
        pairs: list[tuple[Track, Candidate]] = []
        rest: list[Candidate] = []
        for c in cands:  # 1. a track's own candidate, where the motion model expects it
            t = self.tracks.get(c.source) if c.source is not None else None
            if t is not None and t.last_frame == f - 1 and not any(p[0] is t for p in pairs):
                d = np.linalg.norm(centre(c.xy, self.spec) - t.predicted_centre(f, self.spec))
                if d < self.motion_gate * t.scale:
                    pairs.append((t, c))
                    continue
            rest.append(c)
        taken = {id(p[0]) for p in pairs}
        free = [t for t in self.tracks.values() if id(t) not in taken]
        costs = [(self._cost(t, c, f), i, j) for i, c in enumerate(rest)
                 for j, t in enumerate(free)]
        used_c, used_t = set(), set()
        for cost, i, j in sorted(costs):  # 2. greedy matching of the others
            if cost > self.match_gate or i in used_c or j in used_t:
                continue
            used_c.add(i), used_t.add(j)
            pairs.append((free[j], rest[i]))
        for i, c in enumerate(rest):  # 3. new people
            if i not in used_c:
                t = Track(self._next_id, c.xy, c.conf, np.zeros(2), body_scale(c.xy, self.spec),
                          f, f, 0, c.appearance)
                self._next_id += 1
                self.tracks[t.id] = t
                pairs.append((t, c))
        for t, c in pairs:
            self._advance(t, c, f)
        for tid in [t.id for t in self.tracks.values() if f - t.last_frame > self.max_lost]:
            del self.tracks[tid]
        return sorted(pairs, key=lambda p: p[0].id)

    def _advance(self, t: Track, c: Candidate, f: int) -> None:
        """Fold candidate ``c`` into track ``t`` (labels fixed against the last pose)."""
        t.streak = t.streak + 1 if t.hits and t.last_frame == f - 1 else 1
        # relabel only against an established pose (a first frame after a gap may itself be
        # wrong), and never for long: when the model insists, its labelling is taken
        if self.fix_lr and t.streak > self.lr_min_streak:
            xy, conf, arms, legs = fix_left_right(c.xy, c.conf, t.xy, t.scale, self.spec)
            if (arms or legs) and t.lr_run < self.lr_max_run:
                c.xy, c.conf = xy, conf
                # the keypoints' other measures follow their labels
                pairs = (self.spec.arms if arms else ()) + (self.spec.legs if legs else ())
                if c.world is not None:
                    c.world = _swap(c.world, pairs)
                if c.visibility is not None:
                    c.visibility = _swap(c.visibility, pairs)
                t.lr_fixes += 1
                self.lr_fixed[t.id] = t.lr_fixes
                t.lr_run += 1
            else:
                t.lr_run = 0
        if t.hits:
            gap = max(f - t.last_frame, 1)
            v = (centre(c.xy, self.spec) - centre(t.xy, self.spec)) / gap
            t.velocity = 0.5 * t.velocity + 0.5 * v if gap == 1 else v * 0.5
            t.scale = 0.7 * t.scale + 0.3 * body_scale(c.xy, self.spec)
        if c.appearance is not None:
            t.appearance = (c.appearance if t.appearance is None
                            else 0.9 * t.appearance + 0.1 * c.appearance)
        t.xy, t.conf, t.last_frame, t.extra = c.xy, c.conf, f, c.extra
        t.hits += 1
