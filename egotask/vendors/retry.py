"""The one retry policy of every vendor request, the judge's and the served models' alike.

Each failed attempt becomes a :class:`Failure` of one of three kinds:

- ``retry``: transient: HTTP 408, 409, 429 and every 5xx, a timeout, a connection error, a 2xx reply
  that is not a reply of the API (a proxy's HTML page, JSON cut short); tried again after
  :meth:`RetryPolicy.delay`, up to ``max_attempts`` attempts in all;
- ``item``: this request will not be taken (another 4xx, an unexpected exception): the item fails,
  the others go on;
- ``fatal``: no request will be (401, 403, 404: a refused key, an unknown model or endpoint; a
  malformed URL): the caller stops asking and says what to fix.

Before this module the judge retried 408/429/5xx and the served models 408/409/429/5xx; both now
retry 409 too (Gemini's ``ABORTED`` and OpenAI's conflicts are transient, and OpenAI's own client
retries them). This module imports no HTTP library.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

RETRY, ITEM, FATAL = "retry", "item", "fatal"
RETRY_STATUSES = (408, 409, 429)  # and every 5xx
FATAL_STATUSES = (401, 403, 404)


@dataclass(frozen=True)
class Failure:
    """How one failed attempt is handled: ``kind`` is ``retry``, ``item`` or ``fatal``."""

    kind: str
    message: str
    retry_after: float | None = None  # seconds the server asked to wait (``Retry-After``)
    status: int | None = None  # the HTTP status, when the server answered with one


@dataclass(frozen=True)
class Answer:
    """What a successful attempt returns: the reply's text and the tokens it cost, as the API
    reported them (None: not reported)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class BadReply(Exception):
    """A 2xx reply that holds no reply of the API (an HTML page from a proxy, JSON cut short, an error
    object). ``failure`` says how it is handled and keeps the server's own message."""

    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


class NoAnswer(Exception):
    """The API replied, without an answer (a refusal, a block, a content filter, no text): the item's
    outcome, never retried as a transport fault."""


def classify_status(code: int | None, message: str, retry_after: float | None = None, *, hint: str = "",
                    fatal: bool = False) -> Failure:
    """The handling of an HTTP error status. ``fatal`` marks a vendor's own sign that no request will
    be taken (Gemini refuses a bad key with a 400); ``hint`` says what to check then."""
    if code in RETRY_STATUSES or (code or 0) >= 500:
        return Failure(RETRY, message, retry_after, status=code)
    if fatal or code in FATAL_STATUSES:
        return Failure(FATAL, f"{message}; {hint}" if hint else message, status=code)
    return Failure(ITEM, message, status=code)


def classify_transport(exc: BaseException, *, timeout_message: str, prefix: str = "", url: str = "",
                       url_hint: str = "") -> Failure | None:
    """The handling of an exception raised below the API (httpx's, aiohttp's, the socket's), or None
    for any other. A malformed URL is fatal; a timeout or a connection error is retried."""
    import httpx

    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return Failure(FATAL, f"{prefix}the endpoint URL {url!r} is malformed ({exc}); check {url_hint}")
    if isinstance(exc, httpx.TimeoutException | TimeoutError):  # aiohttp raises asyncio's TimeoutError
        return Failure(RETRY, timeout_message)
    if isinstance(exc, httpx.TransportError | ConnectionError | OSError) or _is_aiohttp_error(exc):
        return Failure(RETRY, f"{prefix}connection error: {type(exc).__name__}: {exc}")
    return None


def _is_aiohttp_error(exc: BaseException) -> bool:
    """google-genai's async client uses aiohttp when it is installed."""
    try:
        import aiohttp
    except ImportError:
        return False
    return isinstance(exc, aiohttp.ClientError)


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


def retry_after_of(headers: Any) -> float | None:
    """``Retry-After`` (or OpenAI's ``retry-after-ms``) of a reply's headers, in seconds."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts an item gets and how long to wait between them."""

    max_attempts: int
    backoff: float  # seconds before the first retry, doubled each time (with jitter)
    retry_after_max: float = 60.0  # a longer Retry-After is cut to this
    backoff_cap: float = 60.0  # backoff alone never waits longer

    def gives_up(self, failure: Failure, attempt: int) -> bool:
        """Whether ``failure`` on attempt number ``attempt`` (1-based) ends the item's attempts."""
        return failure.kind != RETRY or attempt >= self.max_attempts

    def capped(self, retry_after: float | None) -> float | None:
        return None if retry_after is None else min(retry_after, self.retry_after_max)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): full-jitter exponential backoff,
        but never less than the server's ``Retry-After``, itself cut to ``retry_after_max``."""
        delay = random.uniform(0.5, 1.0) * min(self.backoff_cap, self.backoff * 2 ** (retry - 1))
        wanted = self.capped(retry_after)
        return delay if wanted is None else max(delay, wanted)
