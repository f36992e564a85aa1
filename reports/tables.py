"""What the report templates show, computed once: overall rows with bootstrap CIs, per-question-type
tables (models as columns, best value per row marked) and the footer's provenance.

Every number comes from :mod:`egotask.scoring` (the runs' summaries and its ``judged_values``); this
module only arranges them. Nothing is read from the environment: whether failures count as wrong is
each run's recorded choice (:attr:`Run.failed_counted_as_wrong`), so the same inputs give the same
report wherever it is rendered.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from egotask import scoring
from egotask.data.sources import BENCHMARKS
from egotask.records import SETTINGS, SampleRecord
from egotask.reports.collect import Run
from egotask.reports.legacy import LEGACY_JUDGE
from egotask.reports.paper import paper_context
from egotask.reports.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci

SETTING_ORDER = SETTINGS
SETTING_TITLES = {"indoor": "EgoTextVQA indoor", "outdoor": "EgoTextVQA outdoor", "egotempo": "EgoTempo"}
# How a run treated items without a verdict (or without an answer), as the overall table shows it.
LEFT_OUT, COUNTED_WRONG, MIXED_FAILURES = "left out", "counted wrong", "mixed"
REAL_TIME = "real time, only the video before each question's timestamp"
WHOLE_VIDEO = "the whole video"
WHOLE_CLIP = "the whole clip"
MIXED = "mixed (some questions real time, some the whole video)"
NOT_MEASURED = " (allowed by the task; what the model saw was not recorded)"
# Displayed precision, also used to decide ties for the bold "best" marks.
ACC_DIGITS, SCORE_DIGITS = 1, 2


@dataclass(frozen=True)
class BootstrapOptions:
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    level: float = 0.95


def setting_key(setting: str) -> int:
    return SETTING_ORDER.index(setting) if setting in SETTING_ORDER else len(SETTING_ORDER)


def record_protocol(record: SampleRecord) -> str:
    """What the model was shown for one question, from what the record measured (``seen``): real time
    only when its last frame came before the question's timestamp. Records without ``seen`` (older
    runs) fall back to the interval the task allowed, marked as not measured."""
    whole = WHOLE_CLIP if record.setting == "egotempo" else WHOLE_VIDEO
    if record.seen is None:
        return (whole if record.visible[1] is None else REAL_TIME) + NOT_MEASURED
    if record.visible[1] is None or (record.timestamp is not None and record.seen[1] >= record.timestamp):
        return whole
    return REAL_TIME


def protocol(run: Run) -> str:
    """What the model saw in a run: one protocol for all its records, or mixed."""
    kinds = {record_protocol(r) for r in run.records or ()}
    if len(kinds) == 1:
        return kinds.pop()
    if kinds:
        return MIXED
    # No samples logged: only the task says what was allowed.
    allowed = WHOLE_CLIP if run.setting == "egotempo" else WHOLE_VIDEO if run.task.endswith("_fullvideo") \
        else REAL_TIME
    return allowed + NOT_MEASURED


def confidence_intervals(run: Run, opts: BootstrapOptions) -> dict[str, tuple[float, float] | None]:
    """Bootstrap CIs of accuracy and score over the same per-sample values scoring averages."""
    if run.records is None:
        return {"accuracy": None, "score": None}
    flag = run.failed_counted_as_wrong
    acc = scoring.judged_values(scoring.correct_values(run.records), flag)
    score = scoring.judged_values(scoring.score_values(run.records), flag)
    return {"accuracy": bootstrap_ci(acc, opts.n_resamples, opts.seed, opts.level),
            "score": bootstrap_ci(score, opts.n_resamples, opts.seed, opts.level)}


def ordered(runs: list[Run]) -> list[Run]:
    return sorted(runs, key=lambda r: (setting_key(r.setting), r.label.lower(), r.task))


def overall_rows(runs: list[Run], opts: BootstrapOptions | None = None) -> list[dict[str, Any]]:
    opts = opts or BootstrapOptions()
    rows = []
    for run in sorted(runs, key=lambda r: (r.label.lower(), setting_key(r.setting), r.task)):
        cis = confidence_intervals(run, opts)
        rows.append({"model": run.label, "task": run.task, "setting": run.setting, "protocol": protocol(run),
                     "accuracy": run.summary.get("accuracy"), "score": run.summary.get("score"),
                     "n": run.summary.get("n"), "n_judged": run.summary.get("n_judged"),
                     "n_failed": run.summary.get("n_failed"),
                     "n_generation_failed": generation_failed(run),
                     "failures": COUNTED_WRONG if run.failed_counted_as_wrong else LEFT_OUT,
                     "accuracy_ci": cis["accuracy"], "score_ci": cis["score"]})
    return rows


def generation_failed(run: Run) -> int:
    """Items the model gave no answer for (results written before egotask counted them: 0)."""
    return int(run.summary.get("n_generation_failed") or 0)


def any_generation_failed(runs: list[Run]) -> bool:
    """Whether the overall table needs its "No answer" column."""
    return any(generation_failed(r) for r in runs)


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


def question_types(setting: str, runs: list[Run]) -> list[str]:
    """The benchmark's own order of types, then any others the runs have, alphabetically."""
    seen = {t for run in runs for t in run.summary.get("by_type", {})}
    known = next((b.question_types for b in BENCHMARKS.values() if b.setting == setting), ())
    return [t for t in known if t in seen] + sorted(seen - set(known))


def type_tables(runs: list[Run]) -> list[dict[str, Any]]:
    """Per setting: question types as rows, runs as columns (accuracy and score), plus an overall row."""
    by_setting: dict[str, list[Run]] = defaultdict(list)
    for run in ordered(runs):
        by_setting[run.setting].append(run)
    tables = []
    for setting in sorted(by_setting, key=setting_key):
        setting_runs = by_setting[setting]
        rows = [_row(t, [r.summary.get("by_type", {}).get(t) for r in setting_runs])
                for t in question_types(setting, setting_runs)]
        rows.append(_row("overall", [r.summary for r in setting_runs], overall=True))
        tables.append({"setting": setting, "title": SETTING_TITLES.get(setting, setting),
                       "columns": [r.label for r in setting_runs], "rows": rows})
    return tables


FRAMES_NOT_RECORDED = "not recorded"
FRAME_KEY_ORDER = ("max_frames", "fps", "max_pixels")


def frames_info(run: Run) -> dict[str, Any] | None:
    """The run's frame settings: from its records' ``frames``, else its results' summary."""
    info = scoring.frames_summary(run.records) if run.records else None
    summary_info = run.summary.get("frames")
    return info or (summary_info if isinstance(summary_info, dict) else None)


def describe_frames(info: dict[str, Any] | None) -> str:
    """``max_frames 32, fps unset, max_pixels 589824 (12-32 frames per question)``."""
    if not info or not info.get("settings"):
        return FRAMES_NOT_RECORDED
    combos = []
    for setting in info["settings"]:
        keys = [k for k in FRAME_KEY_ORDER if k in setting] + sorted(k for k in setting if k not in FRAME_KEY_ORDER)
        combos.append(", ".join(f"{k} {'unset' if setting[k] is None else setting[k]}" for k in keys))
    text = "; ".join(combos)
    shown, notes = info.get("n_frames"), []
    if shown:
        span = f"{shown['min']}" if shown["min"] == shown["max"] else f"{shown['min']}-{shown['max']}"
        notes.append(f"{span} frames per question")
    if info.get("n_recorded", 0) < info.get("n", 0):
        notes.append(f"recorded for {info['n_recorded']} of {info['n']} questions")
    return text + (f" ({', '.join(notes)})" if notes else "")


def footer(runs: list[Run]) -> dict[str, Any]:
    """Who judged, with which prompt, what the models saw, and what the CIs are over."""
    judges: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for run in ordered(runs):
        key = tuple(str(run.summary.get(k) or "?") for k in ("judge", "judge_model", "prompt_version"))
        if run.label not in judges[key]:
            judges[key].append(run.label)
    per_setting: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for run in ordered(runs):
        per_setting[run.setting][protocol(run)].append(run.label)
    # Settings whose runs all saw the same thing share a line: "the whole video: indoor, outdoor".
    protocols: dict[tuple, list[str]] = defaultdict(list)
    for setting in sorted(per_setting, key=setting_key):
        kinds = per_setting[setting]
        key = tuple((kind, tuple(names) if len(kinds) > 1 else ()) for kind, names in kinds.items())
        protocols[key].append(SETTING_TITLES.get(setting, setting))
    counted = [f"{r.label} ({r.setting})" for r in ordered(runs) if r.failed_counted_as_wrong]
    frames: dict[str, list[str]] = defaultdict(list)
    for run in ordered(runs):
        frames[describe_frames(frames_info(run))].append(f"{run.label} ({run.setting})")
    return {
        "judges": [{"judge": j, "judge_model": m, "prompt_version": p, "runs": names}
                   for (j, m, p), names in judges.items()],
        "protocols": [{"settings": titles,
                       "kinds": [{"protocol": kind, "runs": list(names)} for kind, names in key]}
                      for key, titles in protocols.items()],
        # Each run's recorded choice: "left out", "counted wrong", or "mixed" (counted_wrong_runs say which).
        "failures": COUNTED_WRONG if len(counted) == len(runs) else MIXED_FAILURES if counted else LEFT_OUT,
        "failed_counted_as_wrong": bool(counted),
        "counted_wrong_runs": counted,
        "n_failed": sum(int(r.summary.get("n_failed") or 0) for r in runs),
        "n_generation_failed": sum(generation_failed(r) for r in runs),
        "without_samples": [f"{r.label} ({r.setting})" for r in ordered(runs) if r.records is None],
        # What the models were shown: one entry per distinct frame setting, with the runs that used it.
        "frames": [{"settings": desc, "runs": names} for desc, names in frames.items()],
        "legacy_verdicts": any(LEGACY_JUDGE["judge"] in str(r.summary.get("judge")) for r in runs),
    }


def build_context(runs: list[Run], opts: BootstrapOptions | None = None,
                  plots: dict[str, str] | None = None, heading: int = 3, paper: bool = False) -> dict[str, Any]:
    """Everything a report template may use; ``paper`` adds the published reference rows (else None)."""
    if not runs:
        raise ValueError("no egotask runs to report")
    opts = opts or BootstrapOptions()
    tables = type_tables(runs)
    for table in tables:
        table["plot"] = (plots or {}).get(table["setting"])
    return {"overall": overall_rows(runs, opts), "generation_failed": any_generation_failed(runs),
            "type_tables": tables, "footer": footer(runs), "bootstrap": opts, "h": "#" * heading,
            "paper": paper_context(runs) if paper else None}
