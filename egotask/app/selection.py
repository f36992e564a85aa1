"""What the app shows, as plain functions over :class:`~egotask.records.SampleRecord` objects:
filters, per-video timelines, caption tracks, run comparisons and summary tables (from
:func:`egotask.scoring.summarize`, given the run's own choice of counting failures as wrong)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from egotask.records import SampleRecord
from egotask.scoring import summarize

VERDICTS = ("correct", "wrong", "failed to judge", "no answer", "pending")
MIN_CUE_S = 4.0  # a question stays on screen at least this long, even when the next one follows fast


def verdict_label(record: SampleRecord) -> str:
    """"correct" (pred yes), "wrong" (pred no), "failed to judge" (pred None), "no answer" (the model
    produced none) or "pending" (judging deferred, not done yet); failures are never counted as wrong
    unless the run chose so, and pending verdicts are not scored at all."""
    if record.generation_error is not None:
        return "no answer"
    if record.pending:
        return "pending"
    pred = record.verdict.pred
    return "correct" if pred == "yes" else "wrong" if pred == "no" else "failed to judge"


def task_of(record: SampleRecord) -> str:
    """The lmms-eval task a record came from."""
    return record.task


def searchable_text(record: SampleRecord) -> str:
    return " ".join((record.question, record.answer, record.prediction)).casefold()


def filter_records(records: Iterable[SampleRecord], *, tasks: Collection[str] | None = None,
                   types: Collection[str] | None = None, verdicts: Collection[str] | None = None,
                   score_range: tuple[float, float] | None = None, text: str = "") -> list[SampleRecord]:
    """Records matching every given filter; ``None`` leaves a field unfiltered.

    ``tasks`` matches the lmms-eval task or the setting; ``score_range`` applies to judged records
    only (a failed verdict has no score; the verdict filter selects those); ``text`` keeps records
    whose question, reference answer or prediction contain every word of it.
    """
    words = text.casefold().split()
    out = []
    for r in records:
        if tasks is not None and r.task not in tasks and r.setting not in tasks:
            continue
        if types is not None and r.question_type not in types:
            continue
        if verdicts is not None and verdict_label(r) not in verdicts:
            continue
        score = r.verdict.score
        if score_range is not None and score is not None and not score_range[0] <= score <= score_range[1]:
            continue
        if words and not all(w in searchable_text(r) for w in words):
            continue
        out.append(r)
    return out


def distinct(records: Iterable[SampleRecord], name: str) -> list[str]:
    """The distinct values of a record field (``question_type``, ``task``...)."""
    return sorted({str(getattr(r, name)) for r in records if getattr(r, name) is not None})


# --------------------------------------------------------------------------- videos

def _time_key(record: SampleRecord) -> tuple[float, str]:
    ts = record.timestamp
    return (float("inf") if ts is None else ts, record.question_id)


@dataclass
class VideoGroup:
    benchmark: str  # says where the video lives
    setting: str
    video_id: str
    records: list[SampleRecord] = field(default_factory=list)  # by timestamp

    @property
    def key(self) -> str:
        """``video_id [setting]``: unique, since each setting belongs to one benchmark."""
        return f"{self.video_id} [{self.setting}]"

    @property
    def counts(self) -> str:
        counts = {v: sum(verdict_label(r) == v for r in self.records) for v in VERDICTS}
        extra = f", {counts['failed to judge']} not judged" if counts["failed to judge"] else ""
        extra += f", {counts['no answer']} without an answer" if counts["no answer"] else ""
        return (f"{len(self.records)} question(s) in the selection: {counts['correct']} correct, "
                f"{counts['wrong']} wrong{extra}")


def videos_of(records: Iterable[SampleRecord]) -> list[VideoGroup]:
    """The videos of some records, each with its questions in timestamp order."""
    groups: dict[tuple[str, str, str], VideoGroup] = {}
    for r in records:
        key = (r.benchmark, r.setting, r.video_id)
        groups.setdefault(key, VideoGroup(*key)).records.append(r)
    for group in groups.values():
        group.records.sort(key=_time_key)
    return [groups[k] for k in sorted(groups)]


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "whole clip"
    minutes, secs = divmod(float(seconds), 60)
    return f"{int(minutes)}:{secs:05.2f}"


def short_qid(record: SampleRecord) -> str:
    """The question id without a repeated video id (EgoTempo's ids are ``<clip_id>_<n>``)."""
    qid, prefix = record.question_id, f"{record.video_id}_"
    return qid[len(prefix):] if qid.startswith(prefix) and len(qid) > len(prefix) else qid


def question_label(record: SampleRecord) -> str:
    return f"{format_time(record.timestamp)} · Q{short_qid(record)} · {record.question}"


def reason_of(record: SampleRecord) -> str:
    """Why the verdict is what it is: the model's failure, else the judge's reason or error."""
    return record.generation_error or record.verdict.reason or record.verdict.error or ""


GENERATION_NOT_MEASURED = "not measured"


def generation_text(record: SampleRecord) -> str:
    """What answering one item cost on the model's side (record version 4): ``812 prompt + 9 completion
    tokens; latency 0.215 s; frames decoded in 0.052 s``; "not measured" for older records."""
    g = record.generation
    if g is None:
        return GENERATION_NOT_MEASURED
    if g.prompt_tokens is None and g.completion_tokens is None:
        tokens = "tokens not reported"
    else:
        tokens = " + ".join(f"{n} {name}" for n, name in ((g.prompt_tokens, "prompt"),
                                                          (g.completion_tokens, "completion")) if n is not None)
        tokens += " tokens"
    latency = "latency not measured" if g.latency_s is None else f"latency {g.latency_s:.3f} s"
    decode = "decode time not measured" if g.decode_s is None else f"frames decoded in {g.decode_s:.3f} s"
    text = f"{tokens}; {latency}; {decode}"
    return text + ("; from the answer cache: timed by the run that made it" if g.cached else "")


def question_rows(records: Iterable[SampleRecord], *, with_video: bool = True) -> list[dict[str, Any]]:
    """One table row per question: where and when, what was asked, both answers and the verdict."""
    rows = []
    for r in records:
        row = {"task": r.task, "video": r.video_id} if with_video else {}
        row.update({
            "time": format_time(r.timestamp),
            "question_id": r.question_id,
            "type": r.question_type,
            "question": r.question,
            "reference": r.answer,
            "prediction": r.prediction,
            "verdict": verdict_label(r),
            "score": r.verdict.score,
            "judge's reason": reason_of(r),
            "model side": generation_text(r),
        })
        rows.append(row)
    return rows


def _vtt_time(seconds: float) -> str:
    hours, rest = divmod(max(seconds, 0.0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:06.3f}"


def _vtt_text(text: str) -> str:
    # WebVTT cue text: "&" and "<" start entities and tags, and a blank line ends the cue.
    return " ".join(str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").split())


def webvtt(records: list[SampleRecord], duration: float | None = None) -> str:
    """A WebVTT caption track that shows each question from its timestamp until the next question
    (at least ``MIN_CUE_S``), with the reference, the prediction and the verdict. Questions about
    the whole clip (no timestamp) are shown throughout."""
    ordered = sorted(records, key=_time_key)
    times = [r.timestamp for r in ordered]
    later = sorted({float(t) for t in times if t is not None})
    end_of_video = duration if duration else (later[-1] + MIN_CUE_S if later else 24 * 3600.0)
    cues = ["WEBVTT", ""]
    for r in ordered:
        ts = r.timestamp
        if ts is None:
            start, end = 0.0, end_of_video
        else:
            start = float(ts)
            following = [t for t in later if t > start]
            end = max(following[0] if following else end_of_video, start + MIN_CUE_S)
        mark = {"correct": "✓", "wrong": "✗", "failed to judge": "?", "no answer": "–",
                "pending": "…"}[verdict_label(r)]
        score = r.verdict.score
        cues += [
            f"{_vtt_time(start)} --> {_vtt_time(end)}",
            f"Q{_vtt_text(short_qid(r))}: {_vtt_text(r.question)}",
            f"{mark} {_vtt_text(r.prediction or '(empty)')} · ref: {_vtt_text(r.answer)}"
            + (f" · {score}/5" if score is not None else ""),
            "",
        ]
    return "\n".join(cues)


# --------------------------------------------------------------------------- summaries

def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _score(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _counts(stats: dict[str, Any], with_no_answer: bool, with_pending: bool = False) -> dict[str, Any]:
    out = {"n": stats["n"], "judged": stats["n_judged"], "failed": stats["n_failed"]}
    if with_no_answer:
        out["no answer"] = stats.get("n_generation_failed", 0)
    if with_pending:
        out["pending"] = stats.get("n_pending", 0)
    out.update({"accuracy %": _pct(stats["accuracy"]), "score (0-5)": _score(stats["score"])})
    return out


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Overall and per-type rows of a :func:`egotask.scoring.summarize` result (with a "no answer"
    column when the model failed to answer some)."""
    no_answer, pending = bool(summary.get("n_generation_failed")), bool(summary.get("n_pending"))
    return [{"question type": name, **_counts(stats, no_answer, pending)}
            for name, stats in [("all", summary), *summary["by_type"].items()]]


def task_rows(records: list[SampleRecord], count_failed_as_wrong: bool) -> list[dict[str, Any]]:
    """One summary row per lmms-eval task in the records (failures treated as the run chose)."""
    by_task = {task: summarize([r for r in records if r.task == task], count_failed_as_wrong)
               for task in sorted({r.task for r in records})}
    no_answer = any(s["n_generation_failed"] for s in by_task.values())
    return [{"task": task, **_counts(stats, no_answer)} for task, stats in by_task.items()]


# --------------------------------------------------------------------------- comparing runs

@dataclass
class Comparison:
    rows: list[dict[str, Any]]  # one per question in both runs, A's order
    common_a: list[SampleRecord]
    common_b: list[SampleRecord]
    missing_in_b: list[SampleRecord]  # A's questions that B does not have
    duplicates: list[str]  # notes on keys a run holds twice (only the first is compared)

    @property
    def disagreements(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["disagree"]]


def _by_key(records: list[SampleRecord], run: str, notes: list[str]) -> dict[tuple[str, str, str], SampleRecord]:
    out: dict[tuple[str, str, str], SampleRecord] = {}
    twice = 0
    for r in records:
        key = r.key
        if key in out:
            twice += 1
        else:
            out[key] = r
    if twice:
        notes.append(f"run {run} has {twice} question(s) twice (e.g. two tasks over the same setting); "
                     "pick one task in the filter to compare them all")
    return out


def compare_runs(a: list[SampleRecord], b: list[SampleRecord]) -> Comparison:
    """The questions of ``a`` that ``b`` also has (key: setting, video id, question id), with both
    predictions and verdicts; ``disagree`` marks the questions whose verdicts differ."""
    notes: list[str] = []
    a_keys, b_keys = _by_key(a, "A", notes), _by_key(b, "B", notes)
    rows, common_a, common_b, missing = [], [], [], []
    for key, ra in a_keys.items():
        rb = b_keys.get(key)
        if rb is None:
            missing.append(ra)
            continue
        common_a.append(ra)
        common_b.append(rb)
        va, vb = verdict_label(ra), verdict_label(rb)
        rows.append({
            "setting": key[0], "video": key[1], "question_id": key[2], "time": format_time(ra.timestamp),
            "type": ra.question_type, "question": ra.question, "reference": ra.answer,
            "prediction A": ra.prediction, "verdict A": va, "score A": ra.verdict.score,
            "prediction B": rb.prediction, "verdict B": vb, "score B": rb.verdict.score,
            "disagree": va != vb,
        })
    return Comparison(rows, common_a, common_b, missing, notes)


def side_by_side(a: list[SampleRecord], b: list[SampleRecord], count_failed_as_wrong_a: bool = False,
                 count_failed_as_wrong_b: bool = False) -> list[dict[str, Any]]:
    """Accuracy and score of two runs on the same questions, overall and per type, each run's failures
    treated as that run chose."""
    sa, sb = summarize(a, count_failed_as_wrong_a), summarize(b, count_failed_as_wrong_b)
    rows = []
    for name in ["all", *sorted(set(sa["by_type"]) | set(sb["by_type"]))]:
        xa = sa if name == "all" else sa["by_type"].get(name, {})
        xb = sb if name == "all" else sb["by_type"].get(name, {})
        rows.append({"question type": name, "n": xa.get("n", 0),
                     "accuracy % A": _pct(xa.get("accuracy")), "accuracy % B": _pct(xb.get("accuracy")),
                     "score A": _score(xa.get("score")), "score B": _score(xb.get("score")),
                     "failed A": xa.get("n_failed", 0), "failed B": xb.get("n_failed", 0)})
    return rows


def paired_rows(comparison: Any) -> list[dict[str, Any]]:
    """The per-type rows of a :func:`egotask.reports.paired.compare_records` result (overall first), as
    the report's paired tables give them."""
    from egotask.reports.render import pvalue, signed, signed_ci

    rows = []
    for name, st in [("all", comparison.overall), *comparison.by_type.items()]:
        rows.append({"question type": name, "pairs": st.n, "videos": st.n_clusters,
                     "Δ accuracy (pp)": signed(st.accuracy_diff, 1, 100) + ("†" if st.accuracy_significant else ""),
                     "95% CI (accuracy)": signed_ci(st.accuracy_diff_ci, 1, 100),
                     "Δ score": signed(st.score_diff) + ("†" if st.score_significant else ""),
                     "95% CI (score)": signed_ci(st.score_diff_ci), "McNemar p": pvalue(st.mcnemar_p),
                     "only A right": st.a_only, "only B right": st.b_only})
    return rows
