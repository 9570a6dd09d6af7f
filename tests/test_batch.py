"""Batch runs: discovery and mirrored outputs, resume, isolation, summary and exit status,
interruption, parallel jobs, and the Ray engine (skipped when Ray is not installed)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REPO
from posecli import batch
from posecli.cli import app

EXAMPLE_KP = REPO / "examples" / "cmu_07_05_walk.keypoints.json"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def keypoint_clip(path: Path, repeat: int = 1) -> Path:
    """A valid keypoint input (the example, its frames repeated ``repeat`` times)."""
    doc = json.loads(EXAMPLE_KP.read_text())
    doc["frames"] = doc["frames"] * repeat
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def make_tree(root: Path) -> Path:
    """clips/a.json, clips/sub/b.json, clips/sub/deeper/c.json, clips/broken.mp4 (not a video)."""
    clips = root / "clips"
    for rel in ("a.json", "sub/b.json", "sub/deeper/c.json"):
        keypoint_clip(clips / rel)
    (clips / "broken.mp4").write_text("not a video")
    return clips


def tree_bytes(out: Path) -> dict:
    """Every result file below ``out`` (relative path -> bytes), summaries and logs left out."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.json"))
            if p.name != "summary.json"}


# ---- discovery --------------------------------------------------------------------------------

def test_discover_mirrors_folders_recursive_and_globs(tmp_path):
    clips = make_tree(tmp_path)
    flat = batch.discover([clips])
    assert [c.name for c in flat] == ["a.json", "broken.mp4"]
    deep = batch.discover([clips], recursive=True)
    assert [c.name for c in deep] == ["a.json", "broken.mp4", "sub/b.json", "sub/deeper/c.json"]
    assert deep[3].output(tmp_path / "out", "json") == tmp_path / "out" / "sub" / "deeper" / "c.json"
    globbed = batch.discover([str(clips / "**" / "*.json")])
    assert [c.name for c in globbed] == ["a.json", "sub/b.json", "sub/deeper/c.json"]
    single = batch.discover([clips / "sub" / "b.json"])
    assert [c.name for c in single] == ["b.json"]


def test_discover_skips_the_output_folder_and_refuses_collisions(tmp_path):
    clips = make_tree(tmp_path)
    keypoint_clip(clips / "out" / "old.json")  # an output folder inside the input tree
    names = [c.name for c in batch.discover([clips], recursive=True, exclude=clips / "out")]
    assert "out/old.json" not in names
    assert len(batch.discover([clips], exclude=tmp_path)) == 2  # an output folder above: nothing skipped
    assert len(batch.discover([clips], exclude=clips)) == 2     # outputs beside the inputs: the same
    keypoint_clip(clips / "a.mp4")  # a.mp4 and a.json would both write a.json
    with pytest.raises(batch.UsageError, match="same outputs"):
        batch.discover([clips])
    with pytest.raises(batch.UsageError, match="matches no"):
        batch.discover([str(tmp_path / "*.nothing")])


# ---- isolation, summary, exit status, log -----------------------------------------------------

def test_batch_isolates_failures_and_writes_summary_and_log(tmp_path, tiny_weights):
    clips = make_tree(tmp_path)
    out = tmp_path / "out"
    r = run("lift", clips, "-r", "-o", out, "--weights", tiny_weights, "--summary", out / "summary.json",
            "--log", tmp_path / "run.log", "-q")
    assert r.exit_code == batch.EXIT_FAILED, r.output
    assert sorted(tree_bytes(out)) == ["a.json", "sub/b.json", "sub/deeper/c.json"]
    assert "1 of 4 inputs failed: broken.mp4" in r.output
    assert "posecli batch" in r.output  # the table
    doc = json.loads((out / "summary.json").read_text())
    assert doc["exit_status"] == 1 and doc["counts"] == {"ok": 3, "skipped": 0, "failed": 1, "interrupted": 0}
    rows = {c["clip"]: c for c in doc["clips"]}
    assert rows["broken.mp4"]["status"] == "failed" and "not a readable video" in rows["broken.mp4"]["reason"]
    assert rows["sub/b.json"]["frames"] == 129 and rows["sub/b.json"]["frames_per_second"] > 0
    assert doc["versions"]["posecli"] and doc["settings"]["weights_sha256"]
    log = (tmp_path / "run.log").read_text().splitlines()
    assert log[0].split(" ", 1)[1].startswith("start: 4 clips") and "exit 1" in log[-1]
    assert sum(" failed: broken.mp4" in line for line in log) == 1


# ---- resume -----------------------------------------------------------------------------------

def test_rerun_skips_complete_clips_and_redoes_changed_ones(tmp_path, tiny_weights):
    clips = tmp_path / "clips"
    for name in ("a", "b", "c"):
        keypoint_clip(clips / f"{name}.json")
    out = tmp_path / "out"
    args = ("lift", clips, "-o", out, "--weights", tiny_weights, "-q", "--summary", tmp_path / "s.json")
    assert run(*args).exit_code == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}

    assert run(*args).exit_code == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["counts"]["skipped"] == 3 and doc["counts"]["ok"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == first

    os.utime(clips / "a.json", ns=(time.time_ns(), time.time_ns() - 10**9))  # input touched
    (out / "b.json").write_text((out / "b.json").read_text()[:-100])         # output damaged
    assert run(*args).exit_code == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert {c["clip"]: c["status"] for c in doc["clips"]} == {"a.json": "ok", "b.json": "ok", "c.json": "skipped"}

    assert run(*args, "--no-flip").exit_code == 0  # other settings: every clip redone
    assert json.loads((tmp_path / "s.json").read_text())["counts"]["ok"] == 3
    assert run(*args, "--no-flip", "--overwrite").exit_code == 0
    assert json.loads((tmp_path / "s.json").read_text())["counts"]["ok"] == 3


def test_result_records_what_resume_needs(tmp_path, tiny_weights):
    src = keypoint_clip(tmp_path / "k.json")
    assert run("lift", src, "-o", tmp_path / "o", "--weights", tiny_weights, "-q").exit_code == 0
    prov = json.loads((tmp_path / "o" / "k.json").read_text())["provenance"]
    assert prov["input_file"]["size"] == src.stat().st_size
    assert prov["input_file"]["mtime_ns"] == src.stat().st_mtime_ns
    assert len(prov["input_file"]["sha256_head"]) == 64
    assert prov["settings"]["flip"] is True and prov["settings"]["formats"] == ["json"]


# ---- interruption -----------------------------------------------------------------------------

def test_interrupted_batch_exits_130_and_rerun_does_each_clip_once(tmp_path, tiny_weights):
    clips = tmp_path / "clips"
    names = [f"c{i:02d}.json" for i in range(5)]
    for n in names:
        keypoint_clip(clips / n, repeat=2)  # stride 1: about a second each, time to interrupt
    (clips / "zz_broken.json").write_text("{")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "posecli.cli", "lift", str(clips), "-o", str(out), "--weights",
           str(tiny_weights), "--stride", "1", "-q", "--threads", "1", "--summary", str(tmp_path / "s1.json")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # (a test run started in the background by a non-interactive shell inherits an ignored
    # SIGINT, as every child would: give the child Ctrl-C back)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not list(out.glob("c*.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == batch.EXIT_INTERRUPTED, output
    assert "interrupted" in output
    s1 = json.loads((tmp_path / "s1.json").read_text())
    done_first = {c["clip"] for c in s1["clips"] if c["status"] == "ok"}
    assert 1 <= len(done_first) < len(names) and s1["counts"]["interrupted"] >= 1
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written left

    cmd[-1] = str(tmp_path / "s2.json")
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == batch.EXIT_FAILED, second.stdout + second.stderr  # zz_broken
    s2 = {c["clip"]: c["status"] for c in json.loads((tmp_path / "s2.json").read_text())["clips"]}
    assert {c for c, s in s2.items() if s == "skipped"} == done_first
    assert {c for c, s in s2.items() if s == "ok"} == set(names) - done_first  # each good clip once
    assert s2["zz_broken.json"] == "failed"


# ---- parallel jobs ----------------------------------------------------------------------------

def test_jobs_give_the_same_bytes_as_one_process(tmp_path, tiny_weights):
    clips = make_tree(tmp_path)
    outs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        r = run("lift", clips, "-r", "-o", out, "--weights", tiny_weights, "--jobs", jobs, "--threads", 1, "-q")
        assert r.exit_code == 1 and "1 of 4 inputs failed: broken.mp4" in r.output, r.output
        outs[jobs] = tree_bytes(out)
    assert len(outs[1]) == 3 and outs[1] == outs[2]


def test_names_with_brackets_are_printed_as_they_are(tmp_path, tiny_weights):
    keypoint_clip(tmp_path / "in" / "take[1].json")
    (tmp_path / "in" / "bad[2].mp4").write_text("x")
    r = run("lift", tmp_path / "in", "-o", tmp_path / "out", "--weights", tiny_weights, "-q")
    assert r.exit_code == 1
    assert "take[1].json" in r.output and "inputs failed: bad[2].mp4" in r.output, r.output


def test_exit_status():
    ok, failed = batch.ClipReport("a", "ok", 10, 1.0), batch.ClipReport("b", "failed", reason="x")
    assert batch.exit_status([ok], False) == 0
    assert batch.exit_status([ok, failed], False) == 1
    assert batch.exit_status([ok], True) == 130


# ---- Ray --------------------------------------------------------------------------------------

def test_ray_engine_matches_local_reports_failures_and_resumes(tmp_path, tiny_weights):
    ray = pytest.importorskip("ray")
    clips = make_tree(tmp_path)
    local = tmp_path / "local"
    r = run("lift", clips, "-r", "-o", local, "--weights", tiny_weights, "--threads", 1, "-q")
    assert r.exit_code == 1, r.output
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})  # a local instance, 2 workers
    try:
        out = tmp_path / "ray"
        args = ("lift", clips, "-r", "-o", out, "--weights", tiny_weights, "--engine", "ray",
                "--threads", 1, "-q", "--summary", tmp_path / "s.json")
        r = run(*args)
        assert r.exit_code == 1, r.output
        assert tree_bytes(out) == tree_bytes(local) and len(tree_bytes(out)) == 3
        doc = json.loads((tmp_path / "s.json").read_text())
        assert doc["engine"] == "ray" and doc["counts"] == {"ok": 3, "skipped": 0, "failed": 1, "interrupted": 0}
        assert "not a readable video" in {c["clip"]: c for c in doc["clips"]}["broken.mp4"]["reason"]
        r = run(*args)
        assert r.exit_code == 1
        assert json.loads((tmp_path / "s.json").read_text())["counts"]["skipped"] == 3
    finally:
        ray.shutdown()
