"""Human labels: a person's own verdict on a model's answer, made in the app's labelling view and read by
`egotask judge agreement` to measure judges against people.

A labels file is JSONL, one line per label, appended as the person labels, so a closed browser loses
nothing. It lives next to the run it labels and its name holds the labeller's, so a second person
writes a second file (``<run>_<labeller>.labels.jsonl``). A line holds at least ``task``, ``video_id``,
``question_id``, ``pred`` (``yes``/``no``), ``score`` (0-5) and ``labeller``; the app adds the setting,
the question type, the prediction that was labelled (so a label is never matched to another model's
answer) and the time. When one labeller labels an item again, the later line wins.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from egotask.jsonl import iter_jsonl

LABELS_SUFFIX = ".labels.jsonl"
REQUIRED = ("task", "video_id", "question_id", "pred", "score", "labeller")
PREDS = ("yes", "no")
SCORES = range(6)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class LabelError(ValueError):
    """A label line that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class HumanLabel:
    task: str
    video_id: str
    question_id: str
    pred: str  # "yes" (the answer is right) or "no"
    score: int  # 0-5, as the judges score
    labeller: str
    setting: str | None = None
    question_type: str | None = None
    prediction: str | None = None  # the answer that was labelled; checked against the run's
    labelled_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # other fields, kept as read
    where: str = field(default="", compare=False)  # file:line it was read from

    @property
    def key(self) -> tuple[str, str, str]:
        """(task, video_id, question_id): the item, as a run's record names it."""
        return (self.task, self.video_id, self.question_id)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("extra", "where") and v is not None}
        return {**self.extra, **out}


def safe_name(text: str) -> str:
    """A name that can be part of a file name (the labeller's, a model's)."""
    return _UNSAFE.sub("-", text.strip()).strip("-.") or "unnamed"


def parse_label(data: Any, where: str) -> HumanLabel:
    """One label line's JSON; a LabelError naming ``where`` and the field when it is not a label."""
    if not isinstance(data, dict):
        raise LabelError(f"{where}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in REQUIRED if data.get(k) in (None, "")]
    if missing:
        raise LabelError(f"{where}: missing field(s) {', '.join(missing)}")
    pred = data["pred"]
    if pred not in PREDS:
        raise LabelError(f"{where}: field pred must be \"yes\" or \"no\", got {pred!r}")
    score = data["score"]
    if isinstance(score, bool) or not isinstance(score, int | float) or score != int(score) or int(score) not in SCORES:
        raise LabelError(f"{where}: field score must be an integer from 0 to 5, got {score!r}")
    known = {k: data.get(k) for k in HumanLabel.__dataclass_fields__ if k not in ("extra", "where")}
    for k in ("task", "video_id", "question_id", "labeller"):
        known[k] = str(known[k])
    known.update(pred=pred, score=int(score))
    extra = {k: v for k, v in data.items() if k not in known}
    return HumanLabel(**known, extra=extra, where=where)


def read_labels(path: str | Path) -> list[HumanLabel]:
    """Every label of a labels file, in file order; a LabelError naming the file and line of the first
    line that is not one (nothing is skipped silently)."""
    try:
        return [parse_label(data, where) for where, data in iter_jsonl(path, LabelError)]
    except OSError as exc:
        raise LabelError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def latest(labels: list[HumanLabel]) -> dict[tuple[str, tuple[str, str, str]], HumanLabel]:
    """Each labeller's last label of each item: {(labeller, item key): label}."""
    return {(label.labeller, label.key): label for label in labels}


def append_label(path: Path, label: HumanLabel) -> None:
    """Add one label line, on disk before this returns (the browser may close at any moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(label.to_dict(), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_labels_file(path: Path) -> bool:
    return path.name.endswith(LABELS_SUFFIX)


def labels_path(source: Path, labeller: str, model: str | None = None) -> Path:
    """Where a labeller's labels of a run go: next to the run's first file. An lmms-eval run
    (``<stamp>_samples_<task>.jsonl``) gives ``<stamp>_<labeller>.labels.jsonl``; a records file
    ``x.jsonl`` gives ``x_<model>_<labeller>.labels.jsonl`` (one file may hold several models' runs)."""
    from egotask.runs import records_prefix, split_samples_name  # here: egotask.runs imports this module

    samples = split_samples_name(source.name)
    if samples:
        base = samples[0]
    else:
        base = records_prefix(source.name)
        if model:
            base += f"_{safe_name(Path(model).name)}"
    return source.parent / f"{base}_{safe_name(labeller)}{LABELS_SUFFIX}"
