"""Aggregation of sample records: accuracy and mean score, overall and per question type.

Items whose verdict failed (``pred is None``) are left out of the denominators and listed, unless
``count_failed_as_wrong`` is set; then they count as "no"/0 and the summary says so.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

COUNT_FAILED_VAR = "EGOTASK_COUNT_FAILED_AS_WRONG"


def count_failed_as_wrong_default() -> bool:
    return os.environ.get(COUNT_FAILED_VAR, "").strip().lower() in ("1", "true", "yes")


def judged_values(values: Iterable[float | None], count_failed_as_wrong: bool | None = None) -> list[float]:
    """The values a mean is taken over: judged items only (``None`` = failed to judge), or failures
    as 0 when ``count_failed_as_wrong``. Reports bootstrap confidence intervals over these."""
    if count_failed_as_wrong is None:
        count_failed_as_wrong = count_failed_as_wrong_default()
    values = list(values)
    return [0.0 if v is None else float(v) for v in values] if count_failed_as_wrong else \
        [float(v) for v in values if v is not None]


def mean_of_judged(values: Iterable[float | None], count_failed_as_wrong: bool | None = None) -> float | None:
    """Mean over judged items (``None`` = failed to judge); ``None`` when nothing was judged."""
    kept = judged_values(values, count_failed_as_wrong)
    return sum(kept) / len(kept) if kept else None


def _stats(records: list[dict[str, Any]], count_failed_as_wrong: bool) -> dict[str, Any]:
    verdicts = [r["verdict"] for r in records]
    n_judged = sum(v.get("pred") is not None for v in verdicts)
    return {
        "n": len(records),
        "n_judged": n_judged,
        "n_failed": len(verdicts) - n_judged,
        "accuracy": mean_of_judged([verdict_correct(v) for v in verdicts], count_failed_as_wrong),
        "score": mean_of_judged([v.get("score") for v in verdicts], count_failed_as_wrong),
    }


def verdict_correct(verdict: dict[str, Any]) -> int | None:
    """1 for "yes", 0 for "no", None for a verdict that failed."""
    pred = verdict.get("pred")
    return None if pred is None else int(pred == "yes")


def _distinct(records: list[dict[str, Any]], field: str) -> str:
    values = sorted({str(r["verdict"].get(field)) for r in records if r["verdict"].get(field)})
    return ",".join(values)


def summarize(records: Iterable[dict[str, Any]], count_failed_as_wrong: bool | None = None) -> dict[str, Any]:
    """Overall and per-type accuracy/score of records, with the judge provenance and failures."""
    records = list(records)
    if count_failed_as_wrong is None:
        count_failed_as_wrong = count_failed_as_wrong_default()
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_type[r["question_type"]].append(r)
    out = _stats(records, count_failed_as_wrong)
    out.update({
        "judge": _distinct(records, "judge"),
        "judge_model": _distinct(records, "judge_model"),
        "prompt_version": _distinct(records, "prompt_version"),
        "failed_counted_as_wrong": count_failed_as_wrong,
        "by_type": {t: _stats(rs, count_failed_as_wrong) for t, rs in sorted(by_type.items())},
        "failed": [f"{r['video_id']}/{r['question_id']}: {r['verdict'].get('error', '')}"
                   for r in records if r["verdict"].get("pred") is None],
    })
    return out
