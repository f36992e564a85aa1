"""What the report templates show, computed once: overall rows with clustered bootstrap CIs under both
failure conventions, per-question-type tables (models as columns, best value per row marked), paired
comparisons of runs on the same questions, and the footer's provenance.

Every number comes from :mod:`egotask.scoring` (the runs' summaries and its ``judged_values``),
:mod:`egotask.reports.stats` (intervals) and :mod:`egotask.reports.paired` (comparisons); this module
only arranges them. Nothing is read from the environment. Accuracy and score are over judged items,
and the overall table adds accuracy with failures counted as wrong beside it, whatever each run chose
(:attr:`TaskResult.failed_counted_as_wrong` is named in the footer), so the same inputs give the same report
wherever it is rendered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from egotask import scoring
from egotask.data.sources import BENCHMARKS
from egotask.records import SETTINGS, SampleRecord
from egotask.reports.collect import TaskResult
from egotask.reports.legacy import LEGACY_JUDGE
from egotask.reports.paired import BootstrapOptions, compare_records, same_questions
from egotask.reports.paper import paper_context
from egotask.reports.stats import METHOD, cluster_bootstrap_ci, n_clusters, video_cluster
from egotask.scoring import NOT_RECORDED

__all__ = ["BootstrapOptions", "build_context", "comparisons", "footer", "overall_rows", "type_tables"]

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


def protocol(run: TaskResult) -> str:
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


# --------------------------------------------------------------------------- numbers of one run

CONVENTION_KEYS = ("accuracy_judged", "score_judged", "accuracy_failed_as_wrong", "score_failed_as_wrong")


def conventions(stats: dict[str, Any], counted_wrong: bool) -> dict[str, float | None]:
    """Accuracy and score over judged items and with failures counted as wrong. Summaries written
    before egotask kept both hold only the run's chosen one: the other follows from the counts."""
    if all(k in stats for k in CONVENTION_KEYS):
        return {k: stats[k] for k in CONVENTION_KEYS}
    n, judged = int(stats.get("n") or 0), int(stats.get("n_judged") or 0)
    out: dict[str, float | None] = {}
    for metric in ("accuracy", "score"):
        value = stats.get(metric)
        total = None if value is None else value * (n if counted_wrong else judged)
        if total is None and not judged and n:
            total = 0.0  # nothing judged: every item is a failure, "no"/0 when counted as wrong
        out[f"{metric}_judged"] = None if total is None or not judged else total / judged
        out[f"{metric}_failed_as_wrong"] = None if total is None or not n else total / n
    return out


def _ci(values: Sequence[float], clusters: Sequence[Any], opts: BootstrapOptions) -> tuple[float, float] | None:
    return cluster_bootstrap_ci(values, clusters, opts.n_resamples, opts.seed, opts.level)


def record_cis(records: Sequence[SampleRecord], opts: BootstrapOptions) -> dict[str, Any]:
    """Clustered bootstrap CIs of accuracy and score over judged items, of accuracy with failures
    counted as wrong, and the number of clusters (videos) they resample."""
    clusters = [video_cluster(r) for r in records]
    correct, scores = scoring.correct_values(records), scoring.score_values(records)
    judged = [i for i, c in enumerate(correct) if c is not None]
    scored = [i for i, v in enumerate(scores) if v is not None]
    return {
        "n_clusters": n_clusters(clusters),
        "accuracy": _ci([correct[i] for i in judged], [clusters[i] for i in judged], opts),
        "score": _ci([scores[i] for i in scored], [clusters[i] for i in scored], opts),
        "accuracy_failed_as_wrong": _ci(scoring.judged_values(correct, True), clusters, opts),
    }


def confidence_intervals(run: TaskResult, opts: BootstrapOptions) -> dict[str, Any]:
    """The run's CIs (see :func:`record_cis`); none without its sample records."""
    if run.records is None:
        return {"n_clusters": None, "accuracy": None, "score": None, "accuracy_failed_as_wrong": None}
    return record_cis(run.records, opts)


def ordered(runs: list[TaskResult]) -> list[TaskResult]:
    return sorted(runs, key=lambda r: (setting_key(r.setting), r.label.lower(), r.task))


def overall_rows(runs: list[TaskResult], opts: BootstrapOptions | None = None) -> list[dict[str, Any]]:
    """One row per run: accuracy over judged items and with failures as wrong, score over judged items,
    each with its clustered CI, the number of videos, and the counts."""
    opts = opts or BootstrapOptions()
    rows = []
    for run in sorted(runs, key=lambda r: (r.label.lower(), setting_key(r.setting), r.task)):
        cis = confidence_intervals(run, opts)
        both = conventions(run.summary, run.failed_counted_as_wrong)
        rows.append({"model": run.label, "task": run.task, "setting": run.setting, "protocol": protocol(run),
                     "n_clusters": cis["n_clusters"],
                     "accuracy": both["accuracy_judged"], "accuracy_ci": cis["accuracy"],
                     "accuracy_failed_as_wrong": both["accuracy_failed_as_wrong"],
                     "accuracy_failed_as_wrong_ci": cis["accuracy_failed_as_wrong"],
                     "score": both["score_judged"], "score_ci": cis["score"],
                     "n": run.summary.get("n"), "n_judged": run.summary.get("n_judged"),
                     "n_failed": run.summary.get("n_failed"),
                     "n_generation_failed": generation_failed(run),
                     # The run's own choice, which its lmms-eval metrics followed.
                     "failures": COUNTED_WRONG if run.failed_counted_as_wrong else LEFT_OUT})
    return rows


def generation_failed(run: TaskResult) -> int:
    """Items the model gave no answer for (results written before egotask counted them: 0)."""
    return int(run.summary.get("n_generation_failed") or 0)


def any_generation_failed(runs: list[TaskResult]) -> bool:
    """Whether the overall table needs its "No answer" column."""
    return any(generation_failed(r) for r in runs)


# --------------------------------------------------------------------------- per question type

def _best(values: list[float | None], digits: int) -> list[bool]:
    """Marks the highest displayed value(s); nothing is marked when fewer than two values compete or
    all of them tie."""
    shown = [None if v is None else round(v, digits) for v in values]
    present = [v for v in shown if v is not None]
    if len(present) < 2 or min(present) == max(present):
        return [False] * len(values)
    top = max(present)
    return [v is not None and v == top for v in shown]


def _row(name: str, stats: list[dict[str, Any] | None], counted: list[bool],
         cis: list[dict[str, Any] | None], overall: bool = False) -> dict[str, Any]:
    both = [conventions(s, c) if s else None for s, c in zip(stats, counted, strict=True)]
    acc = [b["accuracy_judged"] if b else None for b in both]
    score = [b["score_judged"] if b else None for b in both]
    acc_best, score_best = _best([None if a is None else a * 100 for a in acc], ACC_DIGITS), \
        _best(score, SCORE_DIGITS)
    cells = [{"accuracy": a, "score": s, "n": st.get("n") if st else None, "accuracy_best": ab, "score_best": sb,
              "accuracy_ci": ci["accuracy"] if ci else None, "score_ci": ci["score"] if ci else None}
             for a, s, st, ab, sb, ci in zip(acc, score, stats, acc_best, score_best, cis, strict=True)]
    return {"type": name, "overall": overall, "cells": cells}


def question_types(setting: str, runs: list[TaskResult]) -> list[str]:
    """The benchmark's own order of types, then any others the runs have, alphabetically."""
    seen = {t for run in runs for t in run.summary.get("by_type", {})}
    known = next((b.question_types for b in BENCHMARKS.values() if b.setting == setting), ())
    return [t for t in known if t in seen] + sorted(seen - set(known))


def _type_cis(run: TaskResult, opts: BootstrapOptions) -> dict[str, dict[str, Any]]:
    if run.records is None:
        return {}
    by_type: dict[str, list[SampleRecord]] = defaultdict(list)
    for r in run.records:
        by_type[r.question_type].append(r)
    return {t: record_cis(rs, opts) for t, rs in by_type.items()}


def by_setting(runs: list[TaskResult]) -> dict[str, list[TaskResult]]:
    groups: dict[str, list[TaskResult]] = defaultdict(list)
    for run in ordered(runs):
        groups[run.setting].append(run)
    return {s: groups[s] for s in sorted(groups, key=setting_key)}


def type_tables(runs: list[TaskResult], opts: BootstrapOptions | None = None) -> list[dict[str, Any]]:
    """Per setting: question types as rows, runs as columns (accuracy and score over judged items, with
    clustered CIs), plus an overall row."""
    opts = opts or BootstrapOptions()
    tables = []
    for setting, setting_runs in by_setting(runs).items():
        counted = [r.failed_counted_as_wrong for r in setting_runs]
        type_cis = [_type_cis(r, opts) for r in setting_runs]
        rows = [_row(t, [r.summary.get("by_type", {}).get(t) for r in setting_runs], counted,
                     [cis.get(t) for cis in type_cis])
                for t in question_types(setting, setting_runs)]
        rows.append(_row("overall", [r.summary for r in setting_runs], counted,
                         [confidence_intervals(r, opts) if r.records is not None else None for r in setting_runs],
                         overall=True))
        tables.append({"setting": setting, "title": SETTING_TITLES.get(setting, setting),
                       "columns": [r.label for r in setting_runs], "rows": rows})
    return tables


FRAMES_NOT_RECORDED = "not recorded"
FRAME_KEY_ORDER = ("max_frames", "fps", "max_pixels")


def frames_info(run: TaskResult) -> dict[str, Any] | None:
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


GENERATION_NOT_MEASURED = ("not measured (no record of the run carries tokens or timings: made before egotask "
                           "recorded them, or by a model that is not an egotask adapter)")


def generation_info(run: TaskResult) -> dict[str, Any] | None:
    """The run's model-side figures: from its records' ``generation``, else its results' summary."""
    info = scoring.generation_summary(run.records) if run.records else None
    summary_info = run.summary.get("generation")
    return info or (summary_info if isinstance(summary_info, dict) else None)


def seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def describe_generation(info: dict[str, Any] | None) -> str:
    """``3.20 items/s (8 answers in 2.5 s); latency median 0.215 s, p95 0.301 s; 812.0 prompt + 9.0
    completion tokens per item; frames decoded in 0.052 s per item``, or "not measured"."""
    if not info:
        return GENERATION_NOT_MEASURED
    parts = []
    if info.get("items_per_s") is not None:
        parts.append(f"{info['items_per_s']:.2f} items/s ({info['n_timed']} answers in {seconds(info['span_s'])})")
    else:
        parts.append("throughput not measured" + (" (every answer came from the answer cache)"
                                                  if info.get("n_cached") == info.get("n_measured") else ""))
    if info.get("latency_median_s") is not None:
        parts.append(f"latency median {seconds(info['latency_median_s'])}, p95 {seconds(info['latency_p95_s'])}")
    prompt, completion = info.get("prompt_tokens_per_item"), info.get("completion_tokens_per_item")
    if prompt is None and completion is None:
        parts.append("tokens not reported by the backend")
    else:
        tokens = " + ".join(f"{value:.1f} {name}" for value, name in ((prompt, "prompt"), (completion, "completion"))
                            if value is not None)
        parts.append(f"{tokens} tokens per item")
    if info.get("decode_s_per_item") is not None:
        parts.append(f"frames decoded in {seconds(info['decode_s_per_item'])} per item")
    if info.get("n_cached"):
        parts.append(f"{info['n_cached']} answer(s) from the answer cache not timed")
    return "; ".join(parts)


# --------------------------------------------------------------------------- paired comparisons

def automatic_pairs(runs: list[TaskResult]) -> list[tuple[TaskResult, TaskResult]]:
    """Every two runs of a setting that hold exactly the same questions (both with sample records)."""
    pairs = []
    for setting_runs in by_setting(runs).values():
        with_records = [r for r in setting_runs if r.records]
        for i, a in enumerate(with_records):
            pairs += [(a, b) for b in with_records[i + 1:] if same_questions(a.records, b.records)]
    return pairs


def comparisons(runs: list[TaskResult], opts: BootstrapOptions | None = None,
                pairs: list[tuple[TaskResult, TaskResult]] | None = None) -> dict[str, Any]:
    """Paired comparisons: of ``pairs`` (``egotask report A B --compare``), else of every two runs that
    hold the same questions. Returns the overall rows (one per pair) and, per setting, a table of
    question types with one column per pair."""
    opts = opts or BootstrapOptions()
    pairs = automatic_pairs(runs) if pairs is None else pairs
    rows, per_setting = [], defaultdict(list)
    for a, b in pairs:
        result = compare_records(a.records or [], b.records or [], opts)
        row = {"setting": a.setting, "title": SETTING_TITLES.get(a.setting, a.setting), "a": a.label, "b": b.label,
               "task_a": a.task, "task_b": b.task, "n_a": result.n_a, "n_b": result.n_b,
               "n_common": result.n_common, "same_questions": result.same_questions,
               **result.overall.to_dict(),
               "by_type": {t: st.to_dict() for t, st in result.by_type.items()}}
        rows.append(row)
        per_setting[a.setting].append(row)
    tables = []
    for setting in sorted(per_setting, key=setting_key):
        pair_rows = per_setting[setting]
        setting_runs = [r for r in runs if r.setting == setting]
        types = question_types(setting, setting_runs)
        table_rows = [{"type": t, "overall": False, "cells": [p["by_type"].get(t) for p in pair_rows]}
                      for t in types if any(t in p["by_type"] for p in pair_rows)]
        table_rows.append({"type": "overall", "overall": True, "cells": pair_rows})
        tables.append({"setting": setting, "title": SETTING_TITLES.get(setting, setting),
                       "columns": [f"{p['a']} − {p['b']}" for p in pair_rows], "rows": table_rows})
    return {"rows": rows, "type_tables": tables}


# --------------------------------------------------------------------------- footer

def describe_protocol(protocol: dict[str, Any] | None) -> str:
    """A run's protocol for a footer: its name, prompt family and the prompts' sha256 (first 12 hex digits)."""
    if not protocol or protocol.get("name") in (None, NOT_RECORDED):
        return "not recorded (made before protocols were recorded)"

    def short(hashes: str) -> str:
        return ",".join(h[:12] for h in hashes.split(",")) if hashes else "none"

    judged = protocol.get("judge_protocol")
    judge = (f"judge prompt of {judged} (sha256 {short(protocol.get('judge_sha256') or '')})"
             if judged and judged != NOT_RECORDED else "no judge prompt named (rule-based judges use none)"
             if judged == NOT_RECORDED else "not judged yet")
    return (f"{protocol['name']}: prompt {protocol.get('prompt_family')} (sha256 "
            f"{short(protocol.get('inference_sha256') or '')}), {judge}")


def _runs_by(runs: list[TaskResult], describe: Callable[[TaskResult], str]) -> dict[str, list[str]]:
    """Runs (as "label (setting)") grouped by what ``describe`` says of them, in report order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for run in ordered(runs):
        groups[describe(run)].append(f"{run.label} ({run.setting})")
    return groups


def footer(runs: list[TaskResult]) -> dict[str, Any]:
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
    frames = _runs_by(runs, lambda run: describe_frames(frames_info(run)))
    generation = _runs_by(runs, lambda run: describe_generation(generation_info(run)))
    eval_protocols = _runs_by(runs, lambda run: describe_protocol(run.summary.get("protocol")))
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
        # Each run's model side: throughput, latency, tokens and decode time per item (or "not measured"),
        # runs with the same line sharing it.
        "generation": [{"line": line, "runs": names} for line, names in generation.items()],
        # The prompt and judge prompt each run was measured under (egotask.protocols), by name and hash.
        "eval_protocols": [{"protocol": desc, "runs": names} for desc, names in eval_protocols.items()],
        "legacy_verdicts": any(LEGACY_JUDGE["judge"] in str(r.summary.get("judge")) for r in runs),
        "ci_method": METHOD,
    }


def build_context(runs: list[TaskResult], opts: BootstrapOptions | None = None,
                  plots: dict[str, str] | None = None, heading: int = 3, paper: bool = False,
                  pairs: list[tuple[TaskResult, TaskResult]] | None = None) -> dict[str, Any]:
    """Everything a report template may use; ``paper`` adds the published reference rows (else None),
    ``pairs`` are the runs to compare (default: every two runs that hold the same questions)."""
    if not runs:
        raise ValueError("no egotask runs to report")
    opts = opts or BootstrapOptions()
    tables = type_tables(runs, opts)
    for table in tables:
        table["plot"] = (plots or {}).get(table["setting"])
    return {"overall": overall_rows(runs, opts), "generation_failed": any_generation_failed(runs),
            "type_tables": tables, "comparisons": comparisons(runs, opts, pairs), "footer": footer(runs),
            "bootstrap": opts, "h": "#" * heading, "paper": paper_context(runs) if paper else None}
