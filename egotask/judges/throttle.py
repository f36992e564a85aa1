"""Pacing judge requests: a requests-per-minute limit (the waits between retries are
:mod:`egotask.vendors.retry`'s)."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """At most ``rpm`` request starts per minute, spaced evenly; ``rpm=None`` means no limit.

    Each caller reserves the next free slot under a lock and sleeps outside it, so waiting threads do
    not block each other's reservations.
    """

    def __init__(self, rpm: float | None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)
