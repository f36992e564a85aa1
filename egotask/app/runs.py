"""Loading runs for the app: lmms-eval output folders, results and samples files, and record JSONL files.

The runs are found and read by :mod:`egotask.runs` (:func:`egotask.runs.find_runs`, with any ``.jsonl``
of a folder taken as a records file: the app also reads hand-made and uploaded files). A file or record
that cannot be used becomes a problem message, never an exception, so the app can show it and go on. A
records file holding several models' records is one run per model.

Whether failures count as wrong is the run's recorded choice (``failed_counted_as_wrong`` in its
lmms-eval results); record files carry none, so their runs leave failures out. Nothing here reads the
environment for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from egotask.reports.collect import runs_from_results
from egotask.runs import Run, find_runs


@dataclass
class Loaded:
    runs: list[Run] = field(default_factory=list)  # each labelled, records read
    problems: list[str] = field(default_factory=list)

    def extend(self, other: Loaded) -> None:
        self.runs.extend(other.runs)
        self.problems.extend(other.problems)


def _model_of_results(run: Run, problems: list[str]) -> str | None:
    """The model an lmms-eval run's results name (through the reports' reading of them)."""
    if not run.has_results:
        return None
    try:
        tasks = runs_from_results(run.results(), run.results_path)
    except (OSError, ValueError) as exc:
        problems.append(f"{run.results_path}: model name and frame settings unknown ({exc})")
        return None
    return tasks[0].model if tasks else None


def _shown(run: Run, problems: list[str]) -> list[Run]:
    """The run, read and labelled, as the app lists it (a records file: one run per model); none when
    no record could be read."""
    run.read(problems)
    if not run.records:
        return []
    if run.records_file is None:
        run.label = f"{_model_of_results(run, problems) or run.folder.name} · {run.prefix}"
        return [run]
    shown = run.by_model()
    for part in shown:
        model = part.records[0].model
        part.label = f"{Path(model).name} ({run.records_file.name})" if model else run.records_file.name
    return shown


def load_paths(paths: list[str | Path]) -> Loaded:
    """Runs from lmms-eval output folders, results/samples files, or JSONL files of bare records."""
    loaded = Loaded()
    found: dict[str, Run] = {}  # a run reached through two paths is read once, with the files of both
    for raw in paths:
        try:
            runs = find_runs([raw], predictions=True, bare_jsonl=True)
        except ValueError as exc:
            loaded.problems.append(str(exc))
            continue
        for run in runs:
            if run.key in found:
                for task, path in run.samples.items():
                    found[run.key].samples.setdefault(task, path)
            else:
                found[run.key] = run
    for run in found.values():
        loaded.runs.extend(_shown(run, loaded.problems))
    return loaded


def unique_names(runs: list[Run]) -> list[Run]:
    """Give runs with the same label a ``#2``, ``#3``... suffix (in place); returns the runs."""
    seen: dict[str, int] = {}
    for run in runs:
        count = seen.get(run.label, 0) + 1
        seen[run.label] = count
        if count > 1:
            run.label = f"{run.label} #{count}"
    return runs
