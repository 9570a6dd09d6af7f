"""One checked way to fetch model files that are not shipped.

:func:`download` streams a URL into a temporary file beside the destination (nothing
half-written is ever left), hashes it on the way, verifies the sha256 and only then renames it
into place. :func:`cached` does the same into the user cache (:func:`posecli.weights.user_cache`)
and reuses a file that is already there once its checksum has been checked again.

Every expected failure is a one-line :class:`~posecli.errors.WeightsError` that names the URL:
network down, HTTP error, timeout, truncated transfer and checksum mismatch end with the
caller's hint (what the user can do instead); an unwritable folder or a full disk says so.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from posecli.errors import WeightsError
from posecli.files import atomic_path
from posecli.weights import sha256 as file_sha256
from posecli.weights import user_cache

#: Called after every chunk with (bytes received so far, total bytes or None when unknown).
ProgressCallback = Callable[[int, int | None], None]

CHUNK = 1 << 16  # bytes per read: many progress updates, little per-call overhead
_HEX = re.compile(r"[0-9a-f]+")


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def _pins(sha256: str | None, sha256_prefix: str | None) -> tuple[str | None, str | None]:
    """The expected digest and digest prefix in lower case; ValueError (a caller's bug) when
    one is not hexadecimal or too long, or the prefix is empty (it would match anything)."""
    full = sha256.lower() if sha256 is not None else None
    prefix = sha256_prefix.lower() if sha256_prefix is not None else None
    if full is not None and (len(full) != 64 or not _HEX.fullmatch(full)):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if prefix is not None and not (0 < len(prefix) <= 64 and _HEX.fullmatch(prefix)):
        raise ValueError(f"sha256_prefix must be 1 to 64 hex digits, got {sha256_prefix!r}")
    return full, prefix


def digest_mismatch(got: str, sha256: str | None, sha256_prefix: str | None) -> str | None:
    """What was expected, when the hex digest ``got`` does not match; None when it does (or
    when nothing is pinned). A prefix is shown as ``<prefix>...``."""
    if sha256 is not None and got != sha256:
        return sha256
    if sha256_prefix is not None and not got.startswith(sha256_prefix):
        return f"{sha256_prefix}..."
    return None


def _failure(message: str, hint: str) -> WeightsError:
    """The one-line error for a failed download: ``message`` (what failed, the URL, why), then
    the caller's hint."""
    return WeightsError(_one_line(f"{message}; {hint}" if hint else message))


def _network_reason(err: BaseException, timeout: float) -> str:
    """A short reason for a network exception: HTTP status, refused, timed out, ..."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        if not isinstance(err.reason, BaseException):
            return str(err.reason)
        err = err.reason  # the socket error urllib wrapped
    if isinstance(err, TimeoutError):  # socket.timeout is TimeoutError
        return f"no answer for {timeout:g} s (timed out)"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _disk_error(path: Path, url: str, err: OSError) -> WeightsError:
    """The one-line error for a local write failure (no hint: the network is not the cause)."""
    return WeightsError(_one_line(f"cannot write {path} while downloading {url}: {err.strerror or err}"))


def _content_length(response: http.client.HTTPResponse) -> int | None:
    """The announced size in bytes, or None when the server did not say (or said nonsense)."""
    value = response.headers.get("Content-Length")
    try:
        size = int(value) if value is not None else None
    except ValueError:
        return None
    return size if size is not None and size >= 0 else None


def _chunks(response: BinaryIO, url: str, timeout: float, hint: str) -> Iterator[bytes]:
    """The response body in chunks; a network error while reading becomes a WeightsError."""
    while True:
        try:
            chunk = response.read(CHUNK)
        except (OSError, http.client.HTTPException) as e:  # reset, timeout, incomplete read
            raise _failure(f"download of {url} interrupted: {_network_reason(e, timeout)}", hint) from None
        if not chunk:
            return
        yield chunk


@contextmanager
def _open(url: str, timeout: float, hint: str) -> Iterator[http.client.HTTPResponse]:
    """An open response for ``url``; a failure to connect or an HTTP error is a WeightsError."""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (OSError, http.client.HTTPException) as e:  # URLError, HTTPError, timeouts are OSErrors
        raise _failure(f"cannot download {url}: {_network_reason(e, timeout)}", hint) from None
    with response:
        yield response


@contextmanager
def _reporter(label: str, total: int | None, show_bar: bool, console: Console,
              on_progress: ProgressCallback | None) -> Iterator[ProgressCallback]:
    """A progress callback that draws a rich bar on ``console`` (when ``show_bar``: bytes
    done/total, speed, time left) and forwards to ``on_progress`` (when given)."""
    if not show_bar:
        yield on_progress or (lambda done, total: None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=total)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)
            if on_progress:
                on_progress(done, total)
        yield report


def _make_folder(folder: Path, url: str) -> None:
    """Create ``folder`` (and parents); a folder that cannot be made or written is a WeightsError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied")
    except OSError as e:
        raise _disk_error(folder, url, e) from None


def download(url: str, dest: str | Path, *, sha256: str | None = None,
             sha256_prefix: str | None = None, progress: bool = True, timeout: float = 60,
             hint: str = "", console: Console | None = None,
             on_progress: ProgressCallback | None = None) -> Path:
    """Download ``url`` to ``dest`` and verify its sha256; return ``dest``.

    The body is streamed into a temporary file beside ``dest`` and hashed on the way; ``dest``
    appears (atomically, replacing an older file) only once the transfer is complete and the
    checksum matches, so no partial or wrong file is ever left, not even a temporary one.

    Args:
        sha256: the full hex digest the file must have.
        sha256_prefix: a prefix the hex digest must start with (OpenMMLab checkpoints carry the
            first 8 hex digits in their names: ``hrnet_w32_coco_256x192-c78dce93_20200708.pth``).
            With neither pin nothing is checked: the caller verifies the content itself.
        progress: draw a progress bar (bytes done/total, speed) on ``console``.
        timeout: seconds to wait for the connection or for any one read (not the whole
            transfer).
        hint: what the user can do instead, appended to every error message (e.g. "download it
            elsewhere and pass --pose-checkpoint FILE").
        console: where the bar goes; default stderr. The bar is drawn only where this console is
            a terminal, so a caller forces it with ``Console(force_terminal=True)``.
        on_progress: called after every chunk with (bytes received, total bytes or None).

    Raises:
        WeightsError: one line naming the URL and ending with ``hint``: the network failed
            (refused, HTTP error, timeout, connection lost), the transfer was shorter than
            announced, or the checksum does not match (got and expected are shown); or, without
            the hint, ``dest`` cannot be written (folder not writable, disk full).
        ValueError: a pin that is not hexadecimal (a caller's bug).
    """
    dest = Path(dest)
    full, prefix = _pins(sha256, sha256_prefix)
    console = console or Console(stderr=True)
    _make_folder(dest.parent, url)
    with _open(url, timeout, hint) as response, atomic_path(dest) as tmp:
        total = _content_length(response)
        hasher, done = hashlib.sha256(), 0
        try:
            show_bar = progress and console.is_terminal
            with open(tmp, "wb") as out, \
                    _reporter(dest.name, total, show_bar, console, on_progress) as report:
                report(0, total)
                for chunk in _chunks(response, url, timeout, hint):
                    out.write(chunk)
                    hasher.update(chunk)
                    done += len(chunk)
                    report(done, total)
        except OSError as e:  # read errors are WeightsErrors already: this is the disk (full?)
            raise _disk_error(dest, url, e) from None
        if total is not None and done != total:  # plain HTTP bodies end silently when cut short
            raise _failure(f"download of {url} interrupted: got {done} of {total} bytes", hint)
        got = hasher.hexdigest()
        expected = digest_mismatch(got, full, prefix)
        if expected is not None:
            raise _failure(f"checksum mismatch for {url}: sha256 {got}, expected {expected} "
                           "(the file was not kept)", hint)
    return dest


def file_name(url: str) -> str:
    """The last path segment of ``url``, percent-decoded (the name a download is cached under)."""
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def _check_name(name: str) -> str:
    """``name`` when it is a plain file name; ValueError (a caller's bug) when it is not."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise ValueError(f"a cache file name must be a plain file name, got {name!r}")
    return name


def cached(url: str, *, name: str | None = None, sha256: str | None = None,
           sha256_prefix: str | None = None, hint: str = "", progress: bool = True,
           timeout: float = 60, console: Console | None = None) -> Path:
    """The file ``name`` (default: the URL's file name) in the user cache, downloaded first
    when it is not there.

    A file already in the cache is hashed again (the cache can be corrupted like any disk
    file): when it does not match the pins it is deleted and downloaded once more. At least one
    of ``sha256``/``sha256_prefix`` is required: without one a cached file could not be checked.
    Other arguments and errors as in :func:`download`.
    """
    if sha256 is None and sha256_prefix is None:
        raise ValueError("cached() needs sha256 or sha256_prefix to check the cached file")
    full, prefix = _pins(sha256, sha256_prefix)
    path = user_cache() / _check_name(name or file_name(url))
    if path.is_file():
        if digest_mismatch(file_sha256(path), full, prefix) is None:
            return path
        path.unlink()  # corrupt: never left behind, even when the download below fails
    return download(url, path, sha256=full, sha256_prefix=prefix, progress=progress,
                    timeout=timeout, hint=hint, console=console)
