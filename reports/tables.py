"""What the report templates show, computed once: overall rows with bootstrap CIs, per-question-type
tables (models as columns, best value per row marked) and the footer's provenance.

Every number comes from :mod:`egotask.scoring` (the runs' summaries and its ``judged_values``); this
module only arranges them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from egotask import scoring
from egotask.data.sources import BENCHMARKS
from egotask.reports.collect import Run
from egotask.reports.legacy import LEGACY_JUDGE
from egotask.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci

SPLIT_ORDER = ("indoor", "outdoor", "egotempo")
SPLIT_TITLES = {"indoor": "EgoTextVQA indoor", "outdoor": "EgoTextVQA outdoor", "egotempo": "EgoTempo"}
REAL_TIME = "real time, only the video before each question's timestamp"
WHOLE_VIDEO = "the whole video"
WHOLE_CLIP = "the whole clip"
MIXED = "mixed (some questions real time, some the whole video)"
# Displayed precision, also used to decide ties for the bold "best" marks.
ACC_DIGITS, SCORE_DIGITS = 1, 2


@dataclass(frozen=True)
class BootstrapOptions:
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    level: float = 0.95


def split_key(split: str) -> int:
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


def protocol(run: Run) -> str:
    """What the model saw: from the records' ``visible`` interval, else from the task's name."""
    whole = WHOLE_CLIP if run.split == "egotempo" else WHOLE_VIDEO
    ends = {r["visible"][1] is None for r in run.records or () if r.get("visible")}
    if ends == {True}:
        return whole
    if ends == {False}:
        return REAL_TIME
    if ends:
        return MIXED
    if run.split == "egotempo" or run.task.endswith("_fullvideo"):
        return whole
    return REAL_TIME


def confidence_intervals(run: Run, opts: BootstrapOptions) -> dict[str, tuple[float, float] | None]:
    """Bootstrap CIs of accuracy and score over the same per-sample values scoring averages."""
    if run.records is None:
        return {"accuracy": None, "score": None}
    flag = bool(run.summary.get("failed_counted_as_wrong"))
    verdicts = [r["verdict"] for r in run.records]
    acc = scoring.judged_values([scoring.verdict_correct(v) for v in verdicts], flag)
    score = scoring.judged_values([v.get("score") for v in verdicts], flag)
    return {"accuracy": bootstrap_ci(acc, opts.n_resamples, opts.seed, opts.level),
            "score": bootstrap_ci(score, opts.n_resamples, opts.seed, opts.level)}


def ordered(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (split_key(r.split), r.label.lower(), r.task))


def overall_rows(runs: list[Run], opts: BootstrapOptions | None = None) -> list[dict[str, Any]]:
    opts = opts or BootstrapOptions()
    rows = []
    for run in sorted(runs, key=lambda r: (r.label.lower(), split_key(r.split), r.task)):
        cis = confidence_intervals(run, opts)
        rows.append({"model": run.label, "task": run.task, "split": run.split, "protocol": protocol(run),
                     "accuracy": run.summary.get("accuracy"), "score": run.summary.get("score"),
                     "n": run.summary.get("n"), "n_judged": run.summary.get("n_judged"),
                     "n_failed": run.summary.get("n_failed"),
                     "accuracy_ci": cis["accuracy"], "score_ci": cis["score"]})
    return rows


def _best(values: list[float | None], digits: int) -> list[bool]:
    """Marks the highest displayed value(s); nothing is marked when fewer than two values compete or
    all of them tie."""
    shown = [None if v is None else round(v, digits) for v in values]
    present = [v for v in shown if v is not None]
    if len(present) < 2 or min(present) == max(present):
        return [False] * len(values)
    top = max(present)
    return [v is not None and v == top for v in shown]


def _row(name: str, stats: list[dict[str, Any] | None], overall: bool = False) -> dict[str, Any]:
    acc = [s.get("accuracy") if s else None for s in stats]
    score = [s.get("score") if s else None for s in stats]
    acc_best, score_best = _best([None if a is None else a * 100 for a in acc], ACC_DIGITS), \
        _best(score, SCORE_DIGITS)
    cells = [{"accuracy": a, "score": s, "n": st.get("n") if st else None, "accuracy_best": ab, "score_best": sb}
             for a, s, st, ab, sb in zip(acc, score, stats, acc_best, score_best, strict=True)]
    return {"type": name, "overall": overall, "cells": cells}


def question_types(split: str, runs: list[Run]) -> list[str]:
    """The benchmark's own order of types, then any others the runs have, alphabetically."""
    seen = {t for run in runs for t in run.summary.get("by_type", {})}
    known = next((b.question_types for b in BENCHMARKS.values() if b.split == split), ())
    return [t for t in known if t in seen] + sorted(seen - set(known))


def type_tables(runs: list[Run]) -> list[dict[str, Any]]:
    """Per split: question types as rows, runs as columns (accuracy and score), plus an overall row."""
    by_split: dict[str, list[Run]] = defaultdict(list)
    for run in ordered(runs):
        by_split[run.split].append(run)
    tables = []
    for split in sorted(by_split, key=split_key):
        split_runs = by_split[split]
        rows = [_row(t, [r.summary.get("by_type", {}).get(t) for r in split_runs])
                for t in question_types(split, split_runs)]
        rows.append(_row("overall", [r.summary for r in split_runs], overall=True))
        tables.append({"split": split, "title": SPLIT_TITLES.get(split, split),
                       "columns": [r.label for r in split_runs], "rows": rows})
    return tables


def footer(runs: list[Run]) -> dict[str, Any]:
    """Who judged, with which prompt, what the models saw, and what the CIs are over."""
    judges: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for run in ordered(runs):
        key = tuple(str(run.summary.get(k) or "?") for k in ("judge", "judge_model", "prompt_version"))
        if run.label not in judges[key]:
            judges[key].append(run.label)
    per_split: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for run in ordered(runs):
        per_split[run.split][protocol(run)].append(run.label)
    # Splits whose runs all saw the same thing share a line: "the whole video: indoor, outdoor".
    protocols: dict[tuple, list[str]] = defaultdict(list)
    for split in sorted(per_split, key=split_key):
        kinds = per_split[split]
        key = tuple((kind, tuple(names) if len(kinds) > 1 else ()) for kind, names in kinds.items())
        protocols[key].append(SPLIT_TITLES.get(split, split))
    return {
        "judges": [{"judge": j, "judge_model": m, "prompt_version": p, "runs": names}
                   for (j, m, p), names in judges.items()],
        "protocols": [{"splits": titles, "kinds": [{"protocol": kind, "runs": list(names)} for kind, names in key]}
                      for key, titles in protocols.items()],
        "failed_counted_as_wrong": any(r.summary.get("failed_counted_as_wrong") for r in runs),
        "n_failed": sum(int(r.summary.get("n_failed") or 0) for r in runs),
        "without_samples": [f"{r.label} ({r.split})" for r in ordered(runs) if r.records is None],
        "legacy_verdicts": any(LEGACY_JUDGE["judge"] in str(r.summary.get("judge")) for r in runs),
    }


def build_context(runs: list[Run], opts: BootstrapOptions | None = None,
                  plots: dict[str, str] | None = None, heading: int = 3) -> dict[str, Any]:
    """Everything a report template may use."""
    if not runs:
        raise ValueError("no egotask runs to report")
    opts = opts or BootstrapOptions()
    tables = type_tables(runs)
    for table in tables:
        table["plot"] = (plots or {}).get(table["split"])
    return {"overall": overall_rows(runs, opts), "type_tables": tables, "footer": footer(runs),
            "bootstrap": opts, "h": "#" * heading}
