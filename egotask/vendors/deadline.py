"""A total deadline per judge request, whatever the server does.

httpx's timeouts bound each socket operation, so a server that sends one byte a second never trips
them. The judges' connections (:mod:`egotask.vendors.transport`) let every socket operation (connect,
each read and write) wait at most until the deadline of the request running on that thread, set here
with :func:`request_deadline`. This module imports no HTTP library, so judges load fast.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

_local = threading.local()


class Deadline:
    """When the request running on this thread must be done; ``hit`` once an operation ran into it."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds
        self.hit = False

    def bound(self, timeout: float | None, error: type[Exception]) -> float | None:
        """The time an operation may wait: its own timeout, cut to what is left before the deadline."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            self.hit = True
            raise error(f"no complete reply within {self.seconds:g} s")
        return left if timeout is None else min(timeout, left)

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


@contextlib.contextmanager
def request_deadline(seconds: float | None) -> Iterator[Deadline]:
    """Bound every socket operation this thread makes inside the block to ``seconds`` in all."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline = Deadline(seconds)
    try:
        yield deadline
    finally:
        _local.deadline = previous
        if deadline.passed():
            deadline.hit = True


def bound(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's request deadline (unchanged outside one)."""
    deadline = getattr(_local, "deadline", None)
    return timeout if deadline is None else deadline.bound(timeout, error)
