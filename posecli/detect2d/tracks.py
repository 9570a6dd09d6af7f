"""Clip-level tracks: per-frame detections with identities gathered into one array set per
person, and the choice of the person a user means.

    tracker = create_tracker("blazepose-full")
    tracks = collect_tracks(tracker(f) for f in frames)      # list[PersonTrack]
    subject = choose_person(tracks, width, height)           # "auto"
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from posecli.detect2d import Detection

__all__ = ["PersonTrack", "collect_tracks", "choose_person", "liftable", "best_frame", "thumbnail",
           "AUTO_RULE"]

AUTO_RULE = ("the track seen in the most frames; among tracks seen in at least 80 % as many "
             "frames, the one with the largest median body height times closeness to the frame "
             "centre (1 at the centre, 0.5 at a corner)")


@dataclass
class PersonTrack:
    """One person over a clip of N frames (K keypoints)."""
    id: int
    xy: np.ndarray        # (N, K, 2) px, NaN where the person was not seen
    conf: np.ndarray      # (N, K) in [0, 1], 0 where not seen
    found: np.ndarray     # (N,) bool
    outside: np.ndarray   # (N, K) bool: keypoint outside the picture (its conf is lowered)
    lr_fixes: int = 0     # frames whose left/right labels the tracker corrected
    #: (N, K, 3) BlazePose's world landmarks (metres, hip-centred, x right, y down, z away from
    #: the camera), NaN where not seen; None when the detector has none
    world: np.ndarray | None = None
    visibility: np.ndarray | None = None  # (N, K) in [0, 1], 0 where not seen; None likewise

    @property
    def frames(self) -> int:
        return int(self.found.sum())

    @property
    def first(self) -> int:
        return int(np.argmax(self.found))

    @property
    def last(self) -> int:
        return int(len(self.found) - 1 - np.argmax(self.found[::-1]))

    def height(self, min_conf: float = 0.3) -> float:
        """Median height (px) of the box around the keypoints seen with ``min_conf``."""
        hs = []
        for xy, c in zip(self.xy[self.found], self.conf[self.found]):
            ok = c >= min_conf
            if ok.sum() >= 2:
                hs.append(float(np.ptp(xy[ok, 1])))
        return float(np.median(hs)) if hs else 0.0

    def centrality(self, width: int, height: int) -> float:
        """1 - mean distance of the keypoint centre from the frame centre / half diagonal,
        mapped to [0.5, 1]."""
        if not self.found.any():
            return 0.5
        c = np.nanmean(self.xy[self.found], axis=1)
        d = np.linalg.norm(c - [width / 2, height / 2], axis=1) / np.hypot(width / 2, height / 2)
        return float(1.0 - 0.5 * np.clip(np.nanmean(d), 0, 1))

    def summary(self, width: int, height: int) -> dict:
        return {"id": self.id, "first_frame": self.first, "last_frame": self.last,
                "frames": self.frames, "height_px": round(self.height(), 1),
                "centrality": round(self.centrality(width, height), 3),
                "outside_joint_frames": int(self.outside[self.found].any(1).sum()),
                "lr_fixes": self.lr_fixes}


def collect_tracks(per_frame: Iterable[list[Detection]], num_keypoints: int = 33,
                   lr_fixes: dict[int, int] | None = None) -> list[PersonTrack]:
    """Gather the tracker's per-frame detection lists (each with ``track_id``) into one
    :class:`PersonTrack` per identity, ordered by id (``lr_fixes``: the tracker's
    ``lr_fixed`` tally)."""
    frames = [list(d) for d in per_frame]
    n = len(frames)
    ids = sorted({d.track_id for fr in frames for d in fr})
    out = []
    for tid in ids:
        xy = np.full((n, num_keypoints, 2), np.nan)
        conf = np.zeros((n, num_keypoints))
        outside = np.zeros((n, num_keypoints), bool)
        found = np.zeros(n, bool)
        world = vis = None
        for i, fr in enumerate(frames):
            for d in fr:
                if d.track_id == tid:
                    xy[i], conf[i], found[i] = d.xy, d.conf, True
                    if d.outside is not None:
                        outside[i] = d.outside
                    if d.world is not None:
                        if world is None:
                            world = np.full((n, num_keypoints, 3), np.nan)
                            vis = np.zeros((n, num_keypoints))
                        world[i] = d.world
                        vis[i] = d.visibility if d.visibility is not None else d.conf
        out.append(PersonTrack(int(tid), xy, conf, found, outside,
                               (lr_fixes or {}).get(tid, 0), world, vis))
    return out


def choose_person(tracks: list[PersonTrack], width: int, height: int,
                  person: str | int = "auto") -> PersonTrack | None:
    """The track a user means: ``person`` = "auto" (see :data:`AUTO_RULE`) or a track id.
    None when there is no track; ValueError for an unknown id."""
    if not tracks:
        return None
    if person != "auto":
        by_id = {t.id: t for t in tracks}
        if int(person) not in by_id:
            raise ValueError(f"no person with id {person}; ids found: "
                             f"{', '.join(str(i) for i in by_id)}")
        return by_id[int(person)]
    most = max(t.frames for t in tracks)
    close = [t for t in tracks if t.frames >= 0.8 * most]
    return max(close, key=lambda t: (t.height() * t.centrality(width, height), t.frames))


def liftable(tracks: list[PersonTrack], fps: float, min_seconds: float = 0.5,
             min_frames: int = 5) -> list[PersonTrack]:
    """Tracks seen long enough to lift (at least ``min_seconds`` and ``min_frames``)."""
    need = max(min_frames, int(round(min_seconds * fps)))
    return [t for t in tracks if t.frames >= need]


def best_frame(track: PersonTrack) -> int:
    """The frame where the person is seen best (highest mean keypoint confidence)."""
    score = np.where(track.found, track.conf.mean(1), -1.0)
    return int(np.argmax(score))


def thumbnail(frame: np.ndarray, xy: np.ndarray, conf: np.ndarray, height: int = 192,
              min_conf: float = 0.3) -> np.ndarray:
    """The person's box (keypoints with ``min_conf``, enlarged by 20 %) cut from ``frame``
    (H, W, 3) and scaled to ``height`` pixels -> (height, w, 3) uint8, same channel order."""
    import cv2

    h, w = frame.shape[:2]
    ok = (conf >= min_conf) & np.isfinite(xy).all(1)
    pts = xy[ok] if ok.sum() >= 2 else xy[np.isfinite(xy).all(1)]
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.2 * (hi - lo) + 4
    x0, y0 = np.clip(np.floor(lo - pad).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(hi + pad).astype(int), [x0 + 1, y0 + 1], [w, h])
    crop = frame[y0:y1, x0:x1]
    scale = height / crop.shape[0]
    return cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), height),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
