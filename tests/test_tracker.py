"""Pure tests of multi-person tracking (posecli.detect2d.tracker / tracks / boxes / crops):
hand-made BlazePose-33 poses, no model runs."""
from __future__ import annotations

import numpy as np
import pytest

from posecli.detect2d import Detection
from posecli.detect2d import tracker as tk
from posecli.detect2d.boxes import iou_matrix, points_box
from posecli.detect2d.crops import roi_from_box
from posecli.detect2d.tracks import choose_person, collect_tracks, liftable, thumbnail

# offsets (torso length 1) of the BlazePose landmarks for an upright person facing the camera
# (their left on the image's right), hip centre at the origin
_OFF = {0: (0, -1.45), 11: (0.3, -1), 12: (-0.3, -1), 13: (0.4, -0.55), 14: (-0.4, -0.55),
        15: (0.45, -0.1), 16: (-0.45, -0.1), 23: (0.15, 0), 24: (-0.15, 0), 25: (0.17, 0.85),
        26: (-0.17, 0.85), 27: (0.18, 1.7), 28: (-0.18, 1.7)}


def pose(cx: float, cy: float, torso: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """(33, 2) px, (33,) conf: a standing person, hip centre at (cx, cy)."""
    off = np.zeros((33, 2))
    for k, v in _OFF.items():
        off[k] = v
    for k in range(1, 11):  # face: left points (odd) on the image's right
        off[k] = off[0] + ((0.05 + 0.01 * k) * (1 if k % 2 else -1), -0.05 + 0.01 * k)
    for k in (17, 19, 21, 18, 20, 22, 29, 31, 30, 32):
        base = {17: 15, 19: 15, 21: 15, 18: 16, 20: 16, 22: 16, 29: 27, 31: 27, 30: 28, 32: 28}[k]
        off[k] = off[base] + (0.0, 0.1)
    return np.array([cx, cy]) + off * torso, np.full(33, 0.9)


def cand(cx, cy, torso=100.0, source=None, colour=None):
    xy, c = pose(cx, cy, torso)
    app = None
    if colour is not None:
        app = np.zeros(48)
        app[colour] = 1.0
    return tk.Candidate(xy, c, 0.99, source, None, app)


def test_plausible_accepts_a_person_and_rejects_mixed_ones():
    xy, c = pose(300, 300)
    assert tk.plausible(xy, c)[0]
    mixed = xy.copy()
    mixed[[25, 27, 29, 31]] += [400, 0]                 # left leg on someone 4 torsos away
    ok, why = tk.plausible(mixed, c)
    assert not ok and "limb" in why
    apart = xy.copy()
    apart[[12, 24]] += [-300, 0]                        # right side on another person
    assert not tk.plausible(apart, c)[0]
    assert not tk.plausible(xy, np.where(np.isin(np.arange(33), [11, 12, 23, 24]), 0.05, 0.9))[0]


def test_outside_frame():
    xy = np.array([[-1.0, 5], [0, 0], [639.9, 479.9], [640, 10], [5, 480], [np.nan, 3]])
    assert tk.outside_frame(xy, 640, 480).tolist() == [True, False, False, True, True, True]


def test_oks():
    xy, _ = pose(100, 100)
    sig = np.asarray(tk.BLAZEPOSE33.sigmas)
    assert tk.oks(xy, xy, 100, sig) == pytest.approx(1.0)
    assert tk.oks(xy, xy + 500, 100, sig) < 1e-6


def test_fix_left_right_follows_the_previous_frame():
    prev, c = pose(300, 300)
    cur = prev + [3.0, 1.0]
    flipped_arms = tk._swap(cur, tk.BLAZEPOSE33.arms)
    out, _, arms, legs = tk.fix_left_right(flipped_arms, c, prev, 100)
    assert arms and not legs and np.allclose(out, cur)
    flipped_legs = tk._swap(cur, tk.BLAZEPOSE33.legs)
    out, _, arms, legs = tk.fix_left_right(flipped_legs, c, prev, 100)
    assert legs and not arms and np.allclose(out, cur)
    # a side view (left and right on top of each other): the model's labels are kept
    side = cur.copy()
    for l, r in tk.BLAZEPOSE33.arms + tk.BLAZEPOSE33.legs:
        side[[l, r]] = cur[[l, r]].mean(0)
    assert not any(tk.fix_left_right(side, c, prev, 100)[2:])


def test_colour_histogram_tells_shirts_apart():
    xy, _ = pose(100, 150, 60)
    red = np.zeros((300, 200, 3), np.uint8)
    red[...] = (200, 30, 30)
    green = red[..., [1, 0, 2]].copy()
    hr, hg = tk.colour_histogram(red, xy), tk.colour_histogram(green, xy)
    assert hr.sum() == pytest.approx(1) and tk.histogram_distance(hr, hr) < 1e-6
    assert tk.histogram_distance(hr, hg) > 0.9
    assert tk.colour_histogram(red, xy + 1000) is None


def test_two_people_crossing_keep_their_ids():
    """A walks right, B walks left in front of A; while they overlap only one is seen (B);
    afterwards A reappears on the far side: identities by motion and shirt colour."""
    t = tk.Tracker()
    ids = {}
    for f in range(60):
        ax, bx = 100 + 8 * f, 580 - 8 * f
        cands = []
        for name, x, col in (("A", ax, 3), ("B", bx, 30)):
            src = ids.get(name)
            if name == "A" and abs(ax - bx) < 120:
                continue  # A hidden behind B
            cands.append((name, cand(x, 300, 100, src, col)))
        for tr, c in t.update([c for _, c in cands]):
            name = next(n for n, cc in cands if cc is c)
            assert ids.setdefault(name, tr.id) == tr.id, f"frame {f}: {name} changed identity"
    assert ids["A"] != ids["B"] and len(t.tracks) == 2


def test_a_track_jumping_onto_someone_else_is_not_followed():
    """A track's own ROI that landed on another person (far from where the motion model puts
    it) does not carry its identity there."""
    t = tk.Tracker()
    a = t.update([cand(100, 300, colour=3)])[0][0]
    b = t.update([cand(102, 300, source=a.id, colour=3), cand(500, 300, colour=30)])
    ids = {tr.id for tr, _ in b}
    assert a.id in ids and len(ids) == 2
    other = next(tr.id for tr, _ in b if tr.id != a.id)
    pairs = t.update([cand(500, 300, source=a.id, colour=30)])  # A's ROI jumped onto B
    assert [tr.id for tr, _ in pairs] == [other]


def test_duplicates_are_merged():
    t = tk.Tracker()
    pairs = t.update([cand(300, 300), cand(303, 301)])
    assert len(pairs) == 1


def test_lost_person_is_reidentified_then_forgotten():
    t = tk.Tracker(max_lost=30)
    first = t.update([cand(300, 300, colour=5)])[0][0].id
    for _ in range(20):
        t.update([])
    assert t.update([cand(320, 300, colour=5)])[0][0].id == first
    for _ in range(40):
        t.update([])
    assert t.update([cand(320, 300, colour=5)])[0][0].id != first


def test_collect_and_choose():
    xy, c = pose(320, 240, 80)
    small, cs = pose(60, 200, 30)
    frames = []
    for f in range(20):
        fr = [Detection(xy, c, 0.9, track_id=1, outside=np.zeros(33, bool))]
        if f < 18:
            fr.append(Detection(small, cs, 0.9, track_id=2))
        if f < 3:
            fr.append(Detection(small + 5, cs, 0.9, track_id=3))
        frames.append(fr)
    tracks = collect_tracks(frames)
    assert [t.id for t in tracks] == [1, 2, 3]
    assert tracks[0].frames == 20 and tracks[2].frames == 3 and tracks[2].last == 2
    assert np.isnan(tracks[2].xy[5]).all() and not tracks[2].found[5]
    assert choose_person(tracks, 640, 480).id == 1       # most frames, larger and central
    assert choose_person(tracks, 640, 480, 2).id == 2
    with pytest.raises(ValueError):
        choose_person(tracks, 640, 480, 9)
    assert choose_person([], 640, 480) is None
    assert [t.id for t in liftable(tracks, fps=10)] == [1, 2]
    thumb = thumbnail(np.zeros((480, 640, 3), np.uint8), xy, c, height=100)
    assert thumb.shape[0] == 100 and thumb.shape[2] == 3


def test_box_and_crop_helpers_for_other_detectors():
    assert np.allclose(points_box(np.array([[1.0, 2], [5, 9], [3, 3]])), [1, 2, 5, 9])
    assert np.isnan(points_box(np.zeros((2, 2)), np.zeros(2), 0.5)).all()
    m = iou_matrix(np.array([[0, 0, 10, 10], [20, 20, 30, 30.0]]), np.array([[0, 0, 10, 10.0]]))
    assert m.shape == (2, 1) and np.allclose(m[:, 0], [1, 0])
    r = roi_from_box(np.array([10.0, 20, 50, 120]))
    assert (r.cx, r.cy, r.size, r.angle) == (30, 70, 125, 0)


def test_tracker_relabels_a_flip_but_not_for_long():
    t = tk.Tracker()
    for f in range(5):
        t.update([cand(300 + 2 * f, 300)])
    xy, c = pose(310, 300)
    swapped = tk._swap(xy, tk.BLAZEPOSE33.arms)
    out = [t.update([tk.Candidate(swapped.copy(), c, 0.99)])[0][1].xy for _ in range(4)]
    assert np.allclose(out[0], xy) and np.allclose(out[1], xy)   # fixed twice ...
    assert np.allclose(out[2], swapped)                           # ... then the model is believed
    assert np.allclose(out[3], swapped)
    assert t.tracks[1].lr_fixes == 2
