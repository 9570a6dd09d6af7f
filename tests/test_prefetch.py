"""Decoding in its own thread: same items, errors raised in order, early stop ends the thread."""
import threading

import pytest

from posecli.pipeline import prefetch


def test_prefetch_keeps_order_and_raises_producer_errors():
    assert list(prefetch(range(50), 3)) == list(range(50))

    def broken():
        yield 1
        yield 2
        raise ValueError("decode failed half-way")
    got = []
    with pytest.raises(ValueError, match="half-way"):
        for x in prefetch(broken(), 4):
            got.append(x)
    assert got == [1, 2]


def test_prefetch_stops_its_thread_and_closes_the_source_when_the_consumer_stops():
    closed = threading.Event()

    def frames():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()
    it = prefetch(frames(), 2)
    assert next(it) == 0
    it.close()
    assert closed.wait(2)
    assert not [t for t in threading.enumerate() if t.name == "posecli-decode"]
