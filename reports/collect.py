"""What a report reads: one :class:`TaskResult` per (model run, task), with its summary and sample records.

The runs are found and read by :mod:`egotask.runs`; two kinds give the same :class:`TaskResult`:

- an lmms-eval run: its results file gives each task's summary, and its samples files (``--log_samples``)
  the records;
- a records file (what ``egotask import-legacy`` writes), or a samples file named on its own: its
  records are grouped by ``model`` and ``task`` and summarised here.

Nothing here reads the environment: whether failures count as wrong is what each run recorded
(``failed_counted_as_wrong`` in its results' summary); a records file carries no such choice, so its
runs leave failures out.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egotask import scoring
from egotask.data.sources import BENCHMARKS
from egotask.records import RecordError, SampleRecord, read_record
from egotask.runs import Run, file_tag, find_runs, read_file

__all__ = ["PendingVerdicts", "TaskResult", "assign_labels", "attach_logged_samples", "attach_samples", "collect_runs",
           "pending_count", "read_results", "refuse_pending", "runs_from_records", "runs_from_results",
           "setting_of_task", "source_tag"]

# Records files carry no scoring choice: their runs leave failures out of accuracy and score.
RECORDS_COUNT_FAILED_AS_WRONG = False


@dataclass
class TaskResult:
    """One task of one run, as a report shows it."""

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


def read_results(run: Run, with_samples: bool = False) -> list[TaskResult]:
    """The egotask tasks of a run's lmms-eval results file, each with its samples' records when asked."""
    found = runs_from_results(run.results(), run.results_path)
    if with_samples:
        for result in found:
            attach_samples(result, run)
    return found


def model_name(data: dict[str, Any]) -> str:
    """The checkpoint's folder or hub name (lmms-eval's ``model_name``), else the adapter's name."""
    model = str(data.get("model_name") or data.get("config", {}).get("model", "?"))
    return Path(model.rstrip("/")).name or model


def runs_from_results(data: dict[str, Any], path: Path) -> list[TaskResult]:
    """The egotask runs in one lmms-eval results dict (other tasks are ignored)."""
    model = model_name(data)
    limit = data.get("config", {}).get("limit")
    runs = []
    for task, metrics in data.get("results", {}).items():
        summary = metrics.get("details,none")
        if isinstance(summary, dict) and "by_type" in summary:
            runs.append(TaskResult(model, task, setting_of_task(task), summary, path, limit))
    return runs


def attach_samples(result: TaskResult, run: Run) -> None:
    """Load the task's sample records; without them (no ``--log_samples``) it has no CIs."""
    path = run.samples_path(result.task)
    if not path.is_file():
        print(f"egotask report: {path.name} not found next to {result.source}; {result.model}/{result.task} gets "
              "no confidence intervals (rerun lmms_eval with --log_samples)", file=sys.stderr)
        return
    records = read_file(path, result.task)  # RecordError (a ValueError) names the file and line
    if len(records) != result.summary.get("n"):
        raise RecordError(f"{path}: {len(records)} sample records, but {result.source} reports "
                          f"n={result.summary.get('n')} for {result.task}")
    for i, record in enumerate(records, 1):
        if record.setting != result.setting:
            raise RecordError(f"{path}: record {i} is an {record.setting} question, but {result.task} is "
                              f"the {result.setting} setting")
    result.records = records


def attach_logged_samples(runs: list[TaskResult], samples: dict[str, list[dict[str, Any]]] | None) -> None:
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


def runs_from_records(run: Run) -> list[TaskResult]:
    """One entry per (model, task) in a run's records, summarised by :func:`egotask.scoring.summarize`
    (failures left out: records carry no other choice)."""
    groups: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    sources: dict[tuple[str, str], Path] = {}
    for part in run.read():
        for record in part.records:
            # lmms-eval's own samples carry no model; their folder is named after it.
            key = (record.model or run.folder.name, record.task)
            groups[key].append(record)
            sources.setdefault(key, part.path)
    found = []
    for (model, task), records in groups.items():
        settings = sorted({r.setting for r in records})
        if len(settings) != 1:
            raise RecordError(f"{sources[(model, task)]}: {model}/{task} mixes settings {', '.join(settings)}")
        summary = scoring.summarize(records, count_failed_as_wrong=RECORDS_COUNT_FAILED_AS_WRONG)
        found.append(TaskResult(model, task, settings[0], summary, sources[(model, task)], records=records))
    return found


class PendingVerdicts(ValueError):
    """A run whose judging was deferred and not done yet: it has no numbers to report."""


def pending_count(run: TaskResult) -> int:
    """Verdicts of the run still pending (``lmms_eval --judge-mode defer``)."""
    if run.records is not None:
        return sum(r.pending for r in run.records)
    return int(run.summary.get("n_pending") or 0)


def refuse_pending(runs: list[TaskResult]) -> None:
    """Raise :class:`PendingVerdicts` naming every run that still waits for its judge."""
    waiting = [(run, n) for run in runs if (n := pending_count(run))]
    if waiting:
        lines = [f"{run.source}: {run.model}/{run.task}: {n} of {run.summary.get('n')} verdicts pending"
                 for run, n in waiting]
        folders = " ".join(sorted({str(run.source.parent) for run, _ in waiting}))
        raise PendingVerdicts("\n".join(lines) + "\nThese runs were made with --judge-mode defer and are not "
                              f"judged yet: run `egotask judge {folders} --batch` (or without --batch), then "
                              "report again.")


def collect_runs(paths: list[str | Path], with_samples: bool = True) -> list[TaskResult]:
    """The tasks of the runs named, or found under folders named (:func:`egotask.runs.find_runs`): those
    of lmms-eval results files, and of records files. Runs whose verdicts are still pending are refused
    (:class:`PendingVerdicts`): they are not scored."""
    found: list[TaskResult] = []
    seen: set[Path] = set()  # a run reached through two inputs (a folder and its subfolder) counts once
    for raw in paths:
        # A samples file named stands for itself: its records are summarised like a records file's.
        reportable = [run for run in find_runs([raw]) if run.records_file or not run.whole or run.has_results]
        if not reportable:
            raise ValueError(f"{raw}: no lmms-eval *_results.json or *.records.jsonl found")
        for run in reportable:
            from_results = run.whole and run.has_results
            file = run.results_path if from_results else run.files[0]
            if file.resolve() in seen:
                print(f"egotask report: {file} was already read through another input; counted once",
                      file=sys.stderr)
                continue
            seen.add(file.resolve())
            found.extend(read_results(run, with_samples) if from_results else runs_from_records(run))
    refuse_pending(found)
    assign_labels(found)
    return found


def source_tag(run: TaskResult) -> str:
    return file_tag(run.source)


def assign_labels(runs: list[TaskResult]) -> None:
    """Label runs by model; runs sharing a model and setting get the task and, if needed, the file."""
    groups: dict[tuple[str, str], list[TaskResult]] = defaultdict(list)
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
