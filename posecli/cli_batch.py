"""What ``posecli lift`` shows while a batch runs: progress bars, the log file, the summary table.

The work itself is in :mod:`posecli.batch`; this module only drives an engine and reports.
"""
from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from posecli import batch
from posecli.batch import Clip, ClipReport
from posecli.options import LiftOptions

MAX_TABLE_ROWS = 40  # longer batches show failures first, the rest is in --summary


class Log:
    """Timestamped lines appended to a file (``--log``), flushed at once for ``tail -f``."""

    def __init__(self, path: Path | None):
        self.file: TextIO | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a", encoding="utf-8")

    def __call__(self, msg: str) -> None:
        if self.file:
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.file.write(f"{stamp} {msg}\n")
            self.file.flush()

    def close(self) -> None:
        if self.file:
            self.file.close()


class BatchBars:
    """An overall bar (clips done, frames, ETA) and one bar per clip in progress."""

    def __init__(self, console: Console, total: int):
        self.bar = Progress(TextColumn("{task.description:<24.24}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, transient=False)
        self.overall = self.bar.add_task("all clips", total=total, info="")
        self.clips: dict[str, int] = {}
        self.frames = 0

    def clip_progress(self, clip: str, stage: str, done: int, total: int | None) -> None:
        """posecli.batch.ClipProgress: a clip's current stage, frames done of total."""
        if clip not in self.clips:
            self.clips[clip] = self.bar.add_task(escape(clip), total=total, info="")
        task = self.clips[clip]
        speed = self.bar.tasks[[t.id for t in self.bar.tasks].index(task)].speed
        self.bar.update(task, completed=done, total=max(total or 0, done) or None,
                        info=f"{stage} {speed:5.1f} f/s" if speed else stage)

    def finished(self, report: ClipReport) -> None:
        if report.clip in self.clips:
            self.bar.remove_task(self.clips.pop(report.clip))
        if report.status == "ok":
            self.frames += report.frames or 0
        self.bar.update(self.overall, advance=1, info=f"{self.frames} frames")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler stopping the job) ends the batch like Ctrl-C: summary, status 130."""
    def handler(*_):
        raise KeyboardInterrupt
    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _engine(clips: list[Clip], out_dir: Path, options: LiftOptions, engine: str, jobs: int,
            ray_address: str | None, progress) -> Iterator[ClipReport]:
    if engine == "ray":
        return batch.run_ray(clips, out_dir, options, address=ray_address)
    return batch.run_local(clips, out_dir, options, jobs=jobs, progress=progress)


def run_batch(clips: list[Clip], out_dir: Path, options: LiftOptions, *, engine: str, jobs: int,
              ray_address: str | None, summary_path: Path | None, log_path: Path | None,
              quiet: bool, out: Console, err: Console) -> int:
    """Run every clip through an engine, report, write the summary; returns the exit status."""
    log = Log(log_path)
    log(f"start: {len(clips)} clips -> {out_dir}, engine {engine}, jobs {jobs}, "
        f"threads {options.threads}, settings {options.record()}")
    reports: list[ClipReport] = []
    interrupted = False
    t0 = time.perf_counter()
    bars = None if quiet else BatchBars(err, len(clips))
    stream = _engine(clips, out_dir, options, engine, jobs, ray_address,
                     bars.clip_progress if bars else None)
    try:
        with _sigterm_as_interrupt(), (bars.bar if bars else _nothing()):
            for report in stream:
                reports.append(report)
                _report_line(report, log, out, err, quiet, single=len(clips) == 1)
                if bars:
                    bars.finished(report)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stream.close()  # stops workers / cancels Ray tasks of unfinished clips
    code = batch.exit_status(reports, interrupted)
    doc = batch.summary(reports, clips, options, engine, jobs, interrupted, time.perf_counter() - t0)
    if summary_path is not None:
        try:  # checked up front (posecli.cli); a disk that fills meanwhile is still one line
            batch.write_summary(summary_path, doc)
        except OSError as e:
            err.print(f"[bold red]error:[/] cannot write the summary {escape(str(summary_path))}: "
                      f"{escape(e.strerror or str(e))}", highlight=False, soft_wrap=True)
            code = code or batch.EXIT_FAILED
    log(f"end: {doc['counts']}, {doc['frames_processed']} frames in {doc['wall_seconds']} s, exit {code}")
    log.close()
    if len(clips) > 1 or interrupted:
        out.print(_table(doc["clips"]))
    _closing_line(doc, len(clips), code, err)
    return code


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _report_line(r: ClipReport, log: Log, out: Console, err: Console, quiet: bool, single: bool) -> None:
    """One line per finished clip: to the log always, to the terminal as before this module."""
    log(f"{r.status}: {r.clip}" + (f" ({r.frames} frames, {r.seconds:.1f} s)" if r.status == "ok" else "")
        + (f": {r.reason}" if r.reason and r.status != "skipped" else ""))
    if r.status == "ok":
        if r.warning:
            err.print(f"[bold yellow]warning:[/] {escape(r.warning)}", highlight=False, soft_wrap=True)
        for line in r.quality:
            out.print(escape(line), highlight=False, soft_wrap=True)
        for p in r.outputs:
            out.print(f"wrote {escape(p)}", highlight=False)
    elif r.status == "skipped":
        out.print(f"skipped {escape(r.clip)}: outputs complete (--overwrite redoes it)", highlight=False)
    elif r.status == "failed" and not single:
        err.print(f"[bold red]error:[/] {escape(r.clip)}: {escape(r.reason)}", highlight=False, soft_wrap=True)


def _table(rows: list[dict]) -> Table:
    """clip, frames, seconds, frames/s, status, reason: failures first when rows are cut."""
    table = Table(title="posecli batch")
    for col, just in (("clip", "left"), ("frames", "right"), ("seconds", "right"),
                      ("frames/s", "right"), ("status", "left"), ("reason", "left")):
        table.add_column(col, justify=just, overflow="fold")
    colour = {"ok": "green", "skipped": "cyan", "failed": "red", "interrupted": "yellow"}
    shown = rows if len(rows) <= MAX_TABLE_ROWS else \
        sorted(rows, key=lambda r: r["status"] in ("ok", "skipped"))[:MAX_TABLE_ROWS]
    for r in shown:
        table.add_row(escape(r["clip"]), "" if r["frames"] is None else str(r["frames"]),
                      f"{r['seconds']:.1f}" if r["status"] == "ok" else "",
                      f"{r['frames_per_second']:.1f}" if r["frames_per_second"] else "",
                      f"[{colour[r['status']]}]{r['status']}[/]", escape(r["reason"]))
    if len(rows) > len(shown):
        table.caption = f"{len(rows) - len(shown)} more rows in the --summary file"
    return table


def _closing_line(doc: dict, n: int, code: int, err: Console) -> None:
    """The last line: one ``error:`` line on failure (as the single-clip CLI always printed)."""
    c = doc["counts"]
    failed = [r for r in doc["clips"] if r["status"] == "failed"]
    if code == batch.EXIT_INTERRUPTED:
        err.print(f"[bold yellow]interrupted:[/] {c['ok']} done, {c['skipped']} skipped, {c['failed']} failed, "
                  f"{c['interrupted']} not finished; rerun the same command to resume", highlight=False)
    elif failed and n == 1:
        err.print(f"[bold red]error:[/] {escape(failed[0]['reason'])}", highlight=False, soft_wrap=True)
    elif failed:
        err.print(f"[bold red]error:[/] {len(failed)} of {n} inputs failed: "
                  f"{escape(', '.join(Path(r['clip']).name for r in failed))}", highlight=False, soft_wrap=True)
