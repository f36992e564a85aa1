"""What every LLM judge shares: the cache, bounded concurrency, a rate limit, retries, and parsing.

A backend only says how to send one prompt (``_call``) and which of its errors are worth retrying
(``_classify``). Every item ends as a verdict or as a failure carrying the error and the raw reply;
nothing becomes "no"/0 because a request or a parse failed.

Settings (from :mod:`egotask.settings`, taken when the judge is built):

- ``EGOTASK_JUDGE_MODEL``: the judging model (each backend has a default);
- ``EGOTASK_JUDGE_CONCURRENCY``: requests in flight at once (default 16), shared by ``judge_many``
  and by concurrent ``judge`` calls from lmms-eval's ``process_results`` threads;
- ``EGOTASK_JUDGE_RPM``: at most this many requests per minute (default: no limit);
- ``EGOTASK_JUDGE_TIMEOUT``: seconds per request (default 60);
- ``EGOTASK_JUDGE_MAX_ATTEMPTS``: attempts per item on 408/429/5xx/timeouts/connection errors
  (default 6), with exponential backoff and jitter from ``EGOTASK_JUDGE_BACKOFF`` seconds (default 1),
  never sooner than the server's ``Retry-After``.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from egotask.judges.base import Judge, JudgeItem
from egotask.judges.cache import VerdictCache, cache_key
from egotask.judges.parse import UnreadableReply, parse_reply
from egotask.judges.prompt import PROMPT_VERSION, SYSTEM_PROMPT, user_prompt
from egotask.judges.secrets import redact
from egotask.judges.throttle import RateLimiter, backoff_delay
from egotask.records import Verdict
from egotask.settings import Settings, get_settings

log = logging.getLogger("egotask.judge")

MODEL_VAR = "EGOTASK_JUDGE_MODEL"
RPM_VAR = "EGOTASK_JUDGE_RPM"
TIMEOUT_VAR = "EGOTASK_JUDGE_TIMEOUT"
ATTEMPTS_VAR = "EGOTASK_JUDGE_MAX_ATTEMPTS"
BACKOFF_VAR = "EGOTASK_JUDGE_BACKOFF"
BACKOFF_CAP = 60.0  # seconds between two attempts, unless Retry-After asks for more
UNREADABLE_ATTEMPTS = 3  # a model that keeps replying off-schema is not going to stop


@dataclass(frozen=True)
class JudgeSettings:
    model: str
    concurrency: int
    rpm: float | None
    timeout: float
    max_attempts: int
    backoff: float

    @classmethod
    def from_settings(cls, default_model: str, settings: Settings | None = None) -> JudgeSettings:
        """The judge's part of egotask's settings (:mod:`egotask.settings`)."""
        s = settings or get_settings()
        return cls(model=s.judge_model or default_model, concurrency=s.judge_concurrency, rpm=s.judge_rpm,
                   timeout=s.judge_timeout, max_attempts=s.judge_max_attempts, backoff=s.judge_backoff)


@dataclass(frozen=True)
class CallError:
    """How a backend classifies an exception from ``_call``.

    ``retry``: transient (408, 429, 5xx, timeouts); ``item``: this item cannot be judged (for example a
    blocked prompt); ``fatal``: no item can be (bad key, unknown model), so the rest fail without calls.
    """

    kind: str  # "retry" | "item" | "fatal"
    message: str
    retry_after: float | None = None


def classify_status(code: int | None, message: str, retry_after: float | None, *, fatal: bool = False,
                    fatal_hint: str = "") -> CallError:
    """The common reading of an HTTP status: 408/429/5xx are worth retrying, 401/403/404 (or a
    backend's own ``fatal`` signal) stop every request, anything else fails only this item."""
    if code in (408, 429) or (code or 0) >= 500:
        return CallError("retry", message, retry_after)
    if fatal or code in (401, 403, 404):
        return CallError("fatal", f"{message} ({fatal_hint})" if fatal_hint else message)
    return CallError("item", message)


class LLMJudge(Judge):
    default_model: str
    prompt_version = PROMPT_VERSION

    def __init__(self, settings: JudgeSettings | None = None, cache: VerdictCache | None = None):
        self.settings = settings or JudgeSettings.from_settings(self.default_model)
        self.model = self.settings.model
        self.cache = cache if cache is not None else VerdictCache()  # an empty cache is falsy (len 0)
        # requests, retries, cache_hits, judged, failed, tokens_in, tokens_out
        self.stats: Counter[str] = Counter()
        self._slots = threading.BoundedSemaphore(self.settings.concurrency)
        self._limiter = RateLimiter(self.settings.rpm)
        self._lock = threading.Lock()
        self._fatal: str | None = None
        self._client: Any = None

    # ------------------------------------------------------------------ what a backend provides

    @abc.abstractmethod
    def _call(self, system: str, prompt: str) -> str:
        """Send one request; return the reply text. May raise :class:`UnreadableReply` for a reply
        without text (for example a blocked one)."""

    @abc.abstractmethod
    def _classify(self, exc: Exception) -> CallError:
        """Say whether an exception from ``_call`` is worth retrying."""

    @abc.abstractmethod
    def _make_client(self) -> Any:
        """Build the object ``_call`` sends requests with; :attr:`client` calls this once."""

    @property
    def client(self) -> Any:
        # Built on first use, under a lock: lmms-eval calls judge() from many threads at once.
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def http_limits(self) -> Any:
        """One pooled connection per request slot."""
        import httpx

        return httpx.Limits(max_connections=self.settings.concurrency,
                            max_keepalive_connections=self.settings.concurrency)

    # ------------------------------------------------------------------ judging

    def judge(self, item: JudgeItem) -> Verdict:
        self.check_ready()
        key = self.item_key(item)
        cached = self.cache.get(key)
        if cached is not None:
            self._count("cache_hits")
            return cached
        return self._judge_uncached(item, key)

    def judge_many(self, items: Sequence[JudgeItem], progress: bool = True) -> list[Verdict]:
        self.check_ready()
        results: list[Verdict | None] = [None] * len(items)
        todo: dict[str, list[int]] = {}  # identical items are judged once
        for i, item in enumerate(items):
            key = self.item_key(item)
            cached = None if key in todo else self.cache.get(key)
            if cached is not None:
                self._count("cache_hits")
                results[i] = cached
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            self._run_pool(items, todo, results, progress)
        return results  # type: ignore[return-value]

    def _run_pool(self, items, todo: dict[str, list[int]], results: list, progress: bool) -> None:
        pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix=f"judge-{self.name}")
        bar = tqdm(total=len(todo), desc=f"judging ({self.name} {self.model})", unit="item",
                   disable=not progress or len(todo) < 2)
        try:
            futures = {pool.submit(self._judge_uncached, items[idx[0]], key): idx for key, idx in todo.items()}
            for future in as_completed(futures):
                verdict = future.result()
                for i in futures[future]:
                    results[i] = verdict
                bar.update(1)
        finally:
            bar.close()
            # On Ctrl-C, drop the queue; verdicts already returned are in the cache.
            pool.shutdown(wait=True, cancel_futures=True)

    def _judge_uncached(self, item: JudgeItem, key: str) -> Verdict:
        error, raw, retry_after = "", None, None
        unreadable = 0
        _ = self.client  # build it before taking a rate-limit slot, so set-up time is not spent there
        for attempt in range(1, self.settings.max_attempts + 1):
            if self._fatal:
                return self._failure(self._fatal)
            if attempt > 1 and error:
                self._count("retries")
                time.sleep(backoff_delay(attempt - 1, self.settings.backoff, BACKOFF_CAP, retry_after))
            error, retry_after = "", None
            self._limiter.wait()
            with self._slots:
                self._count("requests")
                text = None
                try:
                    text = self._call(SYSTEM_PROMPT, user_prompt(item))
                    pred, score, reason = parse_reply(text)
                except UnreadableReply as exc:
                    unreadable += 1
                    raw = redact(text)
                    log.debug("judge %s: unreadable reply (%s)", self.name, redact(str(exc)))
                    if unreadable >= UNREADABLE_ATTEMPTS:
                        return self._failure(f"unreadable reply after {unreadable} tries: {redact(str(exc))}", raw)
                    continue
                except Exception as exc:  # noqa: BLE001 - classified below; never escapes as a crash
                    failure = self._classify(exc)
                    message = redact(failure.message)
                    if failure.kind == "fatal":
                        with self._lock:
                            first, self._fatal = self._fatal is None, self._fatal or message
                        if first:
                            log.error("judge %s: %s; no further requests will be made", self.name, message)
                        return self._failure(message)
                    if failure.kind == "item":
                        return self._failure(message)
                    error, retry_after = message, failure.retry_after
                    log.debug("judge %s: attempt %d failed: %s", self.name, attempt, message)
                    continue
            verdict = Verdict(pred=pred, score=score, reason=redact(reason), **self.describe())
            self.cache.put(key, item, verdict)
            self._count("judged")
            return verdict
        detail = error or "unreadable reply"
        return self._failure(f"gave up after {self.settings.max_attempts} attempts: {detail}", raw)

    # ------------------------------------------------------------------ helpers

    def item_key(self, item: JudgeItem) -> str:
        """The item's verdict cache key (also its key in a batch job)."""
        return cache_key(self.name, self.model, self.prompt_version, item)

    def _failure(self, error: str, raw: str | None = None) -> Verdict:
        self._count("failed")
        return Verdict.failure(error=error, raw=raw, **self.describe())

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.stats[what] += n

    def add_tokens(self, tokens_in: int, tokens_out: int) -> None:
        """Tokens a reply's usage says it cost (the results record them, and the estimated cost)."""
        with self._lock:
            self.stats["tokens_in"] += int(tokens_in)
            self.stats["tokens_out"] += int(tokens_out)
