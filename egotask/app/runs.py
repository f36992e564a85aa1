"""Loading runs for the app: lmms-eval output folders, samples files, and record JSONL files.

A *run* is what one model produced: the samples files of one lmms-eval invocation (one
``<stamp>_results.json`` with its ``<stamp>_samples_<task>.jsonl`` files), or one JSONL of bare
records (``egotask import-legacy``, an upload). Records are read with
:func:`egotask.reports.collect.load_records`, the reports' own reader; a file or record that cannot
be used becomes a problem message, never an exception, so the app can show it and go on.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egotask.data.sources import BENCHMARKS, DataError, split_of_video_id
from egotask.reports.collect import collect_runs, load_records, split_of_task

SAMPLES_RE = re.compile(r"^(?P<stamp>.+)_samples_(?P<task>.+)\.jsonl$")
BENCHMARK_OF_SPLIT = {bench.split: name for name, bench in BENCHMARKS.items()}
DEFAULT_MAX_FRAMES = 8  # the model adapters' default when a run does not say


class RecordError(ValueError):
    """A record the app cannot place (no video id, unknown split...); names the file and line."""


@dataclass
class LoadedRun:
    name: str  # unique label shown in the app
    records: list[dict[str, Any]]
    sources: list[Path]
    model_args: dict[str, str] = field(default_factory=dict)  # from the lmms-eval results, when found

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

def app_record(record: dict[str, Any], eval_task: str | None, where: str) -> dict[str, Any]:
    """A copy of a sample record with the fields the app relies on filled in or checked.

    ``eval_task`` is the lmms-eval task the record came from (``egotextvqa_indoor_fullvideo``...);
    the record's own ``task`` is the benchmark, which the video lookup needs.
    """
    out = dict(record)
    for name in ("video_id", "question_id"):
        if out.get(name) in (None, ""):
            raise RecordError(f"{where}: missing field {name}")
    if not isinstance(out.get("verdict"), dict):
        raise RecordError(f"{where}: field verdict must be an object")
    out["video_id"], out["question_id"] = str(out["video_id"]), str(out["question_id"])
    out["question_type"] = str(out.get("question_type") or "unknown")
    task = str(out.get("task") or "")
    if not out.get("split"):
        try:
            out["split"] = split_of_task(task) if task else split_of_video_id(out["video_id"])
        except (ValueError, DataError):
            raise RecordError(f"{where}: no split, and none follows from task {task!r} or video id "
                              f"{out['video_id']!r}") from None
    if task not in BENCHMARKS:
        if out["split"] not in BENCHMARK_OF_SPLIT:
            raise RecordError(f"{where}: unknown split {out['split']!r}")
        out["task"] = BENCHMARK_OF_SPLIT[out["split"]]
    out["eval_task"] = eval_task or out["task"]
    if not out.get("visible"):
        # Without a recorded interval the model saw the whole video (the predecessor's protocol).
        out["visible"] = [0.0, None]
    return out


def _records_of(path: Path, eval_task: str | None, problems: list[str]) -> list[dict[str, Any]]:
    try:
        raw = load_records(path)
    except UnicodeDecodeError:
        problems.append(f"{path}: not a text file (not UTF-8)")
        return []
    except OSError as exc:
        problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
        return []
    except ValueError as exc:  # load_records names the file and line
        problems.append(str(exc))
        return []
    if not raw:
        problems.append(f"{path}: no records in the file")
        return []
    records, bad = [], []
    for i, record in enumerate(raw, 1):
        try:
            records.append(app_record(record, eval_task, f"{path}: record {i}"))
        except RecordError as exc:
            bad.append(str(exc))
    if bad:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        problems.append(f"{path}: {len(bad)} of {len(raw)} records left out: {shown}")
    return records


# --------------------------------------------------------------------------- lmms-eval output

def parse_model_args(value: Any) -> dict[str, str]:
    """lmms-eval's ``model_args`` (``"k=v,k=v"`` or a dict) as a dict of strings."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    pairs = (part.split("=", 1) for part in str(value or "").split(",") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs}


def _results_info(results: Path, problems: list[str]) -> tuple[str | None, dict[str, str]]:
    """(model name, model_args) of an lmms-eval results file, through the reports' collector."""
    if not results.is_file():
        return None, {}
    try:
        runs = collect_runs([results])
        config = json.loads(results.read_text(encoding="utf-8")).get("config", {})
    except (OSError, ValueError) as exc:
        problems.append(f"{results}: model name and frame settings unknown ({exc})")
        return None, {}
    return (runs[0].model if runs else None), parse_model_args(config.get("model_args"))


def _lmms_group(folder: Path, stamp: str, files: list[Path], problems: list[str]) -> LoadedRun | None:
    model, model_args = _results_info(folder / f"{stamp}_results.json", problems)
    records = []
    for file in files:
        records += _records_of(file, SAMPLES_RE.match(file.name)["task"], problems)
    if not records:
        return None
    name = f"{model or folder.name} · {stamp}"
    return LoadedRun(name, records, files, model_args)


def _record_file(path: Path, problems: list[str]) -> list[LoadedRun]:
    """One run per ``model`` named in a record file (a file may hold several models' records)."""
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in _records_of(path, None, problems):
        by_model[str(record.get("model") or "")].append(record)
    return [LoadedRun(f"{Path(model).name} ({path.name})" if model else path.name, records, [path])
            for model, records in by_model.items()]


# --------------------------------------------------------------------------- paths

def _files_of(path: Path, problems: list[str]) -> list[Path]:
    if path.is_dir():
        files = sorted(path.rglob("*.jsonl"))
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
