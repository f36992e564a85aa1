"""The one sample record: what a task writes for each question, and what judging, aggregation,
reports, the app and ``import-legacy`` read.

A record is stored as a JSON object (in lmms-eval's samples JSONL under ``details``, or one per line
in a ``*.records.jsonl``). :meth:`SampleRecord.to_dict` writes the current version; :func:`read_record`
reads every version written so far:

- version 1 (no ``version`` field): ``task`` held the benchmark and ``split`` the setting;
- version 2: ``task`` is the lmms-eval task, ``benchmark`` and ``setting`` are their own fields, and
  ``seen`` / ``frames`` / ``generation_error`` say what the model was actually shown and whether it
  produced an answer at all;
- version 3: ``protocol`` names the protocol the question was asked under (its name, the prompt family
  and the inference prompt's sha256; see :mod:`egotask.protocols`), ``response`` keeps the model's whole
  reply when the protocol's answer extraction took a part of it, and the verdict names the protocol and
  judge-prompt sha256 it was judged under. Older records read with these unset ("not recorded");
- version 4: ``generation`` says what answering cost on the model's side (:class:`Generation`: prompt and
  completion tokens where the backend reports them, the generation latency, the frames' decode time,
  and whether the answer came from the answer cache). Older records read with it unset ("not measured").

``verdict.pred`` is ``"yes"``, ``"no"`` or ``None``; ``None`` means the item could not be judged and
it is counted in ``n_failed``, never as a wrong answer. A ``generation_error`` means the model gave no
answer (undecodable video, failed request); it is counted apart, and never judged.

A verdict can also be *pending* (``verdict.pending``, written only when true): ``lmms_eval
--judge-mode defer`` wrote the answer without asking the judge, whose backend, model and prompt
version the verdict names. A pending verdict is neither judged nor failed; ``egotask judge`` fills it
in, and reports refuse runs that still hold one. (A reader that predates the field sees an unjudged
item, never a "no".)
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from egotask.atomic import write_text
from egotask.jsonl import iter_jsonl

Pred = Literal["yes", "no"]
RECORD_VERSION = 4
SETTINGS = ("indoor", "outdoor", "egotempo")  # which benchmark setting a question belongs to
BENCHMARK_OF_SETTING = {"indoor": "egotextvqa_indoor", "outdoor": "egotextvqa_outdoor",
                        "egotempo": "egotempo_openqa"}
SETTING_OF_BENCHMARK = {b: s for s, b in BENCHMARK_OF_SETTING.items()}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# An annotation may list several acceptable answers; the record keeps them as one reference, joined
# by this separator (no real EgoTextVQA or EgoTempo answer holds a "|"), which judges read back with
# answer_alternatives.
ALTERNATIVES_SEPARATOR = " | "


def join_alternatives(answers: list[str]) -> str:
    return ALTERNATIVES_SEPARATOR.join(answers)


def answer_alternatives(answer: str) -> list[str]:
    """The acceptable answers a reference holds (one, unless the annotation listed several)."""
    parts = [p.strip() for p in answer.split(ALTERNATIVES_SEPARATOR)]
    return [p for p in parts if p] or [answer]


class RecordError(ValueError):
    """A record that cannot be read; the message names the file and line (or record)."""


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
    pending: bool = False  # judging was deferred (``--judge-mode defer``): no verdict yet, no failure either
    protocol: str | None = None  # the protocol whose judge prompt gave it (None: not recorded, or no prompt)
    prompt_sha256: str | None = None  # that judge prompt's hash (egotask.protocols.spec.JudgeSpec.sha256)

    @property
    def failed(self) -> bool:
        return self.pred is None and not self.pending

    @property
    def correct(self) -> int | None:
        """1 for "yes", 0 for "no", None for a verdict that failed."""
        return None if self.pred is None else int(self.pred == "yes")

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None or k in ("pred", "score")}
        if not self.pending:
            del out["pending"]  # only deferred verdicts carry the field
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        known = {k: data.get(k) for k in cls.__dataclass_fields__}
        known["reason"] = known.get("reason") or ""
        known["pending"] = bool(known.get("pending")) and known.get("pred") is None
        for k in ("judge", "judge_model", "prompt_version"):
            known[k] = str(known.get(k) or "?")
        return cls(**known)

    @classmethod
    def failure(cls, *, judge: str, judge_model: str, prompt_version: str, error: str,
                raw: str | None = None, **judge_prompt: str | None) -> Verdict:
        """A verdict that could not be given; ``judge_prompt`` may name ``protocol`` and ``prompt_sha256``."""
        return cls(pred=None, score=None, judge=judge, judge_model=judge_model,
                   prompt_version=prompt_version, error=error, raw=raw, **judge_prompt)

    @classmethod
    def deferred(cls, *, judge: str, judge_model: str, prompt_version: str, **judge_prompt: str | None) -> Verdict:
        """The verdict of an answer whose judging was deferred to ``egotask judge``: it names the
        judge that is to give it."""
        return cls(pred=None, score=None, judge=judge, judge_model=judge_model, prompt_version=prompt_version,
                   pending=True, **judge_prompt)


NOT_JUDGED = {"judge": "none", "judge_model": "none", "prompt_version": "none"}


def _measure(data: dict[str, Any], name: str, where: str, kind: type) -> Any:
    """A non-negative finite number of ``data`` (None stays None: not reported)."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RecordError(f"{where}: field generation.{name} must be a non-negative number or null, got {value!r}")
    if kind is int and value != int(value):
        raise RecordError(f"{where}: field generation.{name} must be a whole number, got {value!r}")
    return kind(value)


@dataclass(frozen=True)
class Generation:
    """What answering one item cost on the model's side (record version 4). None: the backend did not
    report it (or, for timings, the item was not generated in this run)."""

    prompt_tokens: int | None = None  # as the backend counted them (frames' tokens included)
    completion_tokens: int | None = None  # generated tokens, the end-of-turn token included where generated
    latency_s: float | None = None  # from the item's request (or batch) going in to its reply coming back
    decode_s: float | None = None  # decoding (served: and JPEG-encoding) its frames; a shared decode apportioned
    started: float | None = None  # Unix time its request (or batch) went in: spans a run for its throughput
    cached: bool = False  # the answer came from the answer cache: its numbers are from the run that made it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Generation:
        if not isinstance(data, dict):
            raise RecordError(f"{where}: field generation must be an object, got {data!r}")
        cached = data.get("cached", False)
        if not isinstance(cached, bool):
            raise RecordError(f"{where}: field generation.cached must be true or false, got {cached!r}")
        return cls(prompt_tokens=_measure(data, "prompt_tokens", where, int),
                   completion_tokens=_measure(data, "completion_tokens", where, int),
                   latency_s=_measure(data, "latency_s", where, float),
                   decode_s=_measure(data, "decode_s", where, float),
                   started=_measure(data, "started", where, float), cached=cached)

    @property
    def finished(self) -> float | None:
        return None if self.started is None or self.latency_s is None else self.started + self.latency_s


@dataclass(frozen=True)
class SampleRecord:
    """One question, what the model answered and how it was judged."""

    task: str  # the lmms-eval task (egotextvqa_indoor_fullvideo, ...)
    benchmark: str  # egotextvqa_indoor | egotextvqa_outdoor | egotempo_openqa
    setting: str  # indoor | outdoor | egotempo
    video_id: str
    question_id: str  # unique only within a video
    question_type: str
    question: str
    answer: str  # the reference
    prediction: str  # the final answer only; reasoning is kept apart
    verdict: Verdict
    timestamp: float | None = None  # when the question is asked (None: about the whole clip)
    visible: tuple[float, float | None] = (0.0, None)  # what the protocol allows; end None = whole video
    seen: tuple[float, float] | None = None  # what the model was actually shown (first, last frame time)
    frames: dict[str, Any] | None = None  # the frame settings the model sampled with
    reasoning: str | None = None
    model: str | None = None
    generation_error: str | None = None  # the model produced no answer: counted apart, never judged
    source: str | None = None  # where an imported record came from
    missing_videos_skipped: int = 0  # questions of the run left out for a missing video file
    protocol: dict[str, Any] | None = None  # name, prompt_family, inference_sha256 (None: not recorded)
    response: str | None = None  # the whole reply, when the protocol's answer extraction took part of it
    generation: Generation | None = None  # tokens, latency, decode time (None: not measured, before version 4)
    version: int = RECORD_VERSION

    def __post_init__(self) -> None:
        if self.setting not in SETTINGS:
            raise RecordError(f"setting must be one of {', '.join(SETTINGS)}, got {self.setting!r}")
        if not isinstance(self.verdict, Verdict):
            raise RecordError(f"verdict must be a Verdict, got {type(self.verdict).__name__}")

    @property
    def key(self) -> tuple[str, str, str]:
        """(setting, video_id, question_id): question ids are unique only within a video."""
        return (self.setting, self.video_id, self.question_id)

    @property
    def judged(self) -> bool:
        return self.verdict.pred is not None

    @property
    def pending(self) -> bool:
        """An answer waiting for its deferred verdict (never a record without an answer)."""
        return self.generation_error is None and self.verdict.pending

    def with_verdict(self, verdict: Verdict) -> SampleRecord:
        return dataclasses.replace(self, verdict=verdict)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["verdict"] = self.verdict.to_dict()
        out["visible"] = list(self.visible)
        out["seen"] = None if self.seen is None else list(self.seen)
        out["generation"] = None if self.generation is None else self.generation.to_dict()
        return out


def _interval(value: Any, where: str, name: str) -> tuple[float, float | None] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise RecordError(f"{where}: field {name} must be [start, end], got {value!r}")
    try:
        start = float(value[0])
        end = None if value[1] is None else float(value[1])
    except (TypeError, ValueError):
        raise RecordError(f"{where}: field {name} must hold numbers, got {value!r}") from None
    if not math.isfinite(start) or (end is not None and not math.isfinite(end)):
        raise RecordError(f"{where}: field {name} must hold finite numbers, got {value!r}")
    return (start, end)


def _setting_of(data: dict[str, Any], benchmark: str | None) -> str | None:
    """A version-1 record's setting: its ``split``, else its benchmark, else its video id."""
    if data.get("split") in SETTINGS:
        return data["split"]
    if benchmark in SETTING_OF_BENCHMARK:
        return SETTING_OF_BENCHMARK[benchmark]
    vid = str(data.get("video_id") or "")
    if _UUID.match(vid):
        return "indoor"
    if re.fullmatch(r"\d+(\.0+)?", vid):
        return "outdoor"
    return None


def read_record(data: Any, where: str, task: str | None = None) -> SampleRecord:
    """A record of any version. ``task`` is the lmms-eval task the file came from (its samples file
    name), which version-1 records did not store."""
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(data).__name__}")
    version = data.get("version", 1)
    if version not in (1, 2, 3, RECORD_VERSION):
        raise RecordError(f"{where}: record version {version!r} is newer than this egotask reads "
                          f"(up to {RECORD_VERSION}); upgrade egotask")
    for name in ("video_id", "question_id"):
        if data.get(name) in (None, ""):
            raise RecordError(f"{where}: missing field {name}")
    if not isinstance(data.get("verdict"), dict):
        raise RecordError(f"{where}: field verdict must be an object (not an egotask sample record?)")
    if version == 1:
        # v1's "task" was the benchmark and its "split" the setting.
        benchmark = data.get("task") if data.get("task") in SETTING_OF_BENCHMARK else None
        setting = _setting_of(data, benchmark)
        if setting is None:
            raise RecordError(f"{where}: no setting, and none follows from task {data.get('task')!r} or "
                              f"video id {data.get('video_id')!r}")
        benchmark = benchmark or BENCHMARK_OF_SETTING[setting]
        lmms_task = task or benchmark
    else:
        missing = [k for k in ("task", "benchmark", "setting") if not data.get(k)]
        if missing:
            raise RecordError(f"{where}: missing field(s) {', '.join(missing)}")
        lmms_task, benchmark, setting = str(data["task"]), str(data["benchmark"]), str(data["setting"])
    timestamp = data.get("timestamp")
    generation = None if data.get("generation") is None else Generation.from_dict(data["generation"], where)
    try:
        return SampleRecord(
            task=lmms_task, benchmark=benchmark, setting=setting,
            video_id=str(data["video_id"]), question_id=str(data["question_id"]),
            question_type=str(data.get("question_type") or "unknown"),
            question=str(data.get("question") or ""), answer=str(data.get("answer") or ""),
            prediction="" if data.get("prediction") is None else str(data["prediction"]),
            verdict=Verdict.from_dict(data["verdict"]),
            timestamp=None if timestamp is None else float(timestamp),
            # Without a recorded interval the model saw the whole video (the predecessor's protocol).
            visible=_interval(data.get("visible"), where, "visible") or (0.0, None),
            seen=_interval(data.get("seen"), where, "seen"),
            frames=data.get("frames") if isinstance(data.get("frames"), dict) else None,
            reasoning=data.get("reasoning"), model=data.get("model"),
            generation_error=data.get("generation_error"), source=data.get("source"),
            missing_videos_skipped=int(data.get("missing_videos_skipped") or 0),
            protocol=data.get("protocol") if isinstance(data.get("protocol"), dict) else None,
            response=data.get("response"),
            generation=generation,
        )
    except (TypeError, ValueError) as exc:  # RecordError from __post_init__ included
        raise RecordError(f"{where}: {exc}") from None


def iter_rows(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(``file:line``, record data) per line of an lmms-eval samples JSONL (each line's ``details``) or a
    JSONL of bare records. A line that is not JSON, or a file that is not UTF-8, is a RecordError."""
    for where, row in iter_jsonl(path, RecordError):
        yield where, (row.get("details", row) if isinstance(row, dict) else row)


def iter_records(path: str | Path, task: str | None = None) -> Iterator[SampleRecord]:
    """The records of a samples JSONL or a records JSONL (see :func:`iter_rows`); ``task`` is given to
    version-1 records, which did not store it (:mod:`egotask.runs` passes a samples file's task)."""
    for where, data in iter_rows(path):
        yield read_record(data, where, task)


def load_records(path: str | Path, task: str | None = None) -> list[SampleRecord]:
    return list(iter_records(path, task))


def write_records(records: list[SampleRecord], path: Path) -> None:
    """A records JSONL, written whole or not at all."""
    write_text(path, "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records))


__all__ = ["ALTERNATIVES_SEPARATOR", "BENCHMARK_OF_SETTING", "NOT_JUDGED", "RECORD_VERSION",
           "SETTINGS", "Generation", "Pred", "RecordError", "SampleRecord", "Verdict", "answer_alternatives",
           "iter_records", "iter_rows", "join_alternatives", "load_records", "read_record",
           "write_records"]
