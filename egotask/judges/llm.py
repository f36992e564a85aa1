"""What every LLM judge shares: the cache, bounded concurrency, a rate limit, retries, and parsing.

A backend only says how to send one prompt (``_call``) and which of its errors are worth retrying
(``_classify``). Every item ends as a verdict or as a failure carrying the error and the raw reply;
nothing becomes "no"/0 because a request or a parse failed.

Settings (from :mod:`egotask.settings`, taken when the judge is built):

- ``EGOTASK_JUDGE_MODEL``: the judging model (each backend has a default);
- ``EGOTASK_JUDGE_CONCURRENCY``: requests in flight at once (default 16), shared by ``judge_many``
  and by concurrent ``judge`` calls from lmms-eval's ``process_results`` threads;
- ``EGOTASK_JUDGE_RPM``: at most this many requests per minute (default: no limit);
- ``EGOTASK_JUDGE_TIMEOUT``: seconds a request may wait for the server at any one moment (default 60);
- ``EGOTASK_JUDGE_DEADLINE``: seconds one request may take in all, however slowly the server sends
  (default: the timeout; see :mod:`egotask.vendors.deadline`);
- ``EGOTASK_JUDGE_MAX_ATTEMPTS``: attempts per item on 408/409/429/5xx/timeouts/connection errors
  (default 6), with exponential backoff and jitter from ``EGOTASK_JUDGE_BACKOFF`` seconds (default 1),
  never sooner than the server's ``Retry-After``, which is capped at ``EGOTASK_JUDGE_RETRY_AFTER_MAX``
  seconds (default 60; longer waits are logged);
- ``EGOTASK_JUDGE_BUDGET``: seconds the judging may take in all, from its first request (default: no
  limit); then the items left fail, and a rerun asks only for them.

:meth:`LLMJudge.check_endpoint` makes one real request before any model loads, so a wrong URL, key
or model stops a run in seconds.
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

from egotask.judges.base import Judge, JudgeItem, JudgeNotReady
from egotask.judges.cache import FILENAME as CACHE_FILENAME
from egotask.judges.cache import CacheStoreError, VerdictCache, cache_key
from egotask.judges.parse import UnreadableReply, parse_reply
from egotask.judges.secrets import redact
from egotask.judges.throttle import RateLimiter
from egotask.protocols import JudgeSpec, load_protocol
from egotask.records import Verdict
from egotask.settings import Settings, get_settings
from egotask.vendors.deadline import request_deadline
from egotask.vendors.retry import Failure, RetryPolicy

log = logging.getLogger("egotask.judge")

MODEL_VAR = "EGOTASK_JUDGE_MODEL"
RPM_VAR = "EGOTASK_JUDGE_RPM"
TIMEOUT_VAR = "EGOTASK_JUDGE_TIMEOUT"
DEADLINE_VAR = "EGOTASK_JUDGE_DEADLINE"
ATTEMPTS_VAR = "EGOTASK_JUDGE_MAX_ATTEMPTS"
RETRY_AFTER_MAX_VAR = "EGOTASK_JUDGE_RETRY_AFTER_MAX"
BUDGET_VAR = "EGOTASK_JUDGE_BUDGET"
PACING_VARS = (RPM_VAR, TIMEOUT_VAR, DEADLINE_VAR, ATTEMPTS_VAR)  # every LLM judge reads them
BACKOFF_CAP = 60.0  # seconds between two attempts, unless Retry-After asks for more
UNREADABLE_ATTEMPTS = 3  # a model that keeps replying off-schema is not going to stop
LONG_WAIT = 10.0  # seconds: a retry wait this long is logged as a warning, not at debug level
# The preflight's test request: a real item, answered right, so a working judge replies with a verdict.
PROBE_ITEM = JudgeItem("What is written on the sign above the door?", "exit", "The sign says EXIT.", "preflight")
PROBE_ATTEMPTS = 3  # for 408/409/429/5xx only; a connection error or timeout fails at once
PROBE_DEADLINE = 30.0  # seconds, at most, for the test request
PROBE_WAIT_MAX = 5.0  # seconds, at most, between two test requests


@dataclass(frozen=True)
class JudgeSettings:
    model: str
    concurrency: int
    rpm: float | None
    timeout: float
    max_attempts: int
    backoff: float
    deadline: float | None = None  # None: the timeout
    retry_after_max: float = 60.0
    budget: float | None = None

    @classmethod
    def from_settings(cls, default_model: str, settings: Settings | None = None) -> JudgeSettings:
        """The judge's part of egotask's settings (:mod:`egotask.settings`)."""
        s = settings or get_settings()
        return cls(model=s.judge_model or default_model, concurrency=s.judge_concurrency, rpm=s.judge_rpm,
                   timeout=s.judge_timeout, max_attempts=s.judge_max_attempts, backoff=s.judge_backoff,
                   deadline=s.judge_deadline, retry_after_max=s.judge_retry_after_max, budget=s.judge_budget)

    @property
    def request_deadline(self) -> float:
        return self.deadline or self.timeout

    def deadline_source(self) -> str:
        return DEADLINE_VAR if self.deadline else f"{DEADLINE_VAR}, by default {TIMEOUT_VAR}"


class LLMJudge(Judge):
    default_model: str
    settings_hint: str = MODEL_VAR  # the variables that choose the endpoint, key and model
    vendor: Any = None  # the egotask.vendors module that calls this judge's API

    def __init__(self, settings: Settings | None = None, *, judge_settings: JudgeSettings | None = None,
                 cache: VerdictCache | None = None, spec: JudgeSpec | None = None):
        s = settings or get_settings()
        # The protocol's judge prompt; its model too, when the protocol names this backend.
        self.spec = spec or load_protocol(s.protocol).judge
        self.prompt_version = self.spec.prompt_version
        default_model = (self.spec.backend == self.name and self.spec.model) or self.default_model
        self.settings = judge_settings or JudgeSettings.from_settings(default_model, s)
        self.model = self.settings.model
        # An empty cache is falsy (len 0): hence `is not None`.
        self.cache = cache if cache is not None else VerdictCache(s.cache_dir / CACHE_FILENAME, s.judge_cache)
        # requests, retries, cache_hits, judged, failed, tokens_in, tokens_out
        self.stats: Counter[str] = Counter()
        self._slots = threading.BoundedSemaphore(self.settings.concurrency)
        self._limiter = RateLimiter(self.settings.rpm)
        self.policy = RetryPolicy(self.settings.max_attempts, self.settings.backoff,
                                  retry_after_max=self.settings.retry_after_max, backoff_cap=BACKOFF_CAP)
        self._lock = threading.Lock()
        self._fatal: str | None = None
        self._unstorable: CacheStoreError | None = None  # a verdict could not be stored: no more requests
        self._client: Any = None
        self._phase_start: float | None = None  # the judging's first request (for the budget)
        self._budget_noted = False

    # ------------------------------------------------------------------ what a backend provides

    @abc.abstractmethod
    def _call(self, system: str, prompt: str) -> str:
        """Send one request; return the reply text. May raise :class:`UnreadableReply` for a reply
        without text (for example a blocked one)."""

    @abc.abstractmethod
    def _classify(self, exc: Exception) -> Failure:
        """Say whether an exception from ``_call`` is worth retrying (:mod:`egotask.vendors.retry`)."""

    @abc.abstractmethod
    def _make_client(self) -> Any:
        """Build the object ``_call`` sends requests with; :attr:`client` calls this once."""

    def check_ready(self) -> None:
        """The vendor's key (or keyless server) is set, else :class:`JudgeNotReady` naming the variables."""
        missing = self.vendor.missing() if self.vendor is not None else None
        if missing:
            raise JudgeNotReady(f"the {self.name} judge needs {missing}", offline_hint=True)

    def endpoint(self) -> str:
        """Where requests go (for messages and the verdict cache's key): the vendor module's base URL."""
        return self.vendor.endpoint() if self.vendor is not None else "its endpoint"

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "protocol": self.spec.protocol, "prompt_sha256": self.spec.sha256}

    def prompts(self, item: JudgeItem) -> tuple[str, str]:
        """The (system, user) prompts of an item under the protocol's judge prompt."""
        return self.spec.system, self.spec.render_user(item.question, item.answer, item.prediction)

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

    def http_transport(self) -> Any:
        """httpx's transport with :meth:`http_limits`, whose sockets honour each request's deadline."""
        from egotask.vendors.transport import deadline_transport

        return deadline_transport(self.http_limits())

    # ------------------------------------------------------------------ the preflight

    def check_endpoint(self) -> None:
        """One real request (a test item) before any model loads: a wrong URL, key or model raises
        :class:`JudgeNotReady` in seconds, saying what to fix. 408/409/429/5xx are tried again a little;
        a connection error or timeout is not (an unreachable URL does not come back in a minute)."""
        self.check_ready()
        message = ""
        for attempt in range(1, PROBE_ATTEMPTS + 1):
            deadline = None
            try:
                _ = self.client
                with request_deadline(min(self.settings.request_deadline, PROBE_DEADLINE)) as deadline:
                    text = self._call(*self.prompts(PROBE_ITEM))
                parse_reply(text)
                return
            except UnreadableReply as exc:  # the endpoint works; the model strays from the schema
                log.warning("judge %s: the test request's reply holds no readable verdict (%s); judging goes on, "
                            "and such replies count as failures", self.name, redact(str(exc)))
                return
            except Exception as exc:  # noqa: BLE001 - classified; the message says what to fix
                failure = self._classify(exc)
                message = redact(failure.message)
                if deadline is not None and deadline.hit and failure.kind == "retry":
                    message = f"no complete reply within {deadline.seconds:g} s"
                if failure.kind != "retry" or failure.status is None or attempt == PROBE_ATTEMPTS:
                    break
                time.sleep(min(self.policy.delay(attempt, failure.retry_after), PROBE_WAIT_MAX))
        raise JudgeNotReady(f"the {self.name} judge ({self.model}) failed a test request to {self.endpoint()}: "
                            f"{message}. Check {self.settings_hint}; to judge offline instead, pass --judge "
                            "heuristic (or set EGOTASK_JUDGE=heuristic).")

    # ------------------------------------------------------------------ judging

    def judge(self, item: JudgeItem) -> Verdict:
        self.check_ready()
        self._stop_if_unstorable()
        key = self.item_key(item)
        cached = self.cache.get(key)
        if cached is not None:
            self._count("cache_hits")
            return cached
        return self._judge_uncached(item, key)

    def cached(self, item: JudgeItem) -> bool:
        """Whether the cache already holds this item's verdict (so judging it makes no request)."""
        return self.cache.get(self.item_key(item)) is not None

    def judge_many(self, items: Sequence[JudgeItem], progress: bool = True) -> list[Verdict]:
        self.check_ready()
        self._stop_if_unstorable()
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
            self._stop_if_unstorable()
            if self._fatal:
                return self._failure(self._fatal)
            wait = self._retry_wait(attempt, error, retry_after) if attempt > 1 and error else 0.0
            spent = self._budget_spent(wait)
            if spent:
                return self._failure(f"{spent}; last error: {error}" if error else spent, raw)
            if wait:
                self._count("retries")
                time.sleep(wait)
            error, retry_after = "", None
            self._limiter.wait()
            with self._slots:
                self._count("requests")
                text = None
                limit, source = self._attempt_limit()
                try:
                    with request_deadline(limit) as deadline:
                        text = self._call(*self.prompts(item))
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
                    if deadline.hit and failure.kind == "retry":
                        message = f"no complete reply within {limit:g} s ({source})"
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
            try:
                self.cache.put(key, item, verdict)
            except CacheStoreError as exc:
                # Paying for verdicts that cannot be kept helps nobody: every thread stops asking now,
                # and the error (naming the file) ends the run; lmms-eval does not retry it.
                with self._lock:
                    self._unstorable = self._unstorable or exc
                raise
            self._count("judged")
            return verdict
        detail = error or "unreadable reply"
        return self._failure(f"gave up after {self.settings.max_attempts} attempts: {detail}", raw)

    # ------------------------------------------------------------------ time limits

    def _attempt_limit(self) -> tuple[float, str]:
        """Seconds this attempt may take in all, and the setting that says so."""
        limit, source = self.settings.request_deadline, self.settings.deadline_source()
        left = self._budget_left()
        if left is not None and left < limit:
            limit, source = max(left, 0.001), BUDGET_VAR
        return limit, source

    def _retry_wait(self, attempt: int, error: str, retry_after: float | None) -> float:
        """Seconds before ``attempt``: backoff, at least the server's Retry-After up to its cap. A
        capped or long wait is logged as a warning with what it waits for."""
        cap = self.settings.retry_after_max
        delay = self.policy.delay(attempt - 1, retry_after)
        note = (f"; the server asked for Retry-After: {retry_after:g} s, waiting {cap:g} s ({RETRY_AFTER_MAX_VAR})"
                if retry_after is not None and retry_after > cap else "")
        log.log(logging.WARNING if note or delay >= LONG_WAIT else logging.DEBUG,
                "judge %s: attempt %d of %d failed (%s); next attempt in %.1f s%s", self.name, attempt - 1,
                self.settings.max_attempts, error, delay, note)
        return delay

    def _budget_left(self) -> float | None:
        """Seconds left of the judging's time budget (its clock starts at the first request)."""
        if self.settings.budget is None:
            return None
        with self._lock:
            if self._phase_start is None:
                self._phase_start = time.monotonic()
            start = self._phase_start
        return self.settings.budget - (time.monotonic() - start)

    def _budget_spent(self, wait: float = 0.0) -> str | None:
        """Why no further attempt may start (after ``wait`` seconds), or None."""
        left = self._budget_left()
        if left is None or left > wait:
            return None
        with self._lock:
            first, self._budget_noted = not self._budget_noted, True
        if first:
            log.warning("judge %s: the judging time budget (%s=%g s) is spent; the items left fail (a rerun asks "
                        "only for them)", self.name, BUDGET_VAR, self.settings.budget)
        return f"the judging time budget ({BUDGET_VAR}={self.settings.budget:g} s) was spent"

    # ------------------------------------------------------------------ helpers

    def _stop_if_unstorable(self) -> None:
        if self._unstorable is not None:
            raise CacheStoreError(str(self._unstorable))

    def item_key(self, item: JudgeItem) -> str:
        """The item's verdict cache key (also its key in a batch job): the judge prompt's hash covers
        everything in the protocol that can change a verdict, and the endpoint tells servers apart that
        serve a model of the same name."""
        return cache_key(self.name, self.model, self.spec.sha256, item, endpoint=self.endpoint())

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
