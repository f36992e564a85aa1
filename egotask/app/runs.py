"""Loading runs for the app: lmms-eval output folders, samples files, and record JSONL files.

A *run* is what one model produced: the samples files of one lmms-eval invocation (one
``<stamp>_results.json`` with its ``<stamp>_samples_<task>.jsonl`` files), or one JSONL of bare
records (``egotask import-legacy``, an upload). Each record is read by
:func:`egotask.records.read_record`, the one reader of every record version; a file or record that
cannot be used becomes a problem message, never an exception, so the app can show it and go on.

Whether failures count as wrong is the run's recorded choice (``failed_counted_as_wrong`` in its
lmms-eval results); record files carry none, so their runs leave failures out. Nothing here reads the
environment for it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egotask.labels import is_labels_file
from egotask.records import RecordError, SampleRecord, iter_rows, read_record, task_of_samples_file
from egotask.reports.collect import read_results_file

SAMPLES_RE = re.compile(r"^(?P<stamp>.+)_samples_(?P<task>.+)\.jsonl$")
DEFAULT_MAX_FRAMES = 8  # the model adapters' default when a run does not say


@dataclass
class LoadedRun:
    name: str  # unique label shown in the app
    records: list[SampleRecord]
    sources: list[Path]
    model_args: dict[str, str] = field(default_factory=dict)  # from the lmms-eval results, when found
    # The run's own choice, from its results (record files: failures left out). Summaries of any
    # selection of its records pass it to egotask.scoring.summarize.
    count_failed_as_wrong: bool = False

    def frame_settings(self) -> tuple[int, float | None]:
        """(max_frames, fps) the model sampled with, from its ``--model_args`` (adapter defaults else)."""
        try:
            max_frames = int(self.model_args.get("max_frames", DEFAULT_MAX_FRAMES))
        except ValueError:
            max_frames = DEFAULT_MAX_FRAMES
        try:
            fps = float(self.model_args["fps"]) if self.model_args.get("fps") not in (None, "", "None") else None
        except ValueError:
            fps = None
        return max_frames, fps


@dataclass
class Loaded:
    runs: list[LoadedRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def extend(self, other: Loaded) -> None:
        self.runs.extend(other.runs)
        self.problems.extend(other.problems)


# --------------------------------------------------------------------------- records

def _records_of(path: Path, problems: list[str]) -> list[SampleRecord]:
    """The readable records of a file; the others are left out, with a problem naming file and line."""
    try:
        rows = list(iter_rows(path))
    except UnicodeDecodeError:
        problems.append(f"{path}: not a text file (not UTF-8)")
        return []
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
        return []
    except RecordError as exc:
        problems.append(str(exc))
        return []
    if not rows:
        problems.append(f"{path}: no records in the file")
        return []
    task = task_of_samples_file(path)  # version-1 records did not store their lmms-eval task
    records, bad = [], []
    for where, data in rows:
        try:
            records.append(read_record(data, where, task))
        except RecordError as exc:
            bad.append(str(exc))
    if not records and not any(isinstance(data, dict) and "verdict" in data for _, data in rows):
        # Another task's samples (an lmms-eval folder may hold several benchmarks' files).
        problems.append(f"{path}: not egotask sample records (no verdicts)")
    elif bad:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        problems.append(f"{path}: {len(bad)} of {len(rows)} records left out: {shown}")
    return records


# --------------------------------------------------------------------------- lmms-eval output

def parse_model_args(value: Any) -> dict[str, str]:
    """lmms-eval's ``model_args`` (``"k=v,k=v"`` or a dict) as a dict of strings."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    pairs = (part.split("=", 1) for part in str(value or "").split(",") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs}


def _results_info(results: Path, problems: list[str]) -> tuple[str | None, dict[str, str], bool]:
    """(model name, model_args, failures counted as wrong) of an lmms-eval results file, through the
    reports' collector."""
    if not results.is_file():
        return None, {}, False
    try:
        runs = read_results_file(results)
        config = json.loads(results.read_text(encoding="utf-8")).get("config", {})
    except (OSError, ValueError) as exc:
        problems.append(f"{results}: model name and frame settings unknown ({exc})")
        return None, {}, False
    return ((runs[0].model if runs else None), parse_model_args(config.get("model_args")),
            any(r.failed_counted_as_wrong for r in runs))


def _lmms_group(folder: Path, stamp: str, files: list[Path], problems: list[str]) -> LoadedRun | None:
    model, model_args, counted_wrong = _results_info(folder / f"{stamp}_results.json", problems)
    records = []
    for file in files:
        records += _records_of(file, problems)
    if not records:
        return None
    name = f"{model or folder.name} · {stamp}"
    return LoadedRun(name, records, files, model_args, counted_wrong)


def _record_file(path: Path, problems: list[str]) -> list[LoadedRun]:
    """One run per ``model`` named in a record file (a file may hold several models' records)."""
    by_model: dict[str, list[SampleRecord]] = defaultdict(list)
    for record in _records_of(path, problems):
        by_model[record.model or ""].append(record)
    return [LoadedRun(f"{Path(model).name} ({path.name})" if model else path.name, records, [path])
            for model, records in by_model.items()]


# --------------------------------------------------------------------------- paths

def _files_of(path: Path, problems: list[str]) -> list[Path]:
    if path.is_dir():
        # Human labels made in the app live beside the run; they are not records.
        files = sorted(p for p in path.rglob("*.jsonl") if not is_labels_file(p))
        if not files:
            problems.append(f"{path}: no .jsonl files in this folder (lmms-eval writes samples files only "
                            "with --log_samples)")
        return files
    match = re.match(r"^(?P<stamp>.+)_results\.json$", path.name)
    if match:  # a results file stands for its samples files
        files = sorted(path.parent.glob(f"{glob_escape(match['stamp'])}_samples_*.jsonl"))
        if not files:
            problems.append(f"{path}: no samples files beside it (run lmms-eval with --log_samples)")
        return files
    return [path]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def load_paths(paths: list[str | Path]) -> Loaded:
    """Runs from lmms-eval output folders, results/samples files, or JSONL files of bare records."""
    loaded = Loaded()
    groups: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    singles: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            loaded.problems.append(f"{path}: no such file or folder")
            continue
        for file in _files_of(path, loaded.problems):
            match = SAMPLES_RE.match(file.name)
            if match:
                if file not in groups[(file.parent, match["stamp"])]:
                    groups[(file.parent, match["stamp"])].append(file)
            elif file not in singles:
                singles.append(file)
    for (folder, stamp), files in groups.items():
        run = _lmms_group(folder, stamp, files, loaded.problems)
        if run:
            loaded.runs.append(run)
    for file in singles:
        loaded.runs.extend(_record_file(file, loaded.problems))
    return loaded


def unique_names(runs: list[LoadedRun]) -> list[LoadedRun]:
    """Give runs with the same label a ``#2``, ``#3``... suffix (in place); returns the runs."""
    seen: dict[str, int] = {}
    for run in runs:
        count = seen.get(run.name, 0) + 1
        seen[run.name] = count
        if count > 1:
            run.name = f"{run.name} #{count}"
    return runs
