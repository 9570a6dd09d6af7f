"""The project's own error types: expected failures that the CLI prints as one line.

Anything else (a bare ValueError, OSError, KeyError ...) is a bug and keeps its traceback.
"""
from __future__ import annotations


class PosecliError(Exception):
    """An expected failure with a one-line message for the user."""


class UsageError(PosecliError):
    """An option or argument value that cannot be used (e.g. a stride outside 1..T)."""


class VideoError(PosecliError):
    """The input cannot be decoded as a video, or its timing cannot be trusted."""


class WeightsError(PosecliError):
    """A model file is missing or does not match its recorded checksum."""


class NoPersonError(PosecliError):
    """No person was found in any frame of the input."""


class KeypointFileError(PosecliError):
    """A 2D keypoint file cannot be used."""


class OutputError(PosecliError):
    """An output cannot be written (unwritable folder, full disk, would overwrite an input)."""
