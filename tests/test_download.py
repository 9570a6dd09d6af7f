"""posecli.download against a real HTTP server on 127.0.0.1 (no network needed)."""
from __future__ import annotations

import hashlib
import io
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from rich.console import Console

from posecli.download import cached, download, file_name
from posecli.errors import WeightsError
from posecli.weights import user_cache

PAYLOAD = bytes(range(256)) * 1200          # 300 KiB: several 64 KiB reads, several updates
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
HINT = "download it elsewhere and pass --pose-checkpoint FILE"


class Server:
    """A local HTTP server: ``/model.pth`` serves PAYLOAD, ``/short.pth`` announces more bytes
    than it sends, ``/slow.pth`` never answers (until the test ends), anything else is a 404.
    ``hits`` counts the requests per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                if self.path == "/slow.pth":
                    server.release.wait(5)
                    return
                if self.path not in ("/model.pth", "/short.pth"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD if self.path == "/model.pth" else PAYLOAD[:1000])

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    # a short poll interval: shutdown() waits for one poll (0.5 s by default, per test)
    thread = threading.Thread(target=s.httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield s
    s.release.set()
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL on a port that is bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/model.pth"


def test_download_verifies_full_and_prefix_checksums(server, tmp_path):
    out = download(server.url("model.pth"), tmp_path / "a" / "m.pth", sha256=DIGEST, progress=False)
    assert out == tmp_path / "a" / "m.pth" and out.read_bytes() == PAYLOAD
    out = download(server.url("model.pth"), tmp_path / "b.pth", sha256_prefix=DIGEST[:8].upper(),
                   progress=False)
    assert out.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.pth"]   # no temporary left


@pytest.mark.parametrize("pin", [{"sha256": "0" * 64}, {"sha256_prefix": "00000000"},
                                 {"sha256": DIGEST, "sha256_prefix": "00000000"}])
def test_wrong_checksum_is_refused_and_nothing_is_left(server, tmp_path, pin):
    url = server.url("model.pth")
    with pytest.raises(WeightsError) as e:
        download(url, tmp_path / "m.pth", progress=False, hint=HINT, **pin)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and DIGEST in msg and "00000000" in msg and HINT in msg
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_checksum_keeps_an_older_file_untouched(server, tmp_path):
    dest = tmp_path / "m.pth"
    dest.write_bytes(b"old")
    with pytest.raises(WeightsError):
        download(server.url("model.pth"), dest, sha256="0" * 64, progress=False)
    assert dest.read_bytes() == b"old" and list(tmp_path.iterdir()) == [dest]


def test_progress_callback_sees_increasing_bytes_and_the_total(server, tmp_path):
    seen: list[tuple[int, int | None]] = []
    download(server.url("model.pth"), tmp_path / "m.pth", sha256=DIGEST, progress=False,
             on_progress=lambda done, total: seen.append((done, total)))
    done = [d for d, _ in seen]
    assert len(seen) > 2 and done == sorted(done) and len(set(done)) == len(done)
    assert done[-1] == len(PAYLOAD) and {t for _, t in seen} == {len(PAYLOAD)}


def test_progress_bar_only_on_a_terminal_or_when_forced(server, tmp_path):
    seen: list[int] = []

    def bar(force_terminal: bool, progress: bool) -> str:
        buf = io.StringIO()
        console = Console(file=buf, force_terminal=force_terminal, width=120)
        download(server.url("model.pth"), tmp_path / "m.pth", sha256=DIGEST, progress=progress,
                 console=console, on_progress=lambda done, total: seen.append(done))
        return buf.getvalue()

    shown = bar(force_terminal=True, progress=True)
    assert "m.pth" in shown and "307.2/307.2 kB" in shown   # bytes done/total, decimal units
    assert seen[-1] == len(PAYLOAD)                          # the callback still called beside the bar
    assert bar(force_terminal=False, progress=True) == ""    # stderr not a terminal: no bar
    assert bar(force_terminal=True, progress=False) == ""


def _one_line_error(url: str, dest: Path, **kw) -> str:
    with pytest.raises(WeightsError) as e:
        download(url, dest, sha256=DIGEST, progress=False, hint=HINT, **kw)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and msg.endswith(HINT)
    assert list(dest.parent.iterdir()) == []
    return msg


def test_http_404_is_one_line_with_url_and_hint(server, tmp_path):
    assert "404" in _one_line_error(server.url("missing.pth"), tmp_path / "m.pth")


def test_refused_connection_is_one_line_with_url_and_hint(refused_url, tmp_path):
    assert "refused" in _one_line_error(refused_url, tmp_path / "m.pth").lower()


def test_timeout_is_one_line_with_url_and_hint(server, tmp_path):
    assert "timed out" in _one_line_error(server.url("slow.pth"), tmp_path / "m.pth", timeout=0.3)


def test_truncated_transfer_is_refused(server, tmp_path):
    assert "1000 of" in _one_line_error(server.url("short.pth"), tmp_path / "m.pth")


def test_cached_downloads_once_and_replaces_a_corrupt_file(server, tmp_path, monkeypatch):
    monkeypatch.setenv("POSECLI_CACHE", str(tmp_path / "cache"))
    url = server.url("model.pth")
    first = cached(url, sha256_prefix=DIGEST[:8], progress=False)
    assert first == tmp_path / "cache" / "model.pth" and first.read_bytes() == PAYLOAD
    assert cached(url, sha256_prefix=DIGEST[:8], progress=False) == first
    assert server.hits["/model.pth"] == 1                    # the second call made no request
    first.write_bytes(b"x" + PAYLOAD[1:])                    # corrupted on disk
    assert cached(url, sha256=DIGEST, progress=False).read_bytes() == PAYLOAD
    assert server.hits["/model.pth"] == 2
    assert cached(url, name="other.pth", sha256=DIGEST, progress=False).name == "other.pth"


def test_cached_leaves_no_corrupt_file_when_the_download_fails(server, tmp_path, monkeypatch):
    monkeypatch.setenv("POSECLI_CACHE", str(tmp_path))
    (tmp_path / "missing.pth").write_bytes(b"corrupt")
    with pytest.raises(WeightsError, match="404"):
        cached(server.url("missing.pth"), sha256=DIGEST, hint=HINT, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cached_needs_a_pin_and_a_plain_name(server):
    with pytest.raises(ValueError):
        cached(server.url("model.pth"))
    with pytest.raises(ValueError):
        cached(server.url("model.pth"), name="../escape.pth", sha256=DIGEST)
    with pytest.raises(ValueError):
        download(server.url("model.pth"), Path("x"), sha256_prefix="")
    assert server.hits == Counter()


def test_file_name_is_the_decoded_last_segment():
    assert file_name("https://h/v1/hrnet_w32%2Bx-c78dce93_2020.pth?dl=1") == "hrnet_w32+x-c78dce93_2020.pth"


def test_user_cache_follows_posecli_cache_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("POSECLI_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert user_cache() == tmp_path / "home" / ".cache" / "posecli"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")   # invalid per the XDG spec: ignored
    assert user_cache() == tmp_path / "home" / ".cache" / "posecli"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache() == tmp_path / "xdg" / "posecli"
    monkeypatch.setenv("POSECLI_CACHE", str(tmp_path / "own"))
    assert user_cache() == tmp_path / "own"
