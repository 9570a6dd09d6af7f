"""The per-clip function every engine runs, and the models it reuses within a process."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from posecli.batch.inputs import Clip
from posecli.batch.records import (is_complete, provenance, record_format,
                                   recorded_frames, sidecar)
from posecli.errors import PosecliError
from posecli.options import LiftOptions

# on_progress(clip, stage, done, total): per-clip progress, as posecli.pipeline.Progress plus the clip.
ClipProgress = Callable[[str, str, int, "int | None"], None]

# The models of this process, kept between clips: building the detector and loading the lifter
# cost ~1 s a clip, as much as lifting a short clip. Per process by design: a --jobs worker or a
# Ray worker lifts many clips, each with the same options. Never shared across processes.
_PROCESS_MODELS: list = []


def worker_models(options: LiftOptions, lifter=None):
    """This process's :class:`posecli.pipeline.Models` for ``options``: the ones built for an
    earlier clip when their model options match, else new ones (which replace them).
    ``lifter``: an already loaded lifter to use for new ones."""
    from posecli.pipeline import Models

    if _PROCESS_MODELS and _PROCESS_MODELS[0].fits(options):
        return _PROCESS_MODELS[0]
    _PROCESS_MODELS[:] = [Models(options, lifter)]
    return _PROCESS_MODELS[0]


@dataclass
class ClipReport:
    """What happened to one clip. status: ok | skipped | failed | interrupted."""
    clip: str
    status: str
    frames: int | None = None
    seconds: float = 0.0                # wall time spent on the clip in its worker
    reason: str = ""
    outputs: list[str] = field(default_factory=list)
    quality: list[str] = field(default_factory=list)  # one line per result (posecli.quality)
    warning: str = ""                   # e.g. a truncated video that was lifted anyway

    @property
    def fps(self) -> float | None:
        """Frames per second of wall time (None when nothing was processed)."""
        return self.frames / self.seconds if self.frames and self.seconds > 0 and self.status == "ok" else None


def process_clip(clip: Clip, out_root: Path, options: LiftOptions,
                 progress: ClipProgress | None = None) -> ClipReport:
    """Lift one clip and write its outputs, unless they are already complete.

    Never raises for a bad clip: expected failures (PosecliError: corrupt file, no person,
    decode error ...) and unexpected ones (a bug) become a ``failed`` report, so a batch goes
    on. KeyboardInterrupt / SystemExit propagate (the writers clean up their temporary files).
    Models are built once per process (:func:`worker_models`).
    """
    t0 = time.perf_counter()
    try:
        if not options.overwrite and is_complete(clip, out_root, options):
            return ClipReport(clip.name, "skipped", recorded_frames(clip, out_root, options),
                              reason="complete", outputs=[str(clip.output(out_root, f)) for f in options.formats])
        results = _lift(clip, options, progress)
        outputs = _write(clip, out_root, options, results)
        return ClipReport(clip.name, "ok", results[0].num_frames, time.perf_counter() - t0, outputs=outputs,
                          quality=[_quality_line(r) for r in results if r.quality is not None],
                          warning=_truncation_warning(clip, results[0]))
    except PosecliError as e:
        return ClipReport(clip.name, "failed", seconds=time.perf_counter() - t0, reason=_naming(clip, str(e)))
    except Exception as e:  # a bug on one clip must not end a batch of thousands; keep its type
        if os.environ.get("POSECLI_DEBUG"):
            raise
        return ClipReport(clip.name, "failed", seconds=time.perf_counter() - t0,
                          reason=_naming(clip, f"unexpected {type(e).__name__}: {e} "
                                               "(a bug; POSECLI_DEBUG=1 shows the traceback)"))


def _naming(clip: Clip, message: str) -> str:
    """One line that names the input file."""
    message = " ".join(message.split())
    return message if str(clip.path) in message else f"{clip.path}: {message}"


def _lift(clip: Clip, options: LiftOptions, progress: ClipProgress | None) -> list:
    from posecli.pipeline import lift

    report = (lambda stage, done, total: progress(clip.name, stage, done, total)) if progress else None
    results = lift(clip.path, options, progress=report, models=worker_models(options))
    return results if isinstance(results, list) else [results]


def _write(clip: Clip, out_root: Path, options: LiftOptions, results: list) -> list[str]:
    """Write every format of every result (one per person with ``--person all``), the record
    last: its presence means the others are finished."""
    from posecli.export import write_all
    from posecli.files import atomic_path

    out_dir = Path(out_root) / clip.rel.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    record = record_format(options)
    order = [f for f in options.formats if f != record] + ([record] if record else [])
    paths: list[Path] = []
    together = ["html"] if options.per_person and "html" in order else []  # one page, everyone
    for result in results:
        result.provenance = provenance(clip, options)
        who = (result.detector or {}).get("person") if options.per_person else None
        paths += write_all(result, out_dir, [f for f in order if f not in together],
                           options.writer_options(),
                           suffix=f".person{who['track_id']}" if who else "")
    if together and results:
        paths += write_all(results[0], out_dir, together, {"html": {"people": results}})
    if record is None:
        with atomic_path(sidecar(clip, out_root)) as tmp:
            tmp.write_text(json.dumps({"provenance": provenance(clip, options),
                                       "num_frames": results[0].num_frames if results else 0,
                                       "outputs": [str(p) for p in paths]}))
    return [str(p) for p in paths]


def _truncation_warning(clip: Clip, result) -> str:
    """The clip's warnings in one line: a truncated file, a moving camera."""
    from posecli.pipeline import truncation_message
    from posecli.quality import camera_warning
    parts = [truncation_message(str(clip.path), result.video) if (result.video or {}).get("truncated") else "",
             camera_warning(result.quality)]
    parts = [p for p in parts if p]
    return (f"{clip.path}: " if parts and not parts[0].startswith(str(clip.path)) else "") + "; ".join(parts)


def _quality_line(result) -> str:
    from posecli.quality import one_line
    return one_line(result.quality)
