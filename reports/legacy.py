"""Convert the predecessor's prediction and judge-result files into egotask sample records.

Its files are JSON lists named ``<model>_predictions.json`` / ``<model>_results.json`` (EgoTextVQA,
indoor and outdoor mixed) and ``<model>_egotempo_test_predictions.json`` / ``..._results.json``. Each
row has ``video_id, question_id, question, question_type, correct_answer``, the model's answer under a
model-key field (``gemini-2.5-flash`` in every published file), and in results files the judge's
``acc`` ("yes"/"no") and ``score`` (0-5).

What the conversion must get right:

- the split is not stored: EgoTextVQA rows get it from the video id (Ego4D UUID = indoor, number =
  outdoor), EgoTempo rows from the file name;
- a row without a readable verdict is a failure (``pred`` None), never a "no";
- the verdicts are labelled as the predecessor's (judge ``legacy-gemini``, prompt ``legacy-unknown``):
  its prompt and judge model were not recorded, and it wrote failed judge calls as "no"/0, which cannot
  be told apart from real "no" verdicts;
- a predictions file has no verdicts: its rows import as unjudged (failed) records.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egotask.atomic import write_text
from egotask.data.sources import DataError, setting_of_video_id
from egotask.records import BENCHMARK_OF_SETTING, SampleRecord, Verdict, write_records
from egotask.runs import RECORDS_SUFFIX

DEFAULT_MODEL_KEY = "gemini-2.5-flash"
LEGACY_JUDGE = {"judge": "legacy-gemini", "judge_model": "legacy-unknown", "prompt_version": "legacy-unknown"}
UNJUDGED = {"judge": "unjudged", "judge_model": "none", "prompt_version": "none"}
REQUIRED_FIELDS = ("video_id", "question_id", "question_type", "question", "correct_answer")
MANIFEST = "import-legacy.json"
NAME_RE = re.compile(r"(?P<model>.+?)(?P<egotempo>_egotempo_test)?_(?P<kind>predictions|results)\.json")


class LegacyError(ValueError):
    """A predecessor file that cannot be converted; the message names the file, row and field."""


@dataclass(frozen=True)
class LegacyFile:
    path: Path
    model: str
    kind: str  # "results" (with verdicts) or "predictions" (without)
    egotempo: bool

    @property
    def output_name(self) -> str:
        return self.path.name.removesuffix(".json") + RECORDS_SUFFIX


def parse_name(path: str | Path) -> LegacyFile:
    path = Path(path)
    match = NAME_RE.fullmatch(path.name)
    if not match:
        raise LegacyError(f"{path}: not a predecessor file name; expected <model>_results.json, "
                          "<model>_predictions.json, <model>_egotempo_test_results.json or "
                          "<model>_egotempo_test_predictions.json")
    return LegacyFile(path, match["model"], match["kind"], bool(match["egotempo"]))


def _verdict(row: dict[str, Any]) -> Verdict:
    """The predecessor's ``acc``/``score``; anything missing or unreadable is a failure, not a "no"."""
    acc, score = row.get("acc"), row.get("score")
    pred = acc.strip().lower() if isinstance(acc, str) else None
    try:
        number = float(score) if score is not None and not isinstance(score, bool) else None
    except (TypeError, ValueError):
        number = None
    if pred in ("yes", "no") and number is not None and number.is_integer() and 0 <= number <= 5:
        return Verdict(pred=pred, score=int(number), **LEGACY_JUDGE)
    if acc is None and score is None:
        error = "no verdict in the predecessor's results file"
    else:
        error = f"unreadable verdict in the predecessor's results file: acc={acc!r}, score={score!r}"
    return Verdict.failure(error=error, **LEGACY_JUDGE)


def convert_row(row: Any, index: int, source: LegacyFile, model_key: str) -> SampleRecord:
    where = f"{source.path}: row {index}"
    if not isinstance(row, dict):
        raise LegacyError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [f for f in REQUIRED_FIELDS if row.get(f) in (None, "")]
    if missing:
        raise LegacyError(f"{where}: missing field(s) {', '.join(missing)}")
    if model_key not in row:
        other = sorted(set(row) - set(REQUIRED_FIELDS) - {"acc", "score", "dataset", "subset"})
        raise LegacyError(f"{where}: no prediction under the model key {model_key!r} (other fields: "
                          f"{', '.join(other) or 'none'}); pass --model-key to name the field")
    if source.egotempo:
        setting = "egotempo"
    else:
        try:
            setting = setting_of_video_id(row["video_id"])
        except DataError as exc:
            raise LegacyError(f"{where}: {exc}") from None
    prediction = row[model_key]
    verdict = _verdict(row) if source.kind == "results" else \
        Verdict.failure(error="not judged: imported from a predictions file", **UNJUDGED)
    benchmark = BENCHMARK_OF_SETTING[setting]
    return SampleRecord(
        task=benchmark, benchmark=benchmark, setting=setting,
        video_id=str(row["video_id"]), question_id=str(row["question_id"]),
        question_type=str(row["question_type"]), question=str(row["question"]),
        answer=str(row["correct_answer"]),
        prediction="" if prediction is None else str(prediction), verdict=verdict,
        timestamp=None,  # not in the predecessor's files
        visible=(0.0, None),  # the predecessor showed the whole video
        model=source.model, source=f"legacy:{source.path.name}",
    )


def convert_file(source: LegacyFile, model_key: str = DEFAULT_MODEL_KEY) -> list[SampleRecord]:
    try:
        rows = json.loads(source.path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LegacyError(f"{source.path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise LegacyError(f"{source.path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(rows, list) or not rows:
        raise LegacyError(f"{source.path}: expected a non-empty JSON list of rows")
    records = [convert_row(row, i, source, model_key) for i, row in enumerate(rows)]
    keys = [r.key for r in records]
    if len(set(keys)) != len(keys):
        raise LegacyError(f"{source.path}: {len(keys) - len(set(keys))} duplicate (video_id, question_id) rows")
    return records


def choose_files(paths: list[str | Path]) -> tuple[list[LegacyFile], list[tuple[LegacyFile, str]]]:
    """The files to import, and the skipped ones with why: a predictions file whose results file is
    also given adds nothing (the results file holds the same predictions, plus verdicts)."""
    files: list[LegacyFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if NAME_RE.fullmatch(p.name))
            if not found:
                raise LegacyError(f"{path}: no predecessor *_results.json or *_predictions.json files")
            files.extend(parse_name(p) for p in found)
        elif path.is_file():
            files.append(parse_name(path))
        else:
            raise LegacyError(f"{path}: no such file or folder")
    with_results = {(f.model, f.egotempo) for f in files if f.kind == "results"}
    chosen, skipped = [], []
    for f in dict.fromkeys(files):  # drop repeats, keep order
        if f.kind == "predictions" and (f.model, f.egotempo) in with_results:
            skipped.append((f, "its results file is imported, with the same predictions and verdicts"))
        else:
            chosen.append(f)
    return chosen, skipped


def counts(records: list[SampleRecord]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in records:
        c = out.setdefault(r.setting, {"n": 0, "n_failed": 0})
        c["n"] += 1
        c["n_failed"] += not r.judged
    return out


def import_file(source: LegacyFile, output: Path, model_key: str = DEFAULT_MODEL_KEY) -> dict[str, Any]:
    """Convert one file into ``output/<name>.records.jsonl`` and record it in the manifest."""
    records = convert_file(source, model_key)
    output.mkdir(parents=True, exist_ok=True)
    write_records(records, output / source.output_name)
    entry = {"source": str(source.path), "sha256": hashlib.sha256(source.path.read_bytes()).hexdigest(),
             "records": source.output_name, "model": source.model, "kind": source.kind,
             "model_key": model_key, "counts": counts(records)}
    manifest_path = output / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("files", {})[source.path.name] = entry
    manifest["verdicts"] = {**LEGACY_JUDGE, "note": (
        "the predecessor recorded failed judge calls as no/0; those cannot be told apart from real "
        "'no' verdicts, so imported accuracy and score are lower bounds of what its judge would give")}
    write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return entry
