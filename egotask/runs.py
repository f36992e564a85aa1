"""Runs on disk: the one place that knows how a run's files are named, found, read and rewritten.

A *run* is what one evaluation left in one folder under one prefix:

- an lmms-eval run: ``<date>_results.json`` and, with ``--log_samples``, one
  ``<date>_samples_<task>.jsonl`` per task (each line's ``details`` is a sample record);
- a records file, ``<name>.records.jsonl`` (what ``egotask import-legacy`` writes), a run of its own
  whose prefix is ``<name>``; it may hold several tasks (and models).

``egotask judge`` writes a re-judged copy beside a run (``<prefix>_rejudged-<judge>-..._samples_<task>.jsonl``
and ``<prefix>_rejudged-<judge>-..._results.json``, in turn a run of lmms-eval's shape), or completes a
deferred run in place. Every write goes through :mod:`egotask.atomic`: a file is whole or as it was.

Judging, reports and the app find runs with :func:`find_runs` and read them through :class:`Run`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egotask.atomic import atomic_open, write_text
from egotask.jsonl import iter_jsonl
from egotask.labels import is_labels_file
from egotask.records import RecordError, SampleRecord, iter_rows, read_record

RESULTS_SUFFIX = "_results.json"
RECORDS_SUFFIX = ".records.jsonl"  # what `egotask import-legacy` writes
DEFAULT_MAX_FRAMES = 8  # the model adapters' default when a run does not say
SAMPLES_MARK = "_samples_"
REJUDGED_MARK = "_rejudged-"  # what `egotask judge` puts in the prefix of the copies it writes
NO_RUN = (f"no lmms-eval run (*{RESULTS_SUFFIX}, or *{SAMPLES_MARK}<task>.jsonl: run lmms_eval with --log_samples "
          f"to keep the predictions) and no *{RECORDS_SUFFIX} (egotask import-legacy) found")


def samples_name(prefix: str, task: str) -> str:
    return f"{prefix}{SAMPLES_MARK}{task}.jsonl"


def split_samples_name(name: str) -> tuple[str, str] | None:
    """(prefix, task) of lmms-eval's ``<prefix>_samples_<task>.jsonl``; None for any other name."""
    if not name.endswith(".jsonl") or name.endswith(RECORDS_SUFFIX) or SAMPLES_MARK not in name:
        return None
    prefix, task = name.removesuffix(".jsonl").split(SAMPLES_MARK, 1)
    return (prefix, task) if prefix and task else None


def file_tag(path: Path) -> str:
    """A run file's name less what says its kind (``_results.json``, ``.records.jsonl``, ``.jsonl``, ``.json``)."""
    name = path.name
    for suffix in (RESULTS_SUFFIX, RECORDS_SUFFIX, ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def records_prefix(name: str) -> str:
    """A records file's prefix: its name less ``.records.jsonl`` (or ``.jsonl``)."""
    return name.removesuffix(RECORDS_SUFFIX).removesuffix(".jsonl")


@dataclass
class TaskSamples:
    """One task's predictions in a run: an lmms-eval samples file, or a records file's share."""

    task: str
    path: Path  # the samples file, or the records file holding these records
    records: list[SampleRecord]
    new_records: list[SampleRecord] = field(default_factory=list)  # with new verdicts (`egotask judge`)


@dataclass(eq=False)
class Run:
    """One run on disk; records and results are read when first asked for, then kept."""

    folder: Path
    prefix: str  # lmms-eval's ``<date>``, or a records file's name less its suffix
    samples: dict[str, Path] = field(default_factory=dict)  # lmms-eval: task -> its samples file
    records_file: Path | None = None  # a records file (then ``samples`` is empty)
    whole: bool = True  # False when samples files were named one by one: the run stands for those tasks only
    model: str | None = None  # set by :meth:`by_model`: only this model's records of a records file
    label: str = ""  # what a reader shows it as (the app: unique among its runs)
    results_file: Path | None = None  # a results file named under another name than ``<prefix>_results.json``
    _parts: list[TaskSamples] | None = field(default=None, repr=False)
    _results: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """``<folder>/<prefix>``: what names the run (and its lock)."""
        return str(self.folder / self.prefix)

    @property
    def results_path(self) -> Path:
        """Where its lmms-eval results file is (see :attr:`has_results`)."""
        return self.results_file or self.folder / f"{self.prefix}{RESULTS_SUFFIX}"

    @property
    def has_results(self) -> bool:
        return self.results_path.is_file()

    @property
    def files(self) -> list[Path]:
        """The files holding its predictions: samples files, or the records file."""
        return [self.records_file] if self.records_file else list(self.samples.values())

    @property
    def rejudged(self) -> bool:
        return REJUDGED_MARK in self.prefix

    def samples_path(self, task: str) -> Path:
        return self.folder / samples_name(self.prefix, task)

    # ----------------------------------------------------------------------- reading

    def results(self) -> dict[str, Any]:
        """Its lmms-eval results file as read ({} when it has none); a ValueError names a bad file."""
        if self._results is None:
            path = self.results_path
            if not path.is_file():
                return {}
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: not a readable lmms-eval results file ({exc})") from exc
            if not isinstance(data, dict):
                raise ValueError(f"{path}: not an lmms-eval results file (a JSON {type(data).__name__}); if it is "
                                 "the predecessor's, convert it with `egotask import-legacy` first")
            self._results = data
        return self._results

    def read(self, problems: list[str] | None = None) -> list[TaskSamples]:
        """Its records, one :class:`TaskSamples` per task. A file that cannot be read raises a
        :class:`RecordError` naming file and line; with ``problems``, it is described there instead and
        the readable records are kept."""
        if self._parts is None:
            parts = [TaskSamples(task, path, records) for task, path in self.samples.items()
                     if (records := read_file(path, task, problems))]
            if self.records_file is not None:
                by_task: dict[str, list[SampleRecord]] = {}
                for record in read_file(self.records_file, None, problems):
                    by_task.setdefault(record.task, []).append(record)
                parts += [TaskSamples(task, self.records_file, records) for task, records in by_task.items()]
            self._parts = parts
        return self._parts

    def model_args(self) -> dict[str, str]:
        """lmms-eval's ``--model_args`` of the run, as recorded in its results ({} without readable results:
        :func:`egotask.app.runs.load_paths` says why when it loads the run)."""
        try:
            value = self.results().get("config", {}).get("model_args")
        except ValueError:
            return {}
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        pairs = (part.split("=", 1) for part in str(value or "").split(",") if "=" in part)
        return {k.strip(): v.strip() for k, v in pairs}

    @property
    def count_failed_as_wrong(self) -> bool:
        """The run's own choice, recorded in its results' summaries; records files carry none, so their
        runs leave failures out (as do runs without readable results)."""
        try:
            entries = self.results().get("results", {}).values()
        except ValueError:
            return False
        return any(isinstance(e, dict) and isinstance(e.get("details,none"), dict)
                   and bool(e["details,none"].get("failed_counted_as_wrong")) for e in entries)

    def frame_settings(self) -> tuple[int, float | None]:
        """(max_frames, fps) the model sampled with, from its ``--model_args`` (adapter defaults else)."""
        args = self.model_args()
        try:
            max_frames = int(args.get("max_frames", DEFAULT_MAX_FRAMES))
        except ValueError:
            max_frames = DEFAULT_MAX_FRAMES
        try:
            fps = float(args["fps"]) if args.get("fps") not in (None, "", "None") else None
        except ValueError:
            fps = None
        return max_frames, fps

    @property
    def records(self) -> list[SampleRecord]:
        return [r for part in self.read() for r in part.records]

    def by_model(self) -> list[Run]:
        """A records file holding several models' records as one run per model (in the order they
        first appear); any other run as itself. Read it first (:meth:`read`)."""
        models = list(dict.fromkeys(r.model or "" for r in self.records))
        if self.records_file is None or len(models) < 2:
            return [self]
        return [dataclasses.replace(self, model=model, _parts=[
            TaskSamples(p.task, p.path, kept) for p in self.read()
            if (kept := [r for r in p.records if (r.model or "") == model])]) for model in models]

    # ----------------------------------------------------------------------- writing

    def write_copy(self, tag: str, records: dict[str, list[SampleRecord]], results: dict[str, Any]) -> Path:
        """Write ``records`` (per task) and ``results`` beside the run as the run ``<prefix>_<tag>``;
        returns the results file's path. Each file is written whole or not at all."""
        copy = Run(self.folder, f"{self.prefix}_{tag}")
        for task, task_records in records.items():
            with atomic_open(copy.samples_path(task)) as fh:
                for record in task_records:
                    fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        write_text(copy.results_path, json.dumps(results, indent=2, ensure_ascii=False, default=str))
        return copy.results_path

    def write_in_place(self, rows: dict[str, list[dict[str, Any]]], results: dict[str, Any]) -> Path:
        """Rewrite its samples files (per task: each line's metrics, ``details`` the record) keeping
        whatever else lmms-eval wrote on each line, then its results file; returns the results file."""
        if self.records_file is not None:
            raise ValueError(f"{self.records_file}: a records file has no lmms-eval results to complete in place")
        for part in self.read():
            old = [row for _, row in _raw_rows(part.path)]
            new = rows[part.task]
            if len(old) != len(new):
                raise ValueError(f"{part.path}: changed while it was being judged; run the command again")
            lines = [json.dumps({**row, **values} if "details" in row else values["details"], ensure_ascii=False)
                     for row, values in zip(old, new, strict=True)]
            write_text(part.path, "".join(line + "\n" for line in lines))
        write_text(self.results_path, json.dumps(results, indent=2, ensure_ascii=False, default=str))
        return self.results_path


def read_file(path: Path, task: str | None, problems: list[str] | None = None) -> list[SampleRecord]:
    """The records of a samples or records file (``task``: a samples file's, for version-1 records that
    did not store it). Strict (``problems`` None): a :class:`RecordError` names the file and line.
    Lenient: each problem is appended, naming file and line, and the readable records are returned."""
    if problems is None:
        records = [read_record(data, where, task) for where, data in iter_rows(path)]
        if not records:
            raise RecordError(f"{path}: no records")
        return records
    try:
        rows = list(iter_rows(path))
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
        return []
    except RecordError as exc:
        problems.append(str(exc))
        return []
    if not rows:
        problems.append(f"{path}: no records in the file")
        return []
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


def _raw_rows(path: Path) -> list[tuple[str, Any]]:
    """The file's JSON rows as written (not only their records), in the order the records were read."""
    return list(iter_jsonl(path, RecordError))


# --------------------------------------------------------------------------- finding

def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


class _Found:
    """Runs gathered from several inputs: a run reached twice is one run."""

    def __init__(self) -> None:
        self.runs: dict[tuple[Path, str], Run] = {}

    def run(self, folder: Path, prefix: str, whole: bool) -> Run:
        run = self.runs.setdefault((folder, prefix), Run(folder, prefix, whole=whole))
        run.whole = run.whole or whole
        return run

    def samples(self, path: Path, whole: bool) -> None:
        prefix, task = split_samples_name(path.name) or ("", "")
        self.run(path.parent, prefix, whole).samples.setdefault(task, path)

    def records(self, path: Path) -> None:
        self.run(path.parent, records_prefix(path.name), True).records_file = path


def runs_stamp(path: Path) -> tuple:
    """What changes when the runs under a path do (lets a cache notice new or rewritten files). Labels
    files are left out: labelling appends to one on every key press, and the run is the same."""
    try:
        if path.is_dir():
            return tuple((str(p), p.stat().st_mtime_ns) for p in sorted(path.rglob("*.json*"))
                         if not is_labels_file(p))
        return (path.stat().st_mtime_ns,) if path.exists() else ()
    except OSError:
        return ()


def _find_in(folder: Path, found: _Found, *, rejudged: bool, bare_jsonl: bool) -> list[Run]:
    before = set(found.runs)
    files = [p for p in sorted(folder.rglob("*.json*")) if p.is_file() and (rejudged or REJUDGED_MARK not in p.name)]
    for path in files:  # lmms-eval runs first, then records files
        if path.name.endswith(RESULTS_SUFFIX):
            found.run(path.parent, path.name.removesuffix(RESULTS_SUFFIX), True)
        elif split_samples_name(path.name):
            found.samples(path, True)
    for path in files:
        if path.name.endswith(RECORDS_SUFFIX) or (bare_jsonl and path.suffix == ".jsonl" and not is_labels_file(path)
                                                  and not split_samples_name(path.name)):
            found.records(path)
    return [run for key, run in found.runs.items() if key not in before]


def find_runs(paths: Iterable[str | Path], *, rejudged: bool = True, predictions: bool = False,
              bare_jsonl: bool = False) -> list[Run]:
    """The runs named, or found under folders named, in the order reached; a run reached through two
    inputs is one run. A results file stands for its run; a samples file for its run's task; any other
    ``.jsonl`` named is a records file.

    In a folder: lmms-eval's ``*_results.json`` and ``*_samples_<task>.jsonl`` and ``*.records.jsonl``,
    and, with ``bare_jsonl`` (the app), any other ``*.jsonl`` but human labels. ``rejudged=False`` leaves
    out the copies ``egotask judge`` wrote; ``predictions=True`` the runs without samples or records (a
    folder holding none of those is then an error). A ValueError names a path that gives no run."""
    found = _Found()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            runs = _find_in(path, found, rejudged=rejudged, bare_jsonl=bare_jsonl)
            if not [r for r in runs if r.files or not predictions]:
                raise ValueError(f"{path}: {NO_RUN}")
        elif path.is_file():
            if path.name.endswith(RESULTS_SUFFIX) or path.suffix != ".jsonl":
                run = found.run(path.parent, path.name.removesuffix(RESULTS_SUFFIX).removesuffix(path.suffix), True)
                run.results_file = None if path.name.endswith(RESULTS_SUFFIX) else path
                for samples in sorted(path.parent.glob(_glob_escape(samples_name(run.prefix, "*")))):
                    if split_samples_name(samples.name):
                        found.samples(samples, True)
                if predictions and not run.files:
                    raise ValueError(f"{path}: no samples files beside it (run lmms-eval with --log_samples)")
            elif split_samples_name(path.name):
                found.samples(path, False)
            else:
                found.records(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return [run for run in found.runs.values() if run.files or not predictions]
