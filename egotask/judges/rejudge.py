"""Scoring saved predictions again, with another judge or prompt version, without the model, and
judging runs whose verdicts were deferred.

Input: runs, found and read by :mod:`egotask.runs` (lmms-eval runs with their samples files, records
files that ``egotask import-legacy`` writes, or folders holding either). Output: each run's re-judged copy
beside it (:meth:`egotask.runs.Run.write_copy`: the records with the new verdicts and a results file in
lmms-eval's shape, so report tools read it like any run). Each task's entry also carries the agreement
between the saved and the new verdicts.

A run made with ``lmms_eval --judge-mode defer`` holds pending verdicts: it is judged *in place*, its
own samples and results files rewritten with what a synchronous run would have written (the sample
metrics, the summary, lmms-eval's CLT standard errors), so the files end as a synchronous run's
would. Its results record ``in_place``, and judging it again with the same judge also works in place
(asking only about the items that failed).

Every results file written records how the verdicts were got (``egotask_judging``: batch or
synchronous, requests, tokens in and out, estimated cost).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from egotask import scoring
from egotask.judges import judge_answers, settled_verdict
from egotask.judges.agreement import agreement
from egotask.judges.base import Judge, JudgeItem
from egotask.records import SampleRecord
from egotask.runs import Run, find_runs

JUDGING_KEY = "egotask_judging"  # how the verdicts of a results file were got


def find_inputs(paths: Iterable[str | Path]) -> list[Run]:
    """The runs to judge: lmms-eval runs with their samples files, and records files, named or found
    under folders named (:func:`egotask.runs.find_runs`); earlier re-judged copies are left out."""
    return find_runs(paths, rejudged=False, predictions=True)


def judge_item(record: SampleRecord) -> JudgeItem:
    return JudgeItem(record.question, record.answer, record.prediction.strip(), record.question_type)


def items_to_judge(records: list[SampleRecord], judge: Judge) -> list[JudgeItem]:
    """The items ``judge`` is asked about: answers, less those settled without a request (replies that
    stopped inside their reasoning, the protocol's shortcuts; see :func:`egotask.judges.settled_verdict`)."""
    items = (judge_item(r) for r in records if r.generation_error is None)
    return [item for item in items if settled_verdict(judge, item) is None]


def rejudge_records(records: list[SampleRecord], judge: Judge) -> list[SampleRecord]:
    """The records with verdicts from ``judge`` (the same path lmms-eval's ``process_results`` takes).
    Records without an answer (a generation failure) keep their verdict: there is nothing to judge."""
    todo = [i for i, r in enumerate(records) if r.generation_error is None]
    verdicts = judge_answers(judge, [judge_item(records[i]) for i in todo])
    out = list(records)
    for i, verdict in zip(todo, verdicts, strict=True):
        out[i] = records[i].with_verdict(verdict)
    return out


def output_tag(judge: Judge) -> str:
    """``rejudged-<judge>-<model>-<prompt version>``, safe as a file-name part."""
    parts = [judge.name, judge.model, judge.prompt_version]
    return "rejudged-" + "-".join(re.sub(r"[^A-Za-z0-9.-]+", "_", p).strip("_") for p in dict.fromkeys(parts))


def write_outputs(run: Run, judge: Judge, count_failed_as_wrong: bool = False,
                  judging: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the run's re-judged copy beside it; returns its results file's path and data."""
    original = run.results() if run.has_results else {}
    parts = run.read()
    results: dict[str, Any] = {}
    agreements: dict[str, Any] = {}
    for part in parts:
        results[part.task] = scoring.results_entry(_summary(part.new_records, count_failed_as_wrong))
        agreements[part.task] = {
            "saved_judge": _provenance(r.verdict for r in part.records),
            **agreement([r.verdict.to_dict() for r in part.records], [r.verdict.to_dict() for r in part.new_records]),
        }
    payload = {
        "results": results,
        "model_name": run_model_name(original, run),
        "config": original.get("config", {}),
        "egotask_rejudge": {
            "judge": judge.describe(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "original_results": str(run.results_path) if original else None,
            "samples": {part.task: str(part.path) for part in parts},
            "agreement": agreements,
        },
        JUDGING_KEY: judging or {},
    }
    out = run.write_copy(output_tag(judge), {part.task: part.new_records for part in parts}, payload)
    return out, payload


def _summary(records: list[SampleRecord], count_failed_as_wrong: bool) -> dict[str, Any]:
    summary = scoring.summarize(records, count_failed_as_wrong)
    summary["missing_videos_skipped"] = max((r.missing_videos_skipped for r in records), default=0)
    return summary


def run_model_name(original: dict[str, Any], run: Run) -> str:
    """The run's model as lmms-eval named it: its ``model_name`` (the checkpoint; empty for adapters
    without one, such as ``ocr_baseline``), else its ``--model``, else the records' model, else the
    folder lmms-eval wrote the run into (named after the model)."""
    models = {str(r.model) for r in run.records if r.model}
    return (original.get("model_name") or original.get("config", {}).get("model")
            or (models.pop() if len(models) == 1 else None) or run.folder.name)


def _provenance(verdicts: Iterable[Any]) -> dict[str, str]:
    verdicts = list(verdicts)
    return {field_: ",".join(sorted({str(getattr(v, field_)) for v in verdicts if getattr(v, field_)}))
            for field_ in ("judge", "judge_model", "prompt_version")}


def lock_runs(runs: Iterable[Run], held: contextlib.ExitStack, on_wait: Callable[[str], None]) -> None:
    """Take each run's lock, in a fixed order so that two commands over overlapping runs cannot
    deadlock; ``on_wait(run)`` is called before waiting for one. The locks live beside the verdict
    cache (``EGOTASK_CACHE_DIR/judge_locks``), which is what makes waiting pay off, and leave the
    run's folder as it was."""
    from filelock import FileLock, Timeout

    from egotask.settings import get_settings

    folder = get_settings().cache_dir / "judge_locks"
    for run in sorted({str(Path(r.key).resolve()) for r in runs}):
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / f"{hashlib.sha256(run.encode()).hexdigest()[:24]}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            on_wait(run)
            lock.acquire()
        held.callback(lock.release)


# --------------------------------------------------------------------------- deferred runs, judged in place

def completes_in_place(run: Run, judge: Judge) -> bool:
    """Whether a run's files are filled in rather than re-judged beside: it holds pending verdicts, or it
    is a deferred run judged in place before, by this same judge (its failures are asked again)."""
    if any(r.pending for r in run.records):
        return True
    try:
        marker = run.results().get(JUDGING_KEY, {})
    except ValueError:
        return False
    return bool(marker.get("in_place")) and marker.get("judge") == judge.describe()


def write_in_place(run: Run, judge: Judge, judging: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Rewrite a deferred run's samples and results files with its verdicts, as a synchronous run writes
    them (each file whole or not at all)."""
    path = run.results_path
    if run.records_file is not None or not run.has_results:
        raise ValueError(f"{run.files[0]}: holds pending verdicts but its results file {path.name} is not beside it; "
                         "the run cannot be completed in place")
    data = run.results()
    rows: dict[str, list[dict[str, Any]]] = {}
    for part in run.read():
        entry = data.get("results", {}).get(part.task)
        if not isinstance(entry, dict) or not isinstance(entry.get("details,none"), dict):
            raise ValueError(f"{path}: no results for task {part.task} to complete")
        counted = bool(entry["details,none"].get("failed_counted_as_wrong"))
        rows[part.task] = metrics = [scoring.sample_metrics(r) for r in part.new_records]
        entry.update(scoring.results_entry(_summary(part.new_records, counted)))
        for metric in scoring.METRICS:
            if f"{metric}_stderr_clt,none" in entry:
                entry[f"{metric}_stderr_clt,none"] = scoring.stderr_clt([m[metric] for m in metrics])
    data[JUDGING_KEY] = {**judging, "in_place": True, "judge": judge.describe(),
                         "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return run.write_in_place(rows, data), data
