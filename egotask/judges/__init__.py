"""Judges score predictions against references. Backends are plugins (see ``egotask_judges``)."""

from __future__ import annotations

import os
import threading

from egotask.judges.base import Judge, JudgeItem, JudgeNotReady

JUDGE_VAR = "EGOTASK_JUDGE"
DEFAULT_JUDGE = "gemini"

_lock = threading.Lock()
_judges: dict[str, Judge] = {}


CONCURRENCY_VAR = "EGOTASK_JUDGE_CONCURRENCY"


def judge_concurrency() -> int:
    """Judge requests allowed in flight at once (``$EGOTASK_JUDGE_CONCURRENCY``, default 16)."""
    raw = os.environ.get(CONCURRENCY_VAR, "").strip() or "16"
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{CONCURRENCY_VAR} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{CONCURRENCY_VAR} must be a positive integer, got {raw!r}")
    return value


def selected_judge_name() -> str:
    return os.environ.get(JUDGE_VAR, "").strip() or DEFAULT_JUDGE


def build_judge(name: str | None = None) -> Judge:
    """A new judge of that name (default: ``$EGOTASK_JUDGE``), configured from the environment now."""
    from egotask.plugins import judge_backends

    name = name or selected_judge_name()
    backends = judge_backends()
    if name not in backends:
        raise JudgeNotReady(f"unknown judge {name!r} (from {JUDGE_VAR} or --judge); "
                            f"available: {', '.join(sorted(backends)) or 'none'}")
    return backends[name].factory()


def get_judge(name: str | None = None) -> Judge:
    """The process-wide judge of that name (default: ``$EGOTASK_JUDGE``), built once: its cache,
    connection pool and concurrency limit are shared by every thread that judges."""
    name = name or selected_judge_name()
    with _lock:
        if name not in _judges:
            _judges[name] = build_judge(name)
        return _judges[name]


__all__ = ["Judge", "JudgeItem", "JudgeNotReady", "build_judge", "get_judge", "selected_judge_name",
           "judge_concurrency", "JUDGE_VAR"]
