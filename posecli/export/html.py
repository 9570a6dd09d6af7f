"""HTML: one self-contained page per clip that shows the 3D motion in any current browser, from
``file://``, with no network and nothing installed.

The page (template ``viewer.html``, our own canvas code, no libraries) draws the world skeleton
(Y up, floor at 0; left side blue, right orange, as the MP4) on a 0.5 m floor grid with the
pelvis path and the foot contacts; drag to orbit, wheel to zoom, play / pause, a timeline to
scrub, playback speed, the frame and time counter, and the clip's quality warnings. With
``--person all`` everyone is in one page, each with a label and a path of their own colour.
``page.html#frame=K`` opens paused at frame K (counted from 1, JSON index K - 1);
``#view=AZIMUTH,ELEVATION[,DISTANCE]`` (degrees, metres) sets the camera.

Size: per person, the world joints as whole millimetres, second differences along time as
16-bit integers (32-bit when a clip needs it), the frame times as microseconds (first
differences), one byte of flags and contacts per frame, gzip-compressed and base64-encoded;
the browser unpacks it with ``DecompressionStream``.
"""
from __future__ import annotations

import base64
import gzip
import html
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np

from posecli import skeleton
from posecli.files import atomic_path
from posecli.result import LiftResult

FLAG_CODES = {skeleton.DETECTED: 0, skeleton.INTERPOLATED: 1, skeleton.MISSING: 2}
PATH_COLOURS = ((120, 220, 120), (200, 120, 255), (90, 210, 230), (240, 110, 130), (230, 200, 90))


def pack(world: np.ndarray, times: np.ndarray, flags: np.ndarray, contacts: np.ndarray | None) -> tuple[bytes, int]:
    """One person's frames as the page's binary block (before gzip).

    Args:
        world: (N, J, 3) metres; times: (N,) seconds; flags: (N,) strings;
        contacts: (N, 2) bool (right, left) or None.
    Returns:
        (bytes, bits): Int32 time steps (us) + Int16/32 second differences of the joints (mm,
        channel after channel) + Uint8 flag bits; bits = 16 or 32, the joints' integer width.
    """
    n = len(world)
    us = np.round(np.asarray(times, np.float64) * 1e6).astype(np.int64)
    dt = np.diff(us, prepend=0)
    mm = np.round(np.asarray(world, np.float64) * 1000).astype(np.int64).reshape(n, -1).T  # (3J, N)
    d2 = np.diff(np.diff(mm, axis=1, prepend=0), axis=1, prepend=0)
    bits = 16 if np.abs(d2).max(initial=0) < 2 ** 15 else 32
    code = np.array([FLAG_CODES[str(f)] for f in flags], np.uint8)
    if contacts is not None:
        c = np.asarray(contacts, bool)
        code |= (c[:, 0] * 4 + c[:, 1] * 8).astype(np.uint8)
    return (dt.astype("<i4").tobytes() + d2.astype("<i2" if bits == 16 else "<i4").tobytes()
            + code.tobytes()), bits


def warnings(result: LiftResult) -> list[str]:
    """The quality warnings as sentences: measure, value and threshold."""
    q = result.quality or {}
    thresholds = q.get("thresholds", {})
    return [f"check {w}: {q.get(w)} (above {thresholds.get(w)})" for w in q.get("warnings", [])]


def person_label(result: LiftResult, k: int) -> str:
    who = (result.detector or {}).get("person") or {}
    return f"person {who['track_id']}" if "track_id" in who else f"person {k + 1}"


def page(results: list[LiftResult], title: str | None = None) -> str:
    """The HTML page showing every result (one per person) of one clip."""
    from posecli import __version__
    from posecli.export import mp4

    people = []
    for k, res in enumerate(results):
        traj = res.trajectory
        data, bits = pack(res.world_joints(), res.frame_times(), res.flags,
                          traj.contacts if traj is not None else None)
        people.append({"label": person_label(res, k), "frames": res.num_frames, "bits": bits,
                       "colour": PATH_COLOURS[k % len(PATH_COLOURS)], "warnings": warnings(res),
                       "data": base64.b64encode(gzip.compress(data, 9, mtime=0)).decode("ascii")})
    first = results[0]
    doc = {"title": title or Path(first.source).name, "fps": first.fps,
           "estimated": first.trajectory is not None,
           "joints": list(skeleton.JOINTS), "parents": list(skeleton.PARENTS),
           "left": list(skeleton.LEFT), "right": list(skeleton.RIGHT),
           "ankles": [skeleton.JOINTS.index("r_ankle"), skeleton.JOINTS.index("l_ankle")],
           "head": skeleton.JOINTS.index("head"),
           "colours": {"left": mp4.LEFT_RGB, "right": mp4.RIGHT_RGB, "centre": mp4.CENTRE_RGB,
                       "background": mp4.BG_RGB, "grid": mp4.GRID_RGB, "contact": mp4.CONTACT_RGB},
           "view": {"azimuth": mp4.VIEW_AZIMUTH_DEG, "elevation": mp4.VIEW_ELEVATION_DEG,
                    "grid": mp4.GRID_STEP},
           "people": people}
    data = json.dumps(doc, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    template = resources.files("posecli.export").joinpath("viewer.html").read_text(encoding="utf-8")
    fill = {"TITLE": html.escape(doc["title"]), "GENERATOR": f"posecli {__version__}", "DATA": data}
    return re.sub(r"__(TITLE|GENERATOR|DATA)__", lambda m: fill[m.group(1)], template)  # one pass


def write(result: LiftResult, path: str | Path, people: list[LiftResult] | None = None) -> None:
    """Write the viewer page for ``result`` (or for every result in ``people``: one page with
    everyone, for ``--person all``), atomically."""
    text = page(people or [result])
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
