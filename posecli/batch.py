"""Batch processing: many clips in, one output tree out, resumable, one failure never stops it.

- :func:`discover` turns files, folders (optionally recursive) and globs into :class:`Clip` s,
  each with the relative path its outputs mirror: ``OUT/<relative folder>/<stem>.<format>``.
- :func:`process_clip` is the one per-clip function every engine runs (a top-level function,
  so it pickles to worker processes and Ray tasks). It skips a clip whose outputs are complete,
  and turns every failure into a :class:`ClipReport` instead of an exception.
- Completeness (:func:`is_complete`): every output exists and the record file (the JSON
  result, written last) parses and records the same input file identity (size, mtime, sha256
  of the first MiB) and the same settings. Writers are atomic, so a crash or Ctrl-C leaves
  either the old state or the finished file, never a partial file taken for complete.
- Engines: :func:`run_local` (in this process, or ``jobs`` worker processes) and
  :func:`run_ray` (Ray tasks on a local instance or a cluster). Both yield reports as clips
  finish; :func:`write_summary` and :func:`exit_status` close a batch.
"""
from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from posecli.errors import PosecliError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # 130 = 128 + SIGINT, the shell convention
HEAD_BYTES = 1 << 20  # the input's identity hashes its first MiB: cheap, and catches re-encodes
INPUT_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".json")
RECORD_FORMAT = "json"  # the output whose ``provenance`` block proves a clip is complete

# on_progress(clip, stage, done, total): per-clip progress, as posecli.pipeline.Progress plus the clip.
ClipProgress = Callable[[str, str, int, "int | None"], None]


@dataclass(frozen=True)
class Clip:
    """One input and where its outputs go: ``rel`` is its path relative to the input root."""
    path: Path
    rel: Path

    @property
    def name(self) -> str:
        return self.rel.as_posix()

    def output(self, out_root: Path, fmt: str) -> Path:
        """The output file of format ``fmt`` under ``out_root``, mirroring the input tree."""
        from posecli.export import output_path
        return output_path(self.rel.stem, Path(out_root) / self.rel.parent, fmt)


@dataclass(frozen=True)
class Settings:
    """Everything that decides a clip's outputs, plus how to run (threads)."""
    formats: tuple[str, ...] = ("json",)
    detector: str = "blazepose-full"
    pose_model: str | None = None       # HRNet's ONNX file or MMPose checkpoint (resolved path)
    weights: str | None = None          # resolved checkpoint path (None: shipped weights)
    weights_sha256: str = ""
    backend: str = "torch"
    flip: bool = True
    stride: int | None = None           # resolved stride, frames
    rigid: bool = True
    threads: int = 1                    # CPU threads per clip; does not change the outputs
    overwrite: bool = False
    focal: float | None = None          # px, for the root trajectory (None: the longer image side)
    root_motion: bool = True
    plausible: bool = True              # anthropometric limb ratios
    bvh_scale: float = 1.0              # BVH lengths: 1 metres, 100 centimetres
    person: str | int = "auto"          # auto | all (one output set per person) | a track id
    max_people: int = 5
    allow_truncated: bool = True        # a truncated video: lifted with a warning (False: an error)
    fusion: str = "default"             # default (shipped fusion file) | off | a fusion file path
    fusion_sha256: str = ""             # checksum of the fusion file used ("" when off)

    def record(self) -> dict:
        """The settings a rerun must match to skip a clip (not threads, not overwrite)."""
        from posecli import __version__
        return {"posecli_version": __version__, "formats": sorted(self.formats),
                "detector": self.detector, "weights_sha256": self.weights_sha256,
                "backend": self.backend, "flip": self.flip, "stride": self.stride,
                "rigid": self.rigid, "focal": self.focal, "root_motion": self.root_motion,
                "plausible": self.plausible, "bvh_scale": self.bvh_scale, "person": self.person,
                "max_people": self.max_people, "allow_truncated": self.allow_truncated,
                "fusion": "off" if self.fusion == "off" else self.fusion_sha256,
                **({"pose_model_sha256": self.pose_model_sha256} if self.pose_model else {})}

    @functools.cached_property
    def pose_model_sha256(self) -> str | None:
        """Checksum of the HRNet model file (outputs depend on it, not on its path)."""
        if self.pose_model is None:
            return None
        from posecli.weights import sha256
        return sha256(self.pose_model)

    @property
    def per_person(self) -> bool:
        """One output set per tracked person (``--person all``): file names are not known in
        advance, so the record is the hidden sidecar listing them."""
        return self.person == "all"


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


# ---- discovering inputs ---------------------------------------------------------------------

def _is_input(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in INPUT_SUFFIXES and not p.name.startswith(".")


def _glob_root(pattern: str) -> Path:
    """The folder before the first wildcard of a glob: the root the outputs mirror from."""
    parts = Path(pattern).parts
    fixed = [p for p in parts[:next(i for i, p in enumerate(parts) if glob.has_magic(p))]]
    return Path(*fixed) if fixed else Path(".")


def discover(items: Iterable[str | Path], recursive: bool = False,
             exclude: Path | None = None) -> list[Clip]:
    """Files, folders and globs -> clips in a stable order, each with its mirrored path.

    A file maps to its own name; a folder's files (``recursive``: its whole tree) map to their
    path below the folder; a glob's matches map to their path below the glob's fixed prefix.
    ``exclude`` (the output folder), when it lies inside a searched folder, is not searched,
    so earlier outputs are not taken as inputs.
    Raises UsageError for a path that does not exist, a folder or glob with no input, or two
    inputs that would write the same output.
    """
    exclude = exclude.resolve() if exclude is not None else None
    clips: list[Clip] = []
    for item in items:
        text = str(item)
        path = Path(text)
        if not path.exists() and glob.has_magic(text):
            root = _glob_root(text)
            found = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
            found = [p for p in found if _is_input(p)]
            if not found:
                raise UsageError(f"{text}: the pattern matches no video or keypoint file")
            clips += [Clip(p, p.relative_to(root)) for p in found]
        elif path.is_dir():
            # only an output folder *below* this one is skipped (``-o .`` above it skips nothing)
            skip = exclude if exclude is not None and path.resolve() in exclude.parents else None
            walk = path.rglob("*") if recursive else path.iterdir()
            found = sorted(p for p in walk if _is_input(p) and not _inside(p, skip))
            if not found:
                raise UsageError(f"{path}: the folder holds no video ({', '.join(INPUT_SUFFIXES[:-1])}) "
                                 "or keypoint file" + ("" if recursive else " (--recursive searches subfolders)"))
            clips += [Clip(p, p.relative_to(path)) for p in found]
        elif path.exists():
            clips.append(Clip(path, Path(path.name)))
        else:
            raise UsageError(f"{path}: no such file or directory")
    _check_collisions(clips)
    return clips


def _inside(p: Path, folder: Path | None) -> bool:
    return folder is not None and folder in p.resolve().parents


def _check_collisions(clips: list[Clip]) -> None:
    seen: dict[Path, Clip] = {}
    for c in clips:
        key = c.rel.with_suffix("")
        if key in seen:
            raise UsageError(f"{seen[key].path} and {c.path} would write the same outputs "
                             f"({key}.*); give them different names or folders")
        seen[key] = c


# ---- resume: what a finished clip records -----------------------------------------------------

def file_identity(path: Path) -> dict:
    """{size (bytes), mtime_ns, sha256_head (hex sha256 of the first MiB)} of an input file."""
    st = Path(path).stat()
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_head": head}


def provenance(clip: Clip, settings: Settings) -> dict:
    """The block the record file carries: the input's identity and the settings used."""
    return {"input_file": file_identity(clip.path), "settings": settings.record()}


def _record_format(settings: Settings) -> str | None:
    return RECORD_FORMAT if RECORD_FORMAT in settings.formats and not settings.per_person else None


def is_complete(clip: Clip, out_root: Path, settings: Settings) -> bool:
    """True when every output exists and the record file proves it came from this very input
    (size, mtime, sha256 of the first MiB) with these settings."""
    record = _record_path(clip, out_root, settings)
    try:
        doc = json.loads(record.read_text())
        outputs = doc.get("outputs") or [str(clip.output(out_root, f)) for f in settings.formats]
        return doc.get("provenance") == provenance(clip, settings) and all(Path(o).is_file() for o in outputs)
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def _record_path(clip: Clip, out_root: Path, settings: Settings) -> Path:
    """The file whose provenance proves a clip complete: its JSON result, else the sidecar."""
    return clip.output(out_root, RECORD_FORMAT) if _record_format(settings) else _sidecar(clip, out_root)


def _sidecar(clip: Clip, out_root: Path) -> Path:
    """Where the provenance goes when no JSON result is written (other formats only)."""
    return Path(out_root) / clip.rel.parent / f".{clip.rel.stem}.posecli.json"


# ---- the per-clip function --------------------------------------------------------------------

def process_clip(clip: Clip, out_root: Path, settings: Settings,
                 progress: ClipProgress | None = None, lifter=None) -> ClipReport:
    """Lift one clip and write its outputs, unless they are already complete.

    Never raises for a bad clip: expected failures (PosecliError: corrupt file, no person,
    decode error ...) and unexpected ones (a bug) become a ``failed`` report, so a batch goes
    on. KeyboardInterrupt / SystemExit propagate (the writers clean up their temporary files).
    ``lifter``: an already loaded Lifter (the in-process engine loads it once).
    """
    t0 = time.perf_counter()
    try:
        if not settings.overwrite and is_complete(clip, out_root, settings):
            return ClipReport(clip.name, "skipped", _recorded_frames(clip, out_root, settings),
                              reason="complete", outputs=[str(clip.output(out_root, f)) for f in settings.formats])
        results = _lift(clip, settings, progress, lifter)
        outputs = _write(clip, out_root, settings, results)
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


def _lift(clip: Clip, settings: Settings, progress: ClipProgress | None, lifter):
    import torch

    from posecli.lifter import load_lifter
    from posecli.pipeline import lift

    torch.set_num_threads(settings.threads)
    if lifter is None:
        lifter = load_lifter(settings.weights, backend=settings.backend, flip=settings.flip,
                             stride=settings.stride, threads=settings.threads)
    report = (lambda stage, done, total: progress(clip.name, stage, done, total)) if progress else None
    options = {"focal": settings.focal, "root_motion": settings.root_motion, "plausible": settings.plausible,
               "allow_truncated": settings.allow_truncated, "fusion": settings.fusion}
    if settings.per_person and clip.path.suffix.lower() != ".json":
        from posecli.pipeline import lift_video_all
        return lift_video_all(clip.path, settings.detector, lifter, settings.threads, report, settings.rigid,
                              settings.max_people, pose_model=settings.pose_model, **options)
    return [lift(clip.path, detector=settings.detector, pose_model=settings.pose_model,
                 lifter=lifter, rigid=settings.rigid,
                 threads=settings.threads, progress=report,
                 person="auto" if settings.per_person else settings.person, max_people=settings.max_people,
                 **options)]


def _write(clip: Clip, out_root: Path, settings: Settings, results: list) -> list[str]:
    """Write every format of every result (one per person with ``--person all``), the record
    last: its presence means the others are finished."""
    from posecli.export import write_all
    from posecli.files import atomic_path

    out_dir = Path(out_root) / clip.rel.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    record = _record_format(settings)
    order = [f for f in settings.formats if f != record] + ([record] if record else [])
    paths: list[Path] = []
    for result in results:
        result.provenance = provenance(clip, settings)
        who = (result.detector or {}).get("person") if settings.per_person else None
        paths += write_all(result, out_dir, order, {"bvh": {"scale": settings.bvh_scale}},
                           suffix=f".person{who['track_id']}" if who else "")
    if record is None:
        with atomic_path(_sidecar(clip, out_root)) as tmp:
            tmp.write_text(json.dumps({"provenance": provenance(clip, settings),
                                       "num_frames": results[0].num_frames if results else 0,
                                       "outputs": [str(p) for p in paths]}))
    return [str(p) for p in paths]


def _truncation_warning(clip: Clip, result) -> str:
    from posecli.pipeline import truncation_message
    return truncation_message(str(clip.path), result.video) if (result.video or {}).get("truncated") else ""


def _quality_line(result) -> str:
    from posecli.quality import one_line
    return one_line(result.quality)


def _recorded_frames(clip: Clip, out_root: Path, settings: Settings) -> int | None:
    path = _record_path(clip, out_root, settings)
    try:
        doc = json.loads(path.read_text())
        return doc["input"]["num_frames"] if "input" in doc else doc.get("num_frames")
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ---- engines ----------------------------------------------------------------------------------

def run_local(clips: list[Clip], out_root: Path, settings: Settings, jobs: int = 1,
              progress: ClipProgress | None = None, lifter=None) -> Iterator[ClipReport]:
    """Process clips here (``jobs == 1``) or in ``jobs`` worker processes; yield reports as
    clips finish. Closing the iterator early (Ctrl-C in the caller) terminates the workers."""
    if jobs <= 1:
        for clip in clips:
            yield process_clip(clip, out_root, settings, progress, lifter)
        return
    yield from _run_pool(clips, out_root, settings, jobs, progress)


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


def _run_pool(clips: list[Clip], out_root: Path, settings: Settings, jobs: int,
              progress: ClipProgress | None) -> Iterator[ClipReport]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fork after torch has started its thread pool can hang
    manager = ctx.Manager() if progress else None
    q = manager.Queue() if manager else None
    pool = ctx.Pool(jobs, initializer=_worker_init)
    pending: dict = {}
    try:
        pending = {pool.apply_async(process_clip, (c, out_root, settings, QueueProgress(q) if q else None)): c
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


def run_ray(clips: list[Clip], out_root: Path, settings: Settings,
            address: str | None = None) -> Iterator[ClipReport]:
    """Run :func:`process_clip` as Ray tasks (``settings.threads`` CPUs each) and yield reports
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
    task = ray.remote(num_cpus=settings.threads, max_retries=0)(process_clip)
    pending = {task.remote(c, Path(out_root), settings): c for c in clips}
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


# ---- closing a batch --------------------------------------------------------------------------

def exit_status(reports: list[ClipReport], interrupted: bool) -> int:
    """0: every clip ok or skipped; 1: any failed; 130: interrupted (Ctrl-C / SIGTERM)."""
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(r.status == "failed" for r in reports) else EXIT_OK


def summary(reports: list[ClipReport], clips: list[Clip], settings: Settings, engine: str,
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
        "settings": {**settings.record(), "threads": settings.threads, "overwrite": settings.overwrite,
                     "weights": settings.weights},
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
