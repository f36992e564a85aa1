"""The one retry policy of the judge and the served models (egotask/vendors/retry.py)."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from egotask.vendors.retry import RetryPolicy, classify_status, parse_retry_after, retry_after_of


@pytest.mark.parametrize("code, kind", [
    (408, "retry"), (409, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry"), (504, "retry"),
    (401, "fatal"), (403, "fatal"), (404, "fatal"),
    (400, "item"), (413, "item"), (422, "item"),
])
def test_each_status_is_retried_fails_the_item_or_stops_the_run(code, kind):
    failure = classify_status(code, f"HTTP {code}", 2.0, hint="check KEY")
    assert (failure.kind, failure.status) == (kind, code)
    assert failure.retry_after == (2.0 if kind == "retry" else None)
    assert failure.message == (f"HTTP {code}; check KEY" if kind == "fatal" else f"HTTP {code}")


def test_a_vendors_own_fatal_sign_stops_the_run_but_a_5xx_is_still_retried():
    assert classify_status(400, "API key not valid", fatal=True, hint="check GEMINI_API_KEY").kind == "fatal"
    assert classify_status(503, "API key service down", fatal=True).kind == "retry"


def test_retry_after_reads_seconds_http_dates_and_openais_milliseconds():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 25 <= parse_retry_after(formatdate(time.time() + 30, usegmt=True)) <= 30
    assert retry_after_of({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_of({"retry-after": "9"}) == 9.0
    assert retry_after_of({}) is None and retry_after_of(None) is None


def test_the_wait_doubles_with_jitter_up_to_its_cap_and_honours_a_capped_retry_after():
    policy = RetryPolicy(max_attempts=5, backoff=1.0, retry_after_max=10.0, backoff_cap=4.0)
    for retry, (low, high) in {1: (0.5, 1.0), 2: (1.0, 2.0), 3: (2.0, 4.0), 6: (2.0, 4.0)}.items():
        waits = [policy.delay(retry) for _ in range(200)]
        assert low <= min(waits) and max(waits) <= high and max(waits) - min(waits) > 0.1 * low
    assert policy.delay(1, retry_after=7.0) == 7.0  # never sooner than the server asked
    assert policy.delay(1, retry_after=1000.0) == 10.0  # but no longer than the cap


def test_attempts_end_on_a_non_transient_failure_or_the_last_attempt():
    policy = RetryPolicy(max_attempts=3, backoff=0.0)
    retry, item = classify_status(503, "busy"), classify_status(400, "bad request")
    assert [policy.gives_up(retry, attempt) for attempt in (1, 2, 3)] == [False, False, True]
    assert policy.gives_up(item, 1)
