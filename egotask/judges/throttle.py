"""Pacing judge requests: a requests-per-minute limit, and backoff between retries."""

from __future__ import annotations

import random
import threading
import time
from email.utils import parsedate_to_datetime


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


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None,
                  retry_after_max: float = 60.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): full-jitter exponential backoff,
    but never less than the server's ``Retry-After``, itself cut to ``retry_after_max``."""
    delay = random.uniform(0.5, 1.0) * min(cap, base * 2 ** (attempt - 1))
    if retry_after is not None:
        delay = max(delay, min(retry_after, retry_after_max))
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date. ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None
