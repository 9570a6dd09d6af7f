"""Closing a batch: the exit status and the machine-readable summary."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from posecli.batch.clip import ClipReport
from posecli.batch.inputs import Clip
from posecli.options import LiftOptions

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # 130 = 128 + SIGINT, the shell convention


def exit_status(reports: list[ClipReport], interrupted: bool) -> int:
    """0: every clip ok or skipped; 1: any failed; 130: interrupted (Ctrl-C / SIGTERM)."""
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(r.status == "failed" for r in reports) else EXIT_OK


def summary(reports: list[ClipReport], clips: list[Clip], options: LiftOptions, engine: str,
            jobs: int, interrupted: bool, seconds: float) -> dict:
    """The machine-readable summary: per clip, totals, versions and settings.

    Clips that never finished (interrupted batch) are listed with status ``interrupted``.
    """
    import importlib.metadata as md
    import platform

    from posecli import __version__

    done = {r.clip for r in reports}
    rows = list(reports) + [ClipReport(c.name, "interrupted", reason="not finished")
                            for c in clips if c.name not in done]
    versions = {"posecli": __version__, "python": platform.python_version()}
    for pkg in ("torch", "numpy", "ai-edge-litert", "onnxruntime", "ray"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "skipped", "failed", "interrupted")}
    return {
        "format": "posecli-batch-summary/1",
        "exit_status": exit_status(reports, interrupted),
        "interrupted": interrupted,
        "engine": engine, "jobs": jobs, "wall_seconds": round(seconds, 3),
        "counts": counts,
        "frames_processed": sum(r.frames or 0 for r in rows if r.status == "ok"),
        "versions": versions,
        "settings": {**options.record(), "threads": options.threads, "overwrite": options.overwrite,
                     "weights": options.weights},
        "clips": [{**asdict(r), "seconds": round(r.seconds, 3),
                   "frames_per_second": round(r.fps, 2) if r.fps else None} for r in rows],
    }


def write_summary(path: Path, doc: dict) -> None:
    """Write the summary JSON atomically."""
    from posecli.files import atomic_path
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
