"""Scoring saved predictions again, with another judge or prompt version, without the model.

Input: lmms-eval samples files (``<date>_samples_<task>.jsonl``), folders holding them, or JSONL files
of bare records. Output, beside each input: ``<date>_rejudged-<judge>_samples_<task>.jsonl`` (the
records with the new verdicts) and one ``<date>_rejudged-<judge>_results.json`` per lmms-eval run, in
lmms-eval's results shape, so report tools read it like any run. Each task's entry also carries the
agreement between the saved and the new verdicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from egotask import scoring
from egotask.judges import judge_answers
from egotask.judges.agreement import agreement
from egotask.judges.base import Judge, JudgeItem
from egotask.records import SampleRecord, load_records

REJUDGED_MARK = "_rejudged-"


@dataclass
class SamplesFile:
    path: Path
    task: str
    prefix: str  # what lmms-eval's files of one run share: ``<date>`` (or the file's stem for bare records)
    records: list[SampleRecord]
    new_records: list[SampleRecord] = field(default_factory=list)


def find_samples(paths: Iterable[str | Path]) -> list[Path]:
    """Samples files named, or found under folders named (earlier re-judged outputs excluded)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*_samples_*.jsonl") if REJUDGED_MARK not in p.name)
            if not files:
                raise ValueError(f"{path}: no lmms-eval *_samples_<task>.jsonl found (run lmms_eval with "
                                 "--log_samples to keep the predictions)")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return list(dict.fromkeys(found))


def load_samples_file(path: Path) -> SamplesFile:
    records = load_records(path)
    if not records:
        raise ValueError(f"{path}: no records")
    if "_samples_" in path.name:
        prefix, task = path.stem.split("_samples_", 1)
    else:
        prefix, task = path.stem, records[0].task
    return SamplesFile(path, task, prefix, records)


def rejudge_records(records: list[SampleRecord], judge: Judge) -> list[SampleRecord]:
    """The records with verdicts from ``judge`` (the same path lmms-eval's ``process_results`` takes).
    Records without an answer (a generation failure) keep their verdict: there is nothing to judge."""
    todo = [i for i, r in enumerate(records) if r.generation_error is None]
    verdicts = judge_answers(judge, [JudgeItem(records[i].question, records[i].answer, records[i].prediction.strip(),
                                               records[i].question_type) for i in todo])
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


def write_outputs(group: list[SamplesFile], judge: Judge,
                  count_failed_as_wrong: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write the re-judged samples and one results file for files of one run; returns its path and data."""
    first = group[0]
    tag = output_tag(judge)
    original_results = first.path.with_name(f"{first.prefix}_results.json")
    original = json.loads(original_results.read_text()) if original_results.is_file() else {}
    results: dict[str, Any] = {}
    agreements: dict[str, Any] = {}
    for sf in group:
        out_samples = sf.path.with_name(f"{sf.prefix}_{tag}_samples_{sf.task}.jsonl")
        with open(out_samples, "w", encoding="utf-8") as fh:
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
    }
    out_results = first.path.with_name(f"{first.prefix}_{tag}_results.json")
    out_results.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
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


def group_by_run(files: list[SamplesFile]) -> list[list[SamplesFile]]:
    groups: dict[tuple[Path, str], list[SamplesFile]] = {}
    for sf in files:
        groups.setdefault((sf.path.parent, sf.prefix), []).append(sf)
    return list(groups.values())
