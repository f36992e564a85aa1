"""The one sample record that judging, aggregation and reports all share.

A record is a plain dict (it must survive lmms-eval's samples JSONL unchanged):

    {task, split, video_id, question_id, question_type, question, answer, timestamp,
     visible: [start, end|None], prediction, reasoning, model, verdict: {...}}

``verdict["pred"]`` is ``"yes"``, ``"no"`` or ``None``; ``None`` means the item could not be
judged and it is counted in ``n_failed``, never as a wrong answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Pred = Literal["yes", "no"]


@dataclass(frozen=True)
class Verdict:
    """One judge decision. ``pred is None`` marks a failure, with ``error`` saying why."""

    pred: Pred | None
    score: int | None
    judge: str
    judge_model: str
    prompt_version: str
    reason: str = ""
    error: str | None = None
    raw: str | None = None

    @property
    def failed(self) -> bool:
        return self.pred is None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("pred", "score")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        known = {k: data.get(k) for k in cls.__dataclass_fields__}
        known["reason"] = known.get("reason") or ""
        return cls(**known)

    @classmethod
    def failure(cls, *, judge: str, judge_model: str, prompt_version: str, error: str,
                raw: str | None = None) -> Verdict:
        return cls(pred=None, score=None, judge=judge, judge_model=judge_model,
                   prompt_version=prompt_version, error=error, raw=raw)


SPLITS = ("indoor", "outdoor", "egotempo")


def record_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """(split, video_id, question_id): question ids are unique only within a video."""
    return (record["split"], str(record["video_id"]), str(record["question_id"]))
