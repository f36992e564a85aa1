"""Judges score predictions against references. Backends are plugins (see ``egotask_judges``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from egotask.judges.base import Judge, JudgeItem, JudgeNotReady
from egotask.judges.shortcuts import shortcut_verdict
from egotask.reasoning import NO_FINAL_ANSWER, unfinished_reasoning
from egotask.records import Verdict
from egotask.settings import Settings, get_settings

JUDGE_VAR = "EGOTASK_JUDGE"
DEFAULT_JUDGE = "gemini"  # when neither the settings nor the protocol name a backend

_lock = threading.Lock()
_judges: dict[tuple[str, Settings], Judge] = {}


def judge_concurrency() -> int:
    """Judge requests allowed in flight at once (``EGOTASK_JUDGE_CONCURRENCY``, default 16)."""
    return get_settings().judge_concurrency


def selected_judge_name() -> str:
    """The ``judge`` setting (``--judge``), else the protocol's backend, else :data:`DEFAULT_JUDGE`."""
    from egotask.protocols import active_protocol

    return get_settings().judge or active_protocol().judge.backend or DEFAULT_JUDGE


def build_judge(name: str | None = None, settings: Settings | None = None) -> Judge:
    """A new judge of that name (default: the ``judge`` setting), built from ``settings`` (default: the
    process's)."""
    from egotask.plugins import judge_backends

    name = name or selected_judge_name()
    backends = judge_backends()
    if name not in backends:
        raise JudgeNotReady(f"unknown judge {name!r} (from {JUDGE_VAR} or --judge); "
                            f"available: {', '.join(sorted(backends)) or 'none'}")
    return backends[name].factory(settings or get_settings())


def get_judge(name: str | None = None) -> Judge:
    """The process-wide judge of that name (default: the ``judge`` setting), built once per settings:
    its cache, connection pool and concurrency limit are shared by every thread that judges."""
    name = name or selected_judge_name()
    key = (name, get_settings())
    with _lock:
        if key not in _judges:
            _judges[key] = build_judge(name)
        return _judges[key]


def settled_verdict(judge: Judge, item: JudgeItem) -> Verdict | None:
    """The verdict of an item that needs no judge request, else None: a reply that stopped inside its
    reasoning has no final answer, so it is wrong ("no"/0), not a judge failure; and the protocol's
    shortcuts (:mod:`egotask.judges.shortcuts`) settle exact matches and shared abstentions."""
    if unfinished_reasoning(item.prediction):
        return Verdict(pred="no", score=0, reason=NO_FINAL_ANSWER, **judge.describe())
    return shortcut_verdict(judge, item)


def judge_answers(judge: Judge, items: Sequence[JudgeItem]) -> list[Verdict]:
    """Verdicts for model answers: settled ones (:func:`settled_verdict`) without a request, the rest
    from the judge."""
    verdicts: list[Verdict | None] = [None] * len(items)
    todo = []
    for i, item in enumerate(items):
        verdicts[i] = settled_verdict(judge, item)
        if verdicts[i] is None:
            todo.append(i)
    if len(todo) == 1:  # lmms-eval's process_results: one item per call, from many threads
        verdicts[todo[0]] = judge.judge(items[todo[0]])
    elif todo:
        for i, verdict in zip(todo, judge.judge_many([items[i] for i in todo]), strict=True):
            verdicts[i] = verdict
    return verdicts  # type: ignore[return-value]


__all__ = ["judge_answers", "settled_verdict", "Judge", "JudgeItem", "JudgeNotReady", "build_judge", "get_judge",
           "selected_judge_name", "judge_concurrency", "JUDGE_VAR", "DEFAULT_JUDGE"]
