"""HTML viewer: the page's data read back, and the page run in a real browser (headless
Chromium, network cut): a screenshot whose pixels show the skeleton, the DOM's frame counter
and warnings; `posecli view`, `posecli export -f html,glb,trc,csv` and `--person all`'s one page."""
from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from export_helpers import REPO, truth_result
from posecli import skeleton
from posecli.export import bvh, html, mp4, write_all
from test_export_trc_csv import with_gap

runner = CliRunner()


def page_data(text: str) -> dict:
    m = re.search(r'<script id="posecli-data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def unpack(person: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the page's script decodes: times (N,) s, world (N, 17, 3) m, bits (N,)."""
    raw = gzip.decompress(base64.b64decode(person["data"]))
    n = person["frames"]
    times = np.cumsum(np.frombuffer(raw, "<i4", n)) / 1e6
    width = 2 if person["bits"] == 16 else 4
    d2 = np.frombuffer(raw, f"<i{width}", 51 * n, 4 * n).reshape(51, n).astype(np.int64)
    world = np.cumsum(np.cumsum(d2, axis=1), axis=1).T.reshape(n, 17, 3) / 1000
    bits = np.frombuffer(raw, np.uint8, n, 4 * n + width * 51 * n)
    return times, world, bits


def test_page_is_self_contained_and_carries_the_motion(tmp_path):
    res = with_gap(truth_result())
    res.quality = {"warnings": ["foot_slide_mm"], "foot_slide_mm": 41.5, "thresholds": {"foot_slide_mm": 30.0}}
    (path,) = write_all(res, tmp_path, ["html"])
    text = path.read_text()
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text)  # nothing fetched
    doc = page_data(text)
    assert doc["joints"] == list(skeleton.JOINTS) and len(doc["people"]) == 1
    times, world, bits = unpack(doc["people"][0])
    np.testing.assert_allclose(times, res.frame_times(), atol=1e-6)
    assert np.abs(world - res.world_joints()).max() <= 0.0005  # whole millimetres
    assert ((bits & 3) == 2).sum() == 15 and (bits[40:55] & 3 == 2).all()
    contacts = np.stack([(bits & 4) > 0, (bits & 8) > 0], 1)
    assert (contacts == res.trajectory.contacts).all() and contacts.any()
    assert doc["people"][0]["warnings"] == ["check foot_slide_mm: 41.5 (above 30.0)"]


# ---- in a real browser ----------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    pytest.skip("Chromium is not installed (apt-get install -y chromium)")


def chromium(page: Path, tmp_path: Path, fragment: str, *extra: str) -> subprocess.CompletedProcess:
    """Open ``page#fragment`` in headless Chromium with no network (a dead proxy, no DNS)."""
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
           "--virtual-time-budget=5000", "--window-size=900,600", *extra,
           page.resolve().as_uri() + "#" + fragment]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def counter(dom: str) -> str:
    return re.search(r'<span id="counter">([^<]*)</span>', dom).group(1)


def skeleton_pixels(png: Path) -> tuple[int, int]:
    """Pixels of the left (blue) and right (orange) bone colours in the middle of the 3D view
    (away from the legend in the corner)."""
    import cv2
    img = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB).astype(int)
    h, w = img.shape[:2]
    mid = img[int(0.25 * h):h - 60, int(0.3 * w):int(0.7 * w)]
    near = lambda c: int((np.abs(mid - np.array(c)).sum(-1) < 60).sum())  # noqa: E731
    return near(mp4.LEFT_RGB), near(mp4.RIGHT_RGB)


@pytest.mark.slow
def test_chromium_draws_the_skeleton_and_counts_frames(tmp_path):
    res = with_gap(truth_result())
    res.quality = {"warnings": ["jitter_ms2"], "jitter_ms2": 25.0, "thresholds": {"jitter_ms2": 20.0}}
    (path,) = write_all(res, tmp_path, ["html"])
    dom = chromium(path, tmp_path, "frame=30", "--dump-dom").stdout
    assert counter(dom) == f"frame 30 / {res.num_frames} \u00b7 {res.frame_times()[29]:.2f} s"
    assert "check jitter_ms2: 25.0 (above 20.0)" in dom and 'id="error"></div>' in dom
    assert "no person" in counter(chromium(path, tmp_path, "frame=45", "--dump-dom").stdout)
    shot = tmp_path / "shot.png"
    chromium(path, tmp_path, "frame=30", f"--screenshot={shot}")
    left, right = skeleton_pixels(shot)
    assert left > 150 and right > 150, (left, right)
    chromium(path, tmp_path, "frame=45", f"--screenshot={shot}")  # a missing frame: no skeleton
    assert skeleton_pixels(shot) == (0, 0)


@pytest.mark.slow
def test_person_all_writes_one_page_with_everyone(tmp_path):
    from posecli.batch.clip import _write
    from posecli.batch.inputs import Clip
    from posecli.options import LiftOptions
    a, b = truth_result(), truth_result()
    shift = np.array([1.5, 0.0, 0.0])
    b.trajectory = replace(b.trajectory, world=b.trajectory.world + shift)
    for r, k in ((a, 1), (b, 4)):
        r.detector = {"person": {"track_id": k}}
    clip = Clip(Path(a.source), Path(Path(a.source).name))
    options = LiftOptions(formats=("json", "html"), person="all")
    paths = [Path(p) for p in _write(clip, tmp_path, options, [a, b])]
    pages = [p for p in paths if p.suffix == ".html"]
    assert [p.name for p in pages] == ["walk_07_05.html"]
    assert sorted(p.name for p in paths if p.suffix == ".json") == ["walk_07_05.person1.json", "walk_07_05.person4.json"]
    doc = page_data(pages[0].read_text())
    assert [p["label"] for p in doc["people"]] == ["person 1", "person 4"]
    assert np.abs(unpack(doc["people"][1])[1] - a.world_joints() - shift).max() <= 0.0005
    dom = chromium(pages[0], tmp_path, "frame=10", "--dump-dom").stdout
    assert "2 people" in dom and "person 4 path" in dom


def test_view_writes_a_page_and_opens_the_browser(tmp_path, monkeypatch, tiny_weights):
    import webbrowser

    from posecli.cli import app
    kp = REPO / "examples" / "cmu_07_05_walk.keypoints.json"
    assert runner.invoke(app, ["lift", str(kp), "-o", str(tmp_path), "--weights", str(tiny_weights), "-q"]).exit_code == 0
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    r = runner.invoke(app, ["view", str(tmp_path / "cmu_07_05_walk.keypoints.json")])
    assert r.exit_code == 0, r.output
    (page,) = (tmp_path / "tmp").glob("posecli-*.html")
    assert opened == [page.resolve().as_uri()]
    assert page_data(page.read_text())["people"][0]["frames"] > 0
    r = runner.invoke(app, ["view", str(tmp_path / "nothing.json")])
    assert r.exit_code == 1 and "error:" in r.output and "no such file" in r.output


def test_export_writes_the_four_new_formats(tmp_path, tiny_weights):
    from posecli.cli import app
    kp = REPO / "examples" / "cmu_07_05_walk.keypoints.json"
    assert runner.invoke(app, ["lift", str(kp), "-o", str(tmp_path), "--weights", str(tiny_weights), "-q"]).exit_code == 0
    r = runner.invoke(app, ["export", str(tmp_path / "cmu_07_05_walk.keypoints.json"), "-f", "html,glb,trc,csv",
                            "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    for suffix in (".html", ".glb", ".trc", ".csv"):
        f = tmp_path / "out" / f"cmu_07_05_walk.keypoints{suffix}"
        assert f.stat().st_size > 1000, suffix
    assert (tmp_path / "out" / "cmu_07_05_walk.keypoints.glb").read_bytes()[:4] == b"glTF"


def _node_with_websocket() -> list[str]:
    """The node command line that has a WebSocket client (built in from Node 22, behind a flag in 20)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    probe = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
    for cmd in ([node], [node, "--experimental-websocket"]):
        if subprocess.run([*cmd, "-e", probe], capture_output=True).returncode == 0:
            return cmd
    pytest.skip("this Node.js has no WebSocket client")


@pytest.mark.slow
def test_chromium_plays_pauses_scrubs_changes_speed_orbits_and_zooms(tmp_path):
    """The page driven over the DevTools protocol (tests/chromium_drive.mjs), as a person would."""
    res = truth_result()
    (path,) = write_all(res, tmp_path, ["html"])
    r = subprocess.run([*_node_with_websocket(), str(REPO / "tests" / "chromium_drive.mjs"), _chromium(),
                        str(tmp_path / "profile"), path.resolve().as_uri()],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    seen = json.loads(r.stdout)
    frame = lambda text: int(text.split()[1])  # noqa: E731
    assert frame(seen["playing"]) > frame(seen["start"])  # it plays on opening
    assert seen["paused1"] == seen["paused2"]  # space pauses
    n = res.num_frames
    assert seen["scrubbed"] == f"frame 100 / {n} \u00b7 {res.frame_times()[99]:.2f} s"
    assert seen["stepped"].startswith(f"frame 101 / {n}")  # the right arrow steps one frame
    fast, slow = seen["speed2"], seen["speed0.25"]  # media seconds played in ~0.8 s of wall time
    assert fast["media"] > 2.5 * slow["media"] and slow["media"] < 0.5 * slow["wall"] + 0.1
    assert seen["orbitChanged"] and seen["zoomChanged"] and seen["error"] == ""
