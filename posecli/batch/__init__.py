"""Batch processing: many clips in, one output tree out, resumable, one failure never stops it.

Cut along its seams, bottom up:

- :mod:`.inputs`: :func:`discover` turns files, folders (optionally recursive) and globs into
  :class:`Clip` s, each with the relative path its outputs mirror:
  ``OUT/<relative folder>/<stem>.<format>``.
- :mod:`.records`: what a finished clip records, and :func:`is_complete`: every output exists
  and the record file (the JSON result, written last) parses and records the same input file
  identity (size, mtime, sha256 of the first MiB) and the same options
  (:meth:`posecli.options.LiftOptions.record`). Writers are atomic, so a crash or Ctrl-C leaves
  either the old state or the finished file, never a partial file taken for complete.
- :mod:`.clip`: :func:`process_clip`, the one per-clip function every engine runs (a top-level
  function, so it pickles to worker processes and Ray tasks). It skips a clip whose outputs are
  complete, turns every failure into a :class:`ClipReport` instead of an exception, and builds
  the models once per process (:func:`worker_models`).
- :mod:`.engines`: :func:`run_local` (in this process, or ``jobs`` worker processes) and
  :func:`run_ray` (Ray tasks on a local instance or a cluster); both yield reports as clips
  finish.
- :mod:`.summary`: :func:`summary`, :func:`write_summary` and :func:`exit_status` close a batch.
"""
from posecli.batch.clip import ClipProgress, ClipReport, process_clip, worker_models
from posecli.batch.engines import QueueProgress, run_local, run_ray
from posecli.batch.inputs import INPUT_SUFFIXES, Clip, discover
from posecli.batch.records import file_identity, is_complete, provenance
from posecli.batch.summary import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, exit_status, summary, write_summary
from posecli.errors import UsageError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "INPUT_SUFFIXES", "Clip", "ClipProgress",
           "ClipReport", "QueueProgress", "UsageError", "discover", "exit_status", "file_identity",
           "is_complete", "process_clip", "provenance", "run_local", "run_ray", "summary",
           "worker_models", "write_summary"]
