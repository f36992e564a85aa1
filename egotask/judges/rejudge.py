"""Scoring saved predictions again, with another judge or prompt version, without the model, and
judging runs whose verdicts were deferred.

Input: lmms-eval samples files (``<date>_samples_<task>.jsonl``), records files (``<name>.records.jsonl``,
what ``egotask import-legacy`` writes), or folders holding either. Output, beside each input:
``<prefix>_rejudged-<judge>_samples_<task>.jsonl`` (the records with the new verdicts) and one
``<prefix>_rejudged-<judge>_results.json`` per lmms-eval run or records file, in lmms-eval's results
shape, so report tools read it like any run; the prefix is the run's ``<date>`` or the records file's
``<name>``. Each task's entry also carries the agreement between the saved and the new verdicts.

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
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from egotask import scoring
from egotask.atomic import atomic_open, write_text
from egotask.judges import judge_answers, settled_verdict
from egotask.judges.agreement import agreement
from egotask.judges.base import Judge, JudgeItem
from egotask.records import RECORDS_SUFFIX, SampleRecord, load_records

REJUDGED_MARK = "_rejudged-"
JUDGING_KEY = "egotask_judging"  # how the verdicts of a results file were got
METRICS = ("accuracy", "score", "n_judged", "n_failed")  # the task YAML's per-sample numeric metrics


@dataclass
class SamplesFile:
    path: Path
    task: str
    prefix: str  # what lmms-eval's files of one run share: ``<date>`` (or the file's stem for bare records)
    records: list[SampleRecord]
    new_records: list[SampleRecord] = field(default_factory=list)


def find_samples(paths: Iterable[str | Path]) -> list[Path]:
    """Samples and records files named, or found under folders named: lmms-eval's
    ``*_samples_<task>.jsonl`` and ``*.records.jsonl`` (what ``egotask import-legacy`` writes); earlier
    re-judged outputs are left out."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*_samples_*.jsonl") if REJUDGED_MARK not in p.name)
            files += sorted(path.rglob(f"*{RECORDS_SUFFIX}"))
            if not files:
                raise ValueError(f"{path}: no lmms-eval *_samples_<task>.jsonl (run lmms_eval with --log_samples "
                                 f"to keep the predictions) and no *{RECORDS_SUFFIX} (egotask import-legacy) found")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return list(dict.fromkeys(found))


def load_inputs(path: Path) -> list[SamplesFile]:
    """The predictions of one input file, one :class:`SamplesFile` per task: an lmms-eval samples file
    holds one task; a records file (``egotask import-legacy`` writes one per predecessor file, indoor
    and outdoor together) may hold several, which share the file's name as their prefix."""
    records = load_records(path)
    if not records:
        raise ValueError(f"{path}: no records")
    if "_samples_" in path.name:
        prefix, task = path.stem.split("_samples_", 1)
        return [SamplesFile(path, task, prefix, records)]
    prefix = path.name.removesuffix(RECORDS_SUFFIX).removesuffix(".jsonl")
    by_task: dict[str, list[SampleRecord]] = {}
    for record in records:
        by_task.setdefault(record.task, []).append(record)
    return [SamplesFile(path, task, prefix, task_records) for task, task_records in by_task.items()]


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


def task_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """One task's entry in lmms-eval's ``results`` shape."""
    return {"accuracy,none": summary["accuracy"], "score,none": summary["score"],
            "n_judged,none": summary["n_judged"], "n_failed,none": summary["n_failed"], "details,none": summary}


def write_outputs(group: list[SamplesFile], judge: Judge, count_failed_as_wrong: bool = False,
                  judging: dict[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the re-judged samples and one results file for files of one run; returns its path and data."""
    first = group[0]
    tag = output_tag(judge)
    original_results = first.path.with_name(f"{first.prefix}_results.json")
    original = json.loads(original_results.read_text()) if original_results.is_file() else {}
    results: dict[str, Any] = {}
    agreements: dict[str, Any] = {}
    for sf in group:
        out_samples = sf.path.with_name(f"{sf.prefix}_{tag}_samples_{sf.task}.jsonl")
        with atomic_open(out_samples) as fh:
            for record in sf.new_records:
                fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        summary = scoring.summarize(sf.new_records, count_failed_as_wrong)
        summary["missing_videos_skipped"] = max((r.missing_videos_skipped for r in sf.new_records), default=0)
        results[sf.task] = task_metrics(summary)
        agreements[sf.task] = {
            "saved_judge": _provenance(r.verdict for r in sf.records),
            **agreement([r.verdict.to_dict() for r in sf.records], [r.verdict.to_dict() for r in sf.new_records]),
        }
    payload = {
        "results": results,
        "model_name": run_model_name(original, group),
        "config": original.get("config", {}),
        "egotask_rejudge": {
            "judge": judge.describe(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "original_results": str(original_results) if original else None,
            "samples": {sf.task: str(sf.path) for sf in group},
            "agreement": agreements,
        },
        JUDGING_KEY: judging or {},
    }
    out_results = first.path.with_name(f"{first.prefix}_{tag}_results.json")
    write_text(out_results, json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    return out_results, payload


def run_model_name(original: dict[str, Any], group: list[SamplesFile]) -> str:
    """The run's model as lmms-eval named it: its ``model_name`` (the checkpoint; empty for adapters
    without one, such as ``ocr_baseline``), else its ``--model``, else the records' model, else the
    folder lmms-eval wrote the run into (named after the model)."""
    models = {str(r.model) for sf in group for r in sf.records if r.model}
    return (original.get("model_name") or original.get("config", {}).get("model")
            or (models.pop() if len(models) == 1 else None) or group[0].path.parent.name)


def _provenance(verdicts: Iterable[Any]) -> dict[str, str]:
    verdicts = list(verdicts)
    return {field_: ",".join(sorted({str(getattr(v, field_)) for v in verdicts if getattr(v, field_)}))
            for field_ in ("judge", "judge_model", "prompt_version")}


def run_of(path: Path) -> str:
    """The run an input file belongs to, as ``<folder>/<prefix>``: lmms-eval's files of one run share
    their ``<date>`` prefix; a records file is a run of its own."""
    prefix = path.name.split("_samples_", 1)[0] if "_samples_" in path.name else path.name
    return str(path.parent / prefix)


def lock_runs(paths: Iterable[Path], held: contextlib.ExitStack, on_wait: Callable[[str], None]) -> None:
    """Take each run's lock, in a fixed order so that two commands over overlapping runs cannot
    deadlock; ``on_wait(run)`` is called before waiting for one. The locks live beside the verdict
    cache (``EGOTASK_CACHE_DIR/judge_locks``), which is what makes waiting pay off, and leave the
    run's folder as it was."""
    from filelock import FileLock, Timeout

    from egotask.settings import get_settings

    folder = get_settings().cache_dir / "judge_locks"
    for run in sorted({run_of(Path(p).resolve()) for p in paths}):
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(folder / f"{hashlib.sha256(run.encode()).hexdigest()[:24]}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            on_wait(run)
            lock.acquire()
        held.callback(lock.release)


def group_by_run(files: list[SamplesFile]) -> list[list[SamplesFile]]:
    groups: dict[tuple[Path, str], list[SamplesFile]] = {}
    for sf in files:
        groups.setdefault((sf.path.parent, sf.prefix), []).append(sf)
    return list(groups.values())


# --------------------------------------------------------------------------- deferred runs, judged in place

def results_path(sf: SamplesFile) -> Path:
    return sf.path.with_name(f"{sf.prefix}_results.json")


def completes_in_place(group: list[SamplesFile], judge: Judge) -> bool:
    """Whether a run's files are filled in rather than re-judged beside: it holds pending verdicts, or it
    is a deferred run judged in place before, by this same judge (its failures are asked again)."""
    if any(r.pending for sf in group for r in sf.records):
        return True
    path = results_path(group[0])
    try:
        marker = json.loads(path.read_text(encoding="utf-8")).get(JUDGING_KEY, {}) if path.is_file() else {}
    except (OSError, ValueError):
        return False
    return bool(marker.get("in_place")) and marker.get("judge") == judge.describe()


def _stderr_clt(values: list[Any]) -> Any:
    """lmms-eval's CLT standard error of one metric (``calculate_clt_aggregate_metric``): the sample
    standard deviation of the numeric values over sqrt(n), "N/A" under two values."""
    import numpy as np

    numeric = [v for v in values if isinstance(v, int | float)]
    return float(np.std(numeric, ddof=1) / np.sqrt(len(numeric))) if len(numeric) > 1 else "N/A"


def write_in_place(group: list[SamplesFile], judge: Judge, judging: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Rewrite a deferred run's samples and results files with its verdicts, as a synchronous run writes
    them (each file whole or not at all)."""
    from egotask.tasklib import sample_metrics

    first = group[0]
    path = results_path(first)
    if not path.is_file():
        raise ValueError(f"{first.path}: holds pending verdicts but its results file {path.name} is not beside it; "
                         "the run cannot be completed in place")
    data = json.loads(path.read_text(encoding="utf-8"))
    for sf in group:
        entry = data.get("results", {}).get(sf.task)
        if not isinstance(entry, dict) or not isinstance(entry.get("details,none"), dict):
            raise ValueError(f"{path}: no results for task {sf.task} to complete")
        counted = bool(entry["details,none"].get("failed_counted_as_wrong"))
        rows = [row for _, row in _raw_rows(sf.path)]
        if len(rows) != len(sf.new_records):
            raise ValueError(f"{sf.path}: changed while it was being judged; run the command again")
        metrics = [sample_metrics(r) for r in sf.new_records]
        lines = []
        for row, values in zip(rows, metrics, strict=True):
            lines.append(json.dumps({**row, **values} if "details" in row else values["details"], ensure_ascii=False))
        write_text(sf.path, "".join(line + "\n" for line in lines))
        summary = scoring.summarize(sf.new_records, counted)
        summary["missing_videos_skipped"] = max((r.missing_videos_skipped for r in sf.new_records), default=0)
        entry.update({"accuracy,none": summary["accuracy"], "score,none": summary["score"],
                      "n_judged,none": summary["n_judged"], "n_failed,none": summary["n_failed"],
                      "details,none": summary})
        for metric in METRICS:
            if f"{metric}_stderr_clt,none" in entry:
                entry[f"{metric}_stderr_clt,none"] = _stderr_clt([m[metric] for m in metrics])
    data[JUDGING_KEY] = {**judging, "in_place": True, "judge": judge.describe(),
                         "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return path, data


def _raw_rows(path: Path) -> list[tuple[str, Any]]:
    """The file's JSON rows as written (not only their records), in the order the records were read."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                rows.append((f"{path}:{lineno}", json.loads(line)))
    return rows

