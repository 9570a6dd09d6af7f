"""Engines: the same per-clip function run here, in worker processes, or as Ray tasks.

Each yields :class:`ClipReport` s as clips finish; closing the iterator early (Ctrl-C in the
caller) stops the clips still running. Every worker process builds its models once and keeps
them for its next clips (:func:`posecli.batch.clip.worker_models`).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

from posecli.batch.clip import ClipProgress, ClipReport, process_clip
from posecli.batch.inputs import Clip
from posecli.errors import UsageError
from posecli.options import LiftOptions


def run_local(clips: list[Clip], out_root: Path, options: LiftOptions, jobs: int = 1,
              progress: ClipProgress | None = None) -> Iterator[ClipReport]:
    """Process clips here (``jobs == 1``) or in ``jobs`` worker processes; yield reports as
    clips finish. Closing the iterator early (Ctrl-C in the caller) terminates the workers."""
    if jobs <= 1:
        for clip in clips:
            yield process_clip(clip, out_root, options, progress)
        return
    yield from _run_pool(clips, out_root, options, jobs, progress)


def _worker_init() -> None:
    """Workers leave Ctrl-C to the parent, and turn SIGTERM (the parent's terminate) into
    SystemExit so that ``atomic_path`` removes a half-written temporary file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class QueueProgress:
    """A picklable progress callback that forwards (clip, stage, done, total) to a queue,
    at most every ``every`` frames so the pipe does not slow the worker down."""

    def __init__(self, queue, every: int = 10):
        self.queue, self.every = queue, every

    def __call__(self, clip: str, stage: str, done: int, total: int | None) -> None:
        if done % self.every == 0 or done == total or done <= 1:
            self.queue.put((clip, stage, done, total))


def _run_pool(clips: list[Clip], out_root: Path, options: LiftOptions, jobs: int,
              progress: ClipProgress | None) -> Iterator[ClipReport]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fork after torch has started its thread pool can hang
    manager = ctx.Manager() if progress else None
    q = manager.Queue() if manager else None
    pool = ctx.Pool(jobs, initializer=_worker_init)
    pending: dict = {}
    try:
        pending = {pool.apply_async(process_clip, (c, out_root, options, QueueProgress(q) if q else None)): c
                   for c in clips}
        while pending:
            for res in [r for r in pending if r.ready()]:
                clip = pending.pop(res)
                try:
                    yield res.get()
                except Exception as e:  # the worker itself broke (pickling, crash)
                    yield ClipReport(clip.name, "failed", reason=f"worker error: {type(e).__name__}: {e}")
            _drain(q, progress, timeout=0.1)
        pool.close()  # every clip reported: let the workers exit on their own
    finally:
        if pending:  # Ctrl-C or the caller stopped early: stop the running clips now
            pool.terminate()
        pool.join()
        if manager:
            manager.shutdown()


def _drain(q, progress: ClipProgress | None, timeout: float) -> None:
    """Forward queued progress messages; wait up to ``timeout`` s for the first one."""
    import queue as queue_mod
    if q is None or progress is None:
        time.sleep(timeout)
        return
    try:
        item = q.get(timeout=timeout)
        while True:
            progress(*item)
            item = q.get_nowait()
    except queue_mod.Empty:
        pass


def run_ray(clips: list[Clip], out_root: Path, options: LiftOptions,
            address: str | None = None) -> Iterator[ClipReport]:
    """Run :func:`process_clip` as Ray tasks (``options.threads`` CPUs each) and yield reports
    as they finish. Connects to ``address`` (or ``RAY_ADDRESS``); with neither, starts a local
    Ray instance. Outputs go to ``out_root``, which every worker must see (a shared path).
    Closing the iterator early cancels the clips not finished."""
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'posecli[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None,
                 log_to_driver=False, include_dashboard=False)
    task = ray.remote(num_cpus=options.threads, max_retries=0)(process_clip)
    pending = {task.remote(c, Path(out_root), options): c for c in clips}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                clip = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as e:  # the worker died (out of memory, killed): report, go on
                    yield ClipReport(clip.name, "failed", reason=f"ray task error: {type(e).__name__}: "
                                                                 f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
