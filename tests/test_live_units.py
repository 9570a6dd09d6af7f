"""posecli live, without a stream: causal windows, the incremental session, the dropping queue,
the choice of person, the source's ffmpeg arguments."""
import json
import math

import numpy as np
import pytest

from posecli.lifter.stream import (causal_window, final_count, lift_newest, lift_rate, simulate,
                                   window_grid)
from posecli.live.run import LiveConfig, parse_udp
from posecli.live.session import Arrived, LiveSession, follow
from posecli.live.source import DropQueue, Frame, input_args, read_ppm
from posecli.errors import UsageError


def mean_fn(x: np.ndarray) -> np.ndarray:
    """A window function whose every output frame depends on the whole window: (B, T, J, 2) ->
    (B, T, J, 3), the window's mean broadcast (changing any input frame changes every output)."""
    m = x.mean(axis=1, keepdims=True)
    y = np.concatenate([m, m[..., :1]], axis=-1)
    return np.broadcast_to(y, x.shape[:-1] + (3,)).copy()


def test_window_ends_at_the_newest_frame_and_repeats_the_first_before_the_stream():
    times = np.arange(10) / 30
    x = np.arange(10, dtype=float)[:, None, None] * np.ones((1, 2, 2))
    grid, win = causal_window(times, x, frames=27)
    assert grid[-1] == times[-1] and len(grid) == 27
    np.testing.assert_allclose(np.diff(grid), 1 / 30)
    np.testing.assert_allclose(win[-10:, 0, 0], np.arange(10), atol=1e-5)  # a 30 fps stream: as is
    np.testing.assert_allclose(win[:17, 0, 0], 0.0)                         # before it: frame 0


def test_window_rate_is_the_streams_when_the_lifter_knows_it_else_30():
    assert lift_rate(np.arange(50) / 25) == pytest.approx(25)
    assert lift_rate(np.arange(50) / 60) == 30
    dropped = np.delete(np.arange(60) / 30, [5, 6, 20, 40])  # drops: the median interval holds
    assert lift_rate(dropped) == pytest.approx(30)
    assert window_grid(2.0, 30, 4).tolist() == pytest.approx([1.9, 1.9333333, 1.9666667, 2.0])


def test_a_frame_is_final_once_its_look_ahead_has_arrived():
    times = np.arange(20) / 30
    assert final_count(times, 0, 0.0) == 20
    assert final_count(times, 0, 0.1) == 17          # frame 16 + 3 frames = 19, the newest
    assert final_count(times, 10, 0.1) == 7
    assert final_count(times, 0, 1.0) == 0
    assert final_count(times[:5], 5, 0.0) == 0


def test_simulated_live_lift_never_looks_further_ahead_than_the_look_ahead():
    rng = np.random.default_rng(0)
    times = np.arange(60) / 30
    x = rng.normal(size=(60, 3, 2))
    out = simulate(mean_fn, times, x, frames=9, lookahead=0.1)
    x2 = x.copy()
    x2[40:] += 5.0   # change the future after frame 36 + 3 frames
    out2 = simulate(mean_fn, times, x2, frames=9, lookahead=0.1)
    np.testing.assert_array_equal(out[:37], out2[:37])
    assert not np.allclose(out[37], out2[37])       # frame 37 sees frame 40: it must change
    # the same as lifting each frame from the window ending 3 frames after it
    i = 20
    direct = lift_newest(mean_fn, times[:i + 4], x[:i + 4], 9, times[i:i + 1])
    np.testing.assert_allclose(out[i], direct[0])


def track(n: int, rng, fps: float = 30.0):
    """A person walking across a 640x480 picture: (n,) times, (n, 17, 2) px, (n, 17) conf."""
    from posecli.skeleton import NUM_JOINTS
    base = rng.uniform(-60, 60, (NUM_JOINTS, 2)) + [320, 240]
    drift = np.linspace(0, 80, n)[:, None, None] * [1, 0]
    xy = base + drift + rng.normal(0, 1.5, (n, NUM_JOINTS, 2))
    return np.arange(n) / fps, xy, np.full((n, NUM_JOINTS), 0.9)


class FakeLifter:
    """A lifter made of numpy (fast, deterministic): the 2D as a flat body, 1.7 m per unit of
    normalised height, with a depth from the window's mean so every output frame depends on
    every frame of its window (as MixSTE's attention does)."""
    frames = 27
    info = {"weights": "fake", "sha256": "0" * 64, "config": {}, "window": 27, "stride": 13,
            "flip_test": False, "backend": "torch"}

    def windows(self, x: np.ndarray, disagreement: bool = False) -> np.ndarray:
        body = (x - x[:, :, :1]) * 1.7
        depth = 0.2 * x[..., :1] * (1 + x.mean(axis=(1, 2), keepdims=True)[..., :1])
        extra = [0.01 * np.abs(x[..., :1])] if disagreement else []  # a made-up disagreement
        return np.concatenate([body, depth] + extra, axis=-1)

    def flip_disagreement(self):
        return None


@pytest.fixture(scope="module")
def tiny_lifter():
    return FakeLifter()


def run_session(lifter, times, xy, conf, lookahead, hole=None, keep=False, world=None,
                shift=None, **options):
    s = LiveSession(lifter, 640, 480, lookahead, keep=keep, **options)
    out, emitted_at = [], []
    for i in range(len(times)):
        p = xy[i] if hole is None or i not in hole else np.full((17, 2), np.nan)
        s.add(Arrived(i, float(times[i]), float(i), p, conf[i],
                      None if world is None else world[i], None if shift is None else shift[i]))
        recs = s.emit(now=float(i) + 0.5)
        out += recs
        emitted_at += [i] * len(recs)
    out += s.emit(now=len(times) + 0.5, flush=True)
    emitted_at += [len(times)] * (len(out) - len(emitted_at))
    return s, out, emitted_at


def test_session_emits_every_frame_once_in_order_after_its_look_ahead(tiny_lifter):
    times, xy, conf = track(120, np.random.default_rng(1))
    s, out, at = run_session(tiny_lifter, times, xy, conf, lookahead=0.25)
    assert [r["index"] for r in out] == list(range(120))
    ahead = round(0.25 * 30 + 0.5)  # 8 frames
    for r, i in zip(out, at):
        if i < 120:
            assert i - r["index"] == ahead, "a frame waited longer (or shorter) than its look-ahead"
    line = json.dumps(out[50], allow_nan=False)  # strict JSON
    rec = json.loads(line)
    assert set(rec) >= {"index", "time", "flag", "keypoints_2d", "confidence", "joints_3d",
                        "pelvis_world", "foot_contact", "delay_ms", "dropped"}
    assert rec["delay_ms"] == pytest.approx((50 + ahead + 0.5 - 50) * 1000)
    assert len(s.frames) < 120, "the history must stay bounded"


def test_session_history_stays_bounded_over_a_long_stream(tiny_lifter):
    times, xy, conf = track(400, np.random.default_rng(2))
    s, out, _ = run_session(tiny_lifter, times, xy, conf, lookahead=0.1)
    assert len(out) == 400
    assert len(s.frames) <= math.ceil(s.keep_s * 30) + 10
    assert len(s.t_raw) == len(s.world) == s.done - s.base


def test_session_is_causal_beyond_its_look_ahead(tiny_lifter):
    """Changing the stream after frame i + look-ahead never changes what frame i was sent as."""
    times, xy, conf = track(90, np.random.default_rng(3))
    _, a, _ = run_session(tiny_lifter, times, xy, conf, lookahead=0.1)
    xy2 = xy.copy()
    xy2[60:] += [40.0, -25.0]
    _, b, _ = run_session(tiny_lifter, times, xy2, conf, lookahead=0.1)
    assert a[:57] == b[:57]           # frames 0..56 were final before frame 60 arrived
    assert a[57]["joints_3d"] != b[57]["joints_3d"]


def landmarks(xy: np.ndarray, rng) -> np.ndarray:
    """(N, 33, 3) made-up BlazePose world landmarks (metres, hip-centred) moving with the 2D."""
    n = len(xy)
    body = rng.normal(0, 0.3, (33, 3)) + np.linspace(0, 0.2, n)[:, None, None]
    return body - (body[:, 23:24] + body[:, 24:25]) / 2


def test_fused_panned_foot_locked_session_is_causal_beyond_its_look_ahead(tiny_lifter):
    """With the fusion, the camera's pan and foot locking, a frame is still final once its
    look-ahead has arrived, and each of them changes what is sent."""
    from posecli.lifter.fusion import resolve
    rng = np.random.default_rng(7)
    times, xy, conf = track(90, rng)
    world = landmarks(xy, rng)
    shift = np.cumsum(np.full((90, 2), [-2.0, 0.0]), axis=0)
    on = dict(fusion=resolve("on"), foot_lock=True, world=world, shift=shift)
    _, a, _ = run_session(tiny_lifter, times, xy, conf, 0.1, **on)
    world2, shift2 = world.copy(), shift.copy()
    world2[60:] += 0.3
    shift2[60:] += 50.0
    _, b, _ = run_session(tiny_lifter, times, xy, conf, 0.1, **{**on, "world": world2,
                                                                   "shift": shift2})
    assert a[:57] == b[:57]
    assert a[57:] != b[57:]
    _, unlocked, _ = run_session(tiny_lifter, times, xy, conf, 0.1, **{**on, "foot_lock": False})
    _, unfused, _ = run_session(tiny_lifter, times, xy, conf, 0.1, **{**on, "fusion": None})
    _, still, _ = run_session(tiny_lifter, times, xy, conf, 0.1, **{**on, "shift": None})
    assert [r["joints_3d"] for r in a] != [r["joints_3d"] for r in unfused]
    assert [r["pelvis_world"] for r in a] != [r["pelvis_world"] for r in still]
    legs = np.array([r["joints_3d"] for r in a])[:, 1:7]
    free = np.array([r["joints_3d"] for r in unlocked])[:, 1:7]
    assert any(any(r["foot_contact"]) for r in a) and not np.allclose(legs, free)


def test_gaps_are_interpolated_when_the_detection_after_them_arrived_in_time(tiny_lifter):
    times, xy, conf = track(90, np.random.default_rng(4))
    _, out, _ = run_session(tiny_lifter, times, xy, conf, lookahead=0.25, hole={30, 31, 32})
    flags = [r["flag"] for r in out]
    assert flags[30:33] == ["interpolated"] * 3     # frame 33 arrived before 30 was due
    assert flags[29] == flags[33] == "detected"
    _, out, _ = run_session(tiny_lifter, times, xy, conf, lookahead=0.0, hole=set(range(40, 50)))
    flags = [r["flag"] for r in out]
    assert flags[40:50] == ["missing"] * 10         # no look-ahead: nobody is invented
    assert out[45]["joints_3d"] is None and out[45]["pelvis_world"] is None
    assert all(r["joints_3d"] is not None for r in out[50:])


def test_session_result_is_a_valid_lift_result(tiny_lifter, tmp_path):
    import jsonschema

    from posecli.export import write_all
    from posecli.export.json import schema
    times, xy, conf = track(100, np.random.default_rng(5))
    s, out, _ = run_session(tiny_lifter, times, xy, conf, lookahead=0.25, keep=True)
    res = s.result("live", video={"stream": "-", "live": True})
    paths = write_all(res, tmp_path, ["json", "bvh"])
    doc = json.loads(paths[0].read_text())
    jsonschema.validate(doc, schema("result"))
    assert [f["joints_3d"] for f in doc["frames"]] == [r["joints_3d"] for r in out]
    assert [f["pelvis_world"] for f in doc["frames"]] == [r["pelvis_world"] for r in out]
    assert paths[1].read_text().startswith("HIERARCHY")


def test_lift_thread_lifts_in_batches_and_never_makes_detection_wait_long():
    from posecli.live.run import LIFT_BATCH, LIFT_WAIT, lift_now
    assert not lift_now(0, 10.0, 0)                        # nothing final: nothing to lift
    assert not lift_now(LIFT_BATCH - 1, 0.0, 0)            # one frame: wait for the next
    assert lift_now(LIFT_BATCH, 0.0, 0)                    # a batch, detector idle: lift
    assert not lift_now(LIFT_BATCH + 3, 0.0, 2)            # the detector has frames: it first
    assert lift_now(1, LIFT_WAIT, 5)                       # ... but not longer than LIFT_WAIT


def test_pan_meter_measures_the_background_moving_and_ignores_the_person():
    from posecli.live.session import PanMeter
    rng = np.random.default_rng(8)
    scene = (rng.random((120, 900)) * 255).astype(np.uint8)
    scene = np.repeat(np.kron(scene, np.ones((4, 1), np.uint8))[..., None], 3, axis=-1)  # 480 x 900
    person = np.array([[300.0, 150.0], [340.0, 400.0]])
    pan, shifts = PanMeter(), []
    for i in range(6):   # the camera turns right: the background moves 6 px left a frame
        frame = scene[:, 12 * i // 2:12 * i // 2 + 640].copy()
        frame[150:400, 300:340] = 255 - 20 * i          # the person (changing) is left out
        shifts.append(pan(frame, person))
    np.testing.assert_allclose(np.array(shifts)[:, 0], -6.0 * np.arange(6), atol=1.0)
    np.testing.assert_allclose(np.array(shifts)[:, 1], 0.0, atol=1.0)


def test_drop_queue_drops_the_oldest_and_counts():
    now = [0.0]
    q = DropQueue(capacity=3, max_wait=0.5, clock=lambda: now[0])
    for i in range(5):
        q.put(Frame(None, i, i / 30, now[0]))
    assert q.dropped == 2 and q.get(1.0).index == 2
    now[0] = 1.0                                    # frames 3, 4 waited too long
    q.put(Frame(None, 5, 5 / 30, 1.0))
    assert q.get(1.0).index == 5 and q.dropped == 4
    with pytest.raises(TimeoutError):
        DropQueue(2, 1.0).get(0.05)
    q.close()
    assert q.get(1.0) is None


def test_follow_keeps_the_person_in_view_then_the_one_seen_longest():
    from posecli.detect2d import Detection

    def det(tid, h=100.0):
        xy = np.array([[0.0, 0.0], [0.0, h]])
        return Detection(xy, np.ones(2), 1.0, track_id=tid)
    seen = {}
    cur = follow([det(1)], None, seen)
    cur = follow([det(1), det(2, 300)], cur, seen)
    assert cur == 1                                 # kept although 2 is taller
    cur = follow([det(2, 300), det(3, 50)], cur, seen)
    assert cur == 2
    for _ in range(3):
        follow([det(3)], 3, seen)
    assert follow([det(2), det(3)], None, seen) == 3  # seen longest
    assert follow([det(2)], None, seen, person=3) is None


def test_source_arguments(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert input_args(str(clip))[0] == ["-re", "-i", str(clip)]  # a file plays in real time
    assert input_args("-") == (["-i", "pipe:0"], True)
    assert input_args("0", "linux")[0] == ["-f", "v4l2", "-i", "/dev/video0"]
    assert input_args("/dev/video2", "linux")[0][-1] == "/dev/video2"
    assert "overrun_nonfatal=1" in input_args("udp://127.0.0.1:5000")[0][-1]
    assert input_args("rtsp://cam/stream")[0] == ["-i", "rtsp://cam/stream"]


def test_read_ppm():
    import io
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    buf = io.BytesIO(b"P6\n3 2\n255\n" + img.tobytes() + b"P6\n3 2\n255\n" + b"\x00" * 5)
    np.testing.assert_array_equal(read_ppm(buf), img)
    assert read_ppm(buf) is None                    # cut short
    assert read_ppm(io.BytesIO(b"")) is None


def test_options_are_checked_before_any_work(tmp_path):
    assert parse_udp("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_udp("[::1]:9000") == ("::1", 9000)
    for bad in ("9000", "host:", "host:70000"):
        with pytest.raises(UsageError):
            parse_udp(bad)
    for kw in ({"delay": -1}, {"timeout": 0}, {"backlog": float("nan")}, {"formats": ("mp4",)}):
        with pytest.raises(UsageError):
            LiveConfig("-", **kw)
    src = tmp_path / "clip.ts"
    src.write_bytes(b"x")
    with pytest.raises(UsageError, match="overwrite"):
        LiveConfig(str(src), output=str(src))
