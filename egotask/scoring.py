"""Aggregation of sample records: accuracy and mean score, overall and per question type.

Two kinds of failure are counted apart and never scored silently:

- ``n_generation_failed``: the model gave no answer (undecodable video, failed request);
- ``n_failed``: the judge gave no verdict.

By default both are left out of the denominators and listed. A run that chose
``count_failed_as_wrong`` (``EGOTASK_COUNT_FAILED_AS_WRONG``) counts them as "no"/0 instead; that
choice is an argument here, recorded in the summary, and never read from the reader's environment.
``accuracy``/``score`` follow that choice; ``accuracy_judged``/``score_judged`` (over judged items) and
``accuracy_failed_as_wrong``/``score_failed_as_wrong`` (failures of both kinds as "no"/0) are always
there too, so a report can show both conventions side by side.

Verdicts still pending (``lmms_eval --judge-mode defer``) are counted in ``n_pending``; while there is
any, accuracy and score are ``None``: a run is scored only once it is judged.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from egotask.records import SampleRecord


def judged_values(values: Iterable[float | None], count_failed_as_wrong: bool = False) -> list[float]:
    """The values a mean is taken over: judged items only (``None`` = failed), or failures as 0 when
    ``count_failed_as_wrong``. Reports bootstrap confidence intervals over these."""
    values = list(values)
    return [0.0 if v is None else float(v) for v in values] if count_failed_as_wrong else \
        [float(v) for v in values if v is not None]


def mean_of_judged(values: Iterable[float | None], count_failed_as_wrong: bool = False) -> float | None:
    """Mean over judged items (``None`` = failed); ``None`` when nothing was judged."""
    kept = judged_values(values, count_failed_as_wrong)
    return sum(kept) / len(kept) if kept else None


def correct_values(records: Sequence[SampleRecord]) -> list[int | None]:
    return [None if r.generation_error else r.verdict.correct for r in records]


def score_values(records: Sequence[SampleRecord]) -> list[int | None]:
    return [None if r.generation_error else r.verdict.score for r in records]


def _stats(records: list[SampleRecord], count_failed_as_wrong: bool) -> dict[str, Any]:
    gen_failed = sum(r.generation_error is not None for r in records)
    n_judged = sum(r.generation_error is None and r.judged for r in records)
    n_pending = sum(r.pending for r in records)
    correct, scores = correct_values(records), score_values(records)

    def mean(values: list[int | None], as_wrong: bool) -> float | None:
        return None if n_pending else mean_of_judged(values, as_wrong)

    return {
        "n": len(records),
        "n_judged": n_judged,
        "n_failed": len(records) - n_judged - gen_failed - n_pending,
        "n_generation_failed": gen_failed,
        "n_pending": n_pending,
        "accuracy": mean(correct, count_failed_as_wrong),
        "score": mean(scores, count_failed_as_wrong),
        "accuracy_judged": mean(correct, False),
        "score_judged": mean(scores, False),
        "accuracy_failed_as_wrong": mean(correct, True),
        "score_failed_as_wrong": mean(scores, True),
    }


def _distinct(records: list[SampleRecord], field: str) -> str:
    return ",".join(sorted({str(getattr(r.verdict, field)) for r in records
                            if r.generation_error is None and getattr(r.verdict, field)}))


NOT_RECORDED = "not recorded"


def protocol_summary(records: Sequence[SampleRecord]) -> dict[str, Any]:
    """The protocol(s) the records were asked under (name, prompt family, inference prompt sha256) and
    judged under (the judge prompt's protocol and sha256), each distinct value joined by commas; records
    written before protocols were recorded say so."""
    def distinct(values: Iterable[Any]) -> str:
        return ",".join(sorted({str(v) if v else NOT_RECORDED for v in values})) or NOT_RECORDED

    asked = [r.protocol or {} for r in records]
    judged = [r.verdict for r in records if r.generation_error is None and not r.pending]
    return {
        "name": distinct(p.get("name") for p in asked),
        "prompt_family": distinct(p.get("prompt_family") for p in asked),
        "inference_sha256": distinct(p.get("inference_sha256") for p in asked),
        "release_verified": all(p.get("release_verified") for p in asked) if asked else False,
        "judge_protocol": distinct(v.protocol for v in judged) if judged else "",
        "judge_sha256": distinct(v.prompt_sha256 for v in judged) if judged else "",
    }


# Per-question facts in a record's ``frames``; every other key is a setting of the run.
PER_QUESTION_FRAME_KEYS = ("n_frames",)


def frames_summary(records: Sequence[SampleRecord]) -> dict[str, Any] | None:
    """The frame settings the records were sampled with (``frames``: max_frames, fps, max_pixels, ...):
    each distinct combination, how many records carry one, and the frames actually shown per question.
    None when no record says (imported or older files)."""
    recorded = [r.frames for r in records if r.frames]
    if not recorded:
        return None
    settings = {json.dumps({k: v for k, v in f.items() if k not in PER_QUESTION_FRAME_KEYS}, sort_keys=True)
                for f in recorded}
    shown = [f["n_frames"] for f in recorded if isinstance(f.get("n_frames"), int | float)]
    return {
        "settings": [json.loads(s) for s in sorted(settings)],
        "n_recorded": len(recorded),
        "n": len(records),
        "n_frames": {"min": min(shown), "max": max(shown), "mean": round(sum(shown) / len(shown), 2)}
        if shown else None,
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def generation_summary(records: Sequence[SampleRecord]) -> dict[str, Any] | None:
    """The model side of a run, from its records' ``generation`` (record version 4); None when no record
    measured it (older runs: "not measured").

    Only items generated in this run are timed: answers reused from the answer cache (``n_cached``) kept
    the timings of the run that made them and are left out of throughput, latency and decode time.
    ``items_per_s`` is the answers generated per second of the span from the first request (or batch)
    going in to the last reply coming back, failed items' time included; ``latency_*`` are over those
    answers (median and 95th percentile, linear interpolation). Tokens per item are means over the
    answers whose backend reported them, cached ones included (a cached answer's tokens are its own).
    """
    measured = [r for r in records if r.generation is not None]
    if not measured:
        return None
    fresh = [r for r in measured if not r.generation.cached]
    decode = [r.generation.decode_s for r in fresh if r.generation.decode_s is not None]
    return {"n_measured": len(measured), "n_cached": len(measured) - len(fresh), **_timing(fresh),
            **_tokens(measured), "n_decoded": len(decode), "decode_s_per_item": _mean(decode)}


def _timing(fresh: list[SampleRecord]) -> dict[str, Any]:
    """Throughput and latency of the answers generated in this run (see :func:`generation_summary`)."""
    timed = [r for r in fresh if r.generation.started is not None and r.generation.latency_s is not None]
    answered = [r for r in timed if r.generation_error is None]
    span = (max(r.generation.finished for r in timed) - min(r.generation.started for r in timed)) if timed else 0.0
    latencies = sorted(r.generation.latency_s for r in answered)
    return {
        "n_timed": len(answered),
        "span_s": span if timed else None,
        "items_per_s": len(answered) / span if answered and span > 0 else None,
        "latency_median_s": statistics.median(latencies) if latencies else None,
        "latency_p95_s": float(np.percentile(latencies, 95)) if latencies else None,
    }


def _tokens(measured: list[SampleRecord]) -> dict[str, Any]:
    """Tokens per answer, over the answers whose backend reported them (cached ones included)."""
    with_tokens = [r.generation for r in measured if r.generation_error is None]
    prompt = [float(g.prompt_tokens) for g in with_tokens if g.prompt_tokens is not None]
    completion = [float(g.completion_tokens) for g in with_tokens if g.completion_tokens is not None]
    return {"n_tokens": len(prompt), "prompt_tokens_per_item": _mean(prompt),
            "completion_tokens_per_item": _mean(completion)}


def summarize(records: Iterable[SampleRecord], count_failed_as_wrong: bool = False) -> dict[str, Any]:
    """Overall and per-type accuracy/score of records, with the judge provenance and failures."""
    records = list(records)
    by_type: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in records:
        by_type[r.question_type].append(r)
    out = _stats(records, count_failed_as_wrong)
    out.update({
        "judge": _distinct(records, "judge"),
        "judge_model": _distinct(records, "judge_model"),
        "prompt_version": _distinct(records, "prompt_version"),
        "failed_counted_as_wrong": count_failed_as_wrong,
        "by_type": {t: _stats(rs, count_failed_as_wrong) for t, rs in sorted(by_type.items())},
        "failed": [f"{r.video_id}/{r.question_id}: {r.verdict.error or ''}"
                   for r in records if r.generation_error is None and not r.judged and not r.pending],
        "generation_failed": [f"{r.video_id}/{r.question_id}: {r.generation_error}"
                              for r in records if r.generation_error is not None],
        "frames": frames_summary(records),
        "generation": generation_summary(records),
        "protocol": protocol_summary(records),
    })
    return out


# --------------------------------------------------------------------------- lmms-eval's results shape
# What a task's process_results returns per sample and what lmms-eval aggregates into ``results``:
# the task YAML's metrics. `egotask judge` writes the same when it re-judges or completes a run.

METRICS = ("accuracy", "score", "n_judged", "n_failed")  # the task YAML's per-sample numeric metrics


def sample_metrics(record: SampleRecord) -> dict[str, Any]:
    """What a sample contributes to each metric of the task YAML (also what ``egotask judge`` writes
    when it fills in a deferred run's verdicts)."""
    correct = correct_values([record])[0]
    return {
        "accuracy": correct,
        "score": None if record.generation_error else record.verdict.score,
        "n_judged": int(correct is not None),
        "n_failed": int(correct is None and record.generation_error is None and not record.pending),
        "n_generation_failed": int(record.generation_error is not None),
        "details": record.to_dict(),
    }


def results_entry(summary: dict[str, Any]) -> dict[str, Any]:
    """One task's metrics in lmms-eval's ``results`` shape (``details,none`` is the whole summary)."""
    return {"accuracy,none": summary["accuracy"], "score,none": summary["score"],
            "n_judged,none": summary["n_judged"], "n_failed,none": summary["n_failed"], "details,none": summary}


def stderr_clt(values: list[Any]) -> Any:
    """lmms-eval's CLT standard error of one metric (``calculate_clt_aggregate_metric``): the sample
    standard deviation of the numeric values over sqrt(n), "N/A" under two values."""
    numeric = [v for v in values if isinstance(v, int | float)]
    return float(np.std(numeric, ddof=1) / np.sqrt(len(numeric))) if len(numeric) > 1 else "N/A"
