"""Read lmms-eval output folders into runs: one per (model run, task), with its summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egotask.data.sources import BENCHMARKS


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Sample records from an lmms-eval samples JSONL (the ``details`` of each sample) or from a JSONL
    of bare records (what ``egotask import-legacy`` writes)."""
    path = Path(path)
    records = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            record = row.get("details", row) if isinstance(row, dict) else None
            if not isinstance(record, dict) or "verdict" not in record:
                raise ValueError(f"{path}:{lineno}: not an egotask sample record (no 'verdict')")
            records.append(record)
    return records


@dataclass
class Run:
    model: str  # display name: the checkpoint or the model adapter
    task: str
    split: str  # indoor | outdoor | egotempo
    summary: dict[str, Any]  # egotask.scoring.summarize() output, as stored in results["details"]
    source: Path
    limit: float | None = None


def split_of_task(task: str) -> str:
    for name, bench in BENCHMARKS.items():
        if task == name or task.startswith(name + "_"):
            return bench.split
    raise ValueError(f"task {task!r} is not an egotask task")


def read_results_file(path: Path) -> list[Run]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable lmms-eval results file ({exc})") from exc
    return runs_from_results(data, path)


def runs_from_results(data: dict[str, Any], path: Path) -> list[Run]:
    """The egotask runs in one lmms-eval results dict (other tasks are ignored)."""
    model = data.get("model_name") or data.get("config", {}).get("model", "?")
    limit = data.get("config", {}).get("limit")
    runs = []
    for task, metrics in data.get("results", {}).items():
        summary = metrics.get("details,none")
        if isinstance(summary, dict) and "by_type" in summary:
            runs.append(Run(Path(str(model)).name or str(model), task, split_of_task(task), summary, path, limit))
    return runs


def collect_runs(paths: list[str | Path]) -> list[Run]:
    """Runs from lmms-eval results files, or folders searched for ``*_results.json``."""
    runs: list[Run] = []
    for raw in paths:
        path = Path(raw)
        files = sorted(path.rglob("*_results.json")) if path.is_dir() else [path]
        if not files:
            raise ValueError(f"{path}: no lmms-eval *_results.json found")
        for file in files:
            runs.extend(read_results_file(file))
    return runs
