"""Read evaluation outputs into runs: one per (model run, task), with its summary and sample records.

Two inputs give the same :class:`Run`:

- an lmms-eval output folder (``<output>/<model>/<date>_results.json`` plus, with ``--log_samples``,
  ``<date>_samples_<task>.jsonl`` whose ``details`` are the records);
- a JSONL of bare records (``*.records.jsonl``, what ``egotask import-legacy`` writes), grouped by the
  records' ``model`` and ``task``.

Records are read by :func:`egotask.records.load_records`, the one reader of every record version.
Nothing here reads the environment: whether failures count as wrong is what each run recorded
(``failed_counted_as_wrong`` in its results' summary); a records file carries no such choice, so its
runs leave failures out.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egotask import scoring
from egotask.data.sources import BENCHMARKS
from egotask.records import RECORDS_SUFFIX, RecordError, SampleRecord, load_records, read_record

__all__ = ["RECORDS_SUFFIX", "PendingVerdicts", "Run", "assign_labels", "attach_logged_samples", "attach_samples",
           "collect_runs",
           "pending_count", "read_results_file", "refuse_pending", "runs_from_records", "runs_from_results",
           "samples_path", "setting_of_task", "source_tag"]

# Records files carry no scoring choice: their runs leave failures out of accuracy and score.
RECORDS_COUNT_FAILED_AS_WRONG = False


@dataclass
class Run:
    model: str  # display name: the checkpoint or the model adapter
    task: str  # the lmms-eval task (egotextvqa_indoor_fullvideo, ...)
    setting: str  # indoor | outdoor | egotempo
    summary: dict[str, Any]  # egotask.scoring.summarize() output
    source: Path
    limit: float | None = None
    records: list[SampleRecord] | None = None  # per-sample records, when the samples were logged
    label: str = ""  # unique among the runs of a report; set by assign_labels()

    def __post_init__(self) -> None:
        self.label = self.label or self.model

    @property
    def failed_counted_as_wrong(self) -> bool:
        """The run's own choice, recorded in its summary (absent in a summary: left out)."""
        return bool(self.summary.get("failed_counted_as_wrong"))


def setting_of_task(task: str) -> str:
    """The setting of an egotask lmms-eval task (its benchmark's name, maybe with a suffix)."""
    for name, bench in BENCHMARKS.items():
        if task == name or task.startswith(name + "_"):
            return bench.setting
    raise ValueError(f"task {task!r} is not an egotask task")


def read_results_file(path: Path, with_samples: bool = False) -> list[Run]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable lmms-eval results file ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an lmms-eval results file (a JSON {type(data).__name__}); if it is "
                         "the predecessor's, convert it with `egotask import-legacy` first")
    runs = runs_from_results(data, path)
    if with_samples:
        for run in runs:
            attach_samples(run)
    return runs


def model_name(data: dict[str, Any]) -> str:
    """The checkpoint's folder or hub name (lmms-eval's ``model_name``), else the adapter's name."""
    model = str(data.get("model_name") or data.get("config", {}).get("model", "?"))
    return Path(model.rstrip("/")).name or model


def runs_from_results(data: dict[str, Any], path: Path) -> list[Run]:
    """The egotask runs in one lmms-eval results dict (other tasks are ignored)."""
    model = model_name(data)
    limit = data.get("config", {}).get("limit")
    runs = []
    for task, metrics in data.get("results", {}).items():
        summary = metrics.get("details,none")
        if isinstance(summary, dict) and "by_type" in summary:
            runs.append(Run(model, task, setting_of_task(task), summary, path, limit))
    return runs


def samples_path(run: Run) -> Path:
    """lmms-eval writes ``<date>_results.json`` and ``<date>_samples_<task>.jsonl`` side by side."""
    date_id = run.source.name.removesuffix("_results.json")
    return run.source.with_name(f"{date_id}_samples_{run.task}.jsonl")


def attach_samples(run: Run) -> None:
    """Load the run's sample records; without them (no ``--log_samples``) the run has no CIs."""
    path = samples_path(run)
    if not path.is_file():
        print(f"egotask report: {path.name} not found next to {run.source}; {run.model}/{run.task} gets "
              "no confidence intervals (rerun lmms_eval with --log_samples)", file=sys.stderr)
        return
    records = load_records(path)  # RecordError (a ValueError) names the file and line
    if len(records) != run.summary.get("n"):
        raise RecordError(f"{path}: {len(records)} sample records, but {run.source} reports "
                          f"n={run.summary.get('n')} for {run.task}")
    for i, record in enumerate(records, 1):
        if record.setting != run.setting:
            raise RecordError(f"{path}: record {i} is an {record.setting} question, but {run.task} is "
                              f"the {run.setting} setting")
    run.records = records


def attach_logged_samples(runs: list[Run], samples: dict[str, list[dict[str, Any]]] | None) -> None:
    """Give each run the records of lmms-eval's in-memory samples (what ``--log_samples`` writes, each
    sample's ``details``), so a run's own table is read as ``egotask report`` reads its files: what the
    model saw from ``seen``, and CIs. Without samples (no ``--log_samples``) the runs stay summaries."""
    for run in runs:
        rows = (samples or {}).get(run.task)
        if not rows:
            continue
        records = [read_record(row.get("details", row) if isinstance(row, dict) else row,
                               f"{run.task} sample {i}", run.task) for i, row in enumerate(rows, 1)]
        if len(records) == run.summary.get("n"):
            run.records = records


def runs_from_records(path: Path) -> list[Run]:
    """One run per (model, task) in a records JSONL, summarised by :func:`egotask.scoring.summarize`
    (failures left out: a records file records no other choice)."""
    groups: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    for record in load_records(path):
        # lmms-eval's own samples carry no model; their folder is named after it.
        groups[(record.model or path.parent.name, record.task)].append(record)
    if not groups:
        raise RecordError(f"{path}: no records")
    runs = []
    for (model, task), records in groups.items():
        settings = sorted({r.setting for r in records})
        if len(settings) != 1:
            raise RecordError(f"{path}: {model}/{task} mixes settings {', '.join(settings)}")
        summary = scoring.summarize(records, count_failed_as_wrong=RECORDS_COUNT_FAILED_AS_WRONG)
        runs.append(Run(model, task, settings[0], summary, path, records=records))
    return runs


class PendingVerdicts(ValueError):
    """A run whose judging was deferred and not done yet: it has no numbers to report."""


def pending_count(run: Run) -> int:
    """Verdicts of the run still pending (``lmms_eval --judge-mode defer``)."""
    if run.records is not None:
        return sum(r.pending for r in run.records)
    return int(run.summary.get("n_pending") or 0)


def refuse_pending(runs: list[Run]) -> None:
    """Raise :class:`PendingVerdicts` naming every run that still waits for its judge."""
    waiting = [(run, n) for run in runs if (n := pending_count(run))]
    if waiting:
        lines = [f"{run.source}: {run.model}/{run.task}: {n} of {run.summary.get('n')} verdicts pending"
                 for run, n in waiting]
        folders = " ".join(sorted({str(run.source.parent) for run, _ in waiting}))
        raise PendingVerdicts("\n".join(lines) + "\nThese runs were made with --judge-mode defer and are not "
                              f"judged yet: run `egotask judge {folders} --batch` (or without --batch), then "
                              "report again.")


def collect_runs(paths: list[str | Path], with_samples: bool = True) -> list[Run]:
    """Runs from lmms-eval results files and records JSONL files, or folders searched for both
    (``*_results.json`` and ``*.records.jsonl``). Runs whose verdicts are still pending are refused
    (:class:`PendingVerdicts`): they are not scored."""
    runs: list[Run] = []
    seen: set[Path] = set()  # a file reached through two inputs (a folder and its subfolder) counts once
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            results = sorted(path.rglob("*_results.json"))
            record_files = sorted(path.rglob(f"*{RECORDS_SUFFIX}"))
            if not results and not record_files:
                raise ValueError(f"{path}: no lmms-eval *_results.json or *{RECORDS_SUFFIX} found")
        elif path.is_file():
            results, record_files = ([], [path]) if path.suffix == ".jsonl" else ([path], [])
        else:
            raise ValueError(f"{path}: no such file or folder")
        for file in [*results, *record_files]:
            if file.resolve() in seen:
                print(f"egotask report: {file} was already read through another input; counted once",
                      file=sys.stderr)
                continue
            seen.add(file.resolve())
            runs.extend(read_results_file(file, with_samples) if file in results else runs_from_records(file))
    refuse_pending(runs)
    assign_labels(runs)
    return runs


def source_tag(run: Run) -> str:
    name = run.source.name
    for suffix in ("_results.json", RECORDS_SUFFIX, ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def assign_labels(runs: list[Run]) -> None:
    """Label runs by model; runs sharing a model and setting get the task and, if needed, the file."""
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.model, run.setting)].append(run)
    for group in groups.values():
        parts = []
        if len({r.task for r in group}) > 1:
            parts.append(lambda r: r.task)
        if len({(r.task, source_tag(r)) for r in group}) > len({r.task for r in group}):
            parts.append(source_tag)
        for run in group:
            run.label = f"{run.model} ({', '.join(part(run) for part in parts)})" if parts else run.model
        if len({r.label for r in group}) < len(group):
            for i, run in enumerate(group, 1):
                run.label = f"{run.label} #{i}"
