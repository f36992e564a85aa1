"""What the task YAMLs call (``!function utils.x``): docs, prompts, judging and aggregation.

Each benchmark folder's ``utils.py`` only names these functions; lmms-eval re-executes that file per
task, so nothing stateful lives there. The judge client lives in :mod:`egotask.judges`. The prompt, the
answer extraction and the judge prompt are the protocol's (:mod:`egotask.protocols`), never the task
YAML's or the model adapter's.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Callable
from typing import Any

from egotask import answers, protocols, scoring
from egotask.answers import Outcome
from egotask.data.sources import DataError, load_docs, missing_videos, missing_videos_hint, resolve_video
from egotask.frames import VisibleVideo
from egotask.judges import JudgeItem, JudgeNotReady, get_judge, judge_answers
from egotask.records import NOT_JUDGED, SampleRecord, Verdict, read_record
from egotask.settings import get_settings

MISSING_VIDEOS_VAR = "EGOTASK_MISSING_VIDEOS"  # "error" (default) or "skip"


# --------------------------------------------------------------------------- docs

def make_process_docs(benchmark: str, *, full_video: bool = False, split: str | None = None,
                      subset: str | None = None, task: str | None = None) -> Callable[[Any], Any]:
    """A ``process_docs`` that swaps the packaged stub split for the benchmark's real docs.

    ``split`` ("train", "val" or "test") keeps only the videos of that split of the split manifest
    (``EGOTASK_SPLIT_MANIFEST``, else egotask's default; see :mod:`egotask.data.splits`). ``task`` is
    the lmms-eval task's name, recorded with every sample (default: the benchmark plus ``_fullvideo``
    and ``_<split>`` as the task YAMLs name them). ``subset`` keeps only the questions of a named
    subset (:mod:`egotask.data.subsets`), every one of which must be in the annotations.
    """
    task = task or benchmark + ("_fullvideo" if full_video else "") + (f"_{split}" if split else "")

    def process_docs(_stub_split: Any) -> Any:
        import datasets

        from egotask.plan import planning_active

        planning = planning_active()  # --plan: read the docs, check and cut nothing
        if get_settings().judge_mode != "defer" and not planning:  # a deferred run is judged later
            check_judge()  # fail before model inference, not after hours of it
        docs = load_docs(benchmark)
        if split is not None:
            from egotask.data.splits import filter_docs

            docs = filter_docs(docs, benchmark, split)
        if subset is not None:
            from egotask.data.subsets import filter_subset

            docs = filter_subset(docs, subset)
        if full_video:
            for doc in docs:
                doc["visible_end"] = None
        docs, skipped = _check_videos(docs)
        docs, cut_skipped = (docs, 0) if planning else _cut_visible_intervals(docs)
        for doc in docs:
            doc["missing_videos_skipped"] = skipped + cut_skipped
            doc["task"] = task
        return datasets.Dataset.from_list(docs)

    return process_docs


_said_at_exit: set[str] = set()


def check_judge() -> None:
    """The judge can run, or JudgeNotReady. Upstream ``lmms-eval`` (which has no preflight) retries the
    failing dataset load, logs each traceback and exits 0, so the reason is also printed as the very
    last thing the process says."""
    try:
        get_judge().check_ready()
    except JudgeNotReady as exc:
        message = f"\negotask: nothing was evaluated: {exc}\n"
        if message not in _said_at_exit:
            _said_at_exit.add(message)
            atexit.register(lambda: print(message, file=sys.stderr, flush=True))
        raise


def _check_videos(docs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    missing = missing_videos(docs)
    if not missing:
        return docs, 0
    mode = get_settings().missing_videos
    shown = "\n  ".join(str(p) for p in missing[:5])
    more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
    if mode != "skip":
        hint = missing_videos_hint(docs, missing)
        raise DataError(f"{len(missing)} video file(s) missing:\n  {shown}{more}\n"
                        + (f"{hint}\n" if hint else "")
                        + f"Fix the video folder, or set {MISSING_VIDEOS_VAR}=skip to leave those "
                        "questions out (the count is reported in the results).")
    gone = {p.stem for p in missing}
    kept = [d for d in docs if d["video_id"] not in gone]
    return kept, len(docs) - len(kept)


def _cut_visible_intervals(docs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """For models that open the file themselves, each real-time doc gets an exact cut of its visible
    interval (see :mod:`egotask.visible_clips`). A video that cannot be cut stops the run before the model
    loads, or with ``EGOTASK_MISSING_VIDEOS=skip`` leaves its questions out (counted)."""
    from egotask import visible_clips

    for doc in docs:
        doc.update(clip_path=None, clip_seen=None)
    docs, problems = visible_clips.prepare_docs(docs, resolve_video)
    if not problems:
        return docs, 0
    shown = "\n  ".join(problems[:5]) + (f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else "")
    if get_settings().missing_videos != "skip":
        raise DataError(f"{len(problems)} visible interval(s) could not be cut for a model that opens the video "
                        f"file itself:\n  {shown}\nFix the videos, or set {MISSING_VIDEOS_VAR}=skip to leave those "
                        "questions out (the count is reported in the results).")
    kept = [d for d in docs if not d.get("clip_error")]
    for doc in kept:
        doc.pop("clip_error", None)
    return kept, len(docs) - len(kept)


def doc_to_visual(doc: dict[str, Any]) -> list[VisibleVideo]:
    """The video with the interval the question allows. Models that open the path get the cut of that
    interval when one was made; egotask's adapters read ``source`` inside ``[start, end)``."""
    source = str(resolve_video(doc))
    return [VisibleVideo(doc.get("clip_path") or source, doc["visible_start"], doc["visible_end"], source=source)]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    """The question in the protocol's prompt for this model's family. A task config's own
    ``pre_prompt``/``post_prompt`` would change the protocol behind its back, so it is refused."""
    extra = {k: v for k, v in (lmms_eval_specific_kwargs or {}).items() if k in ("pre_prompt", "post_prompt") and v}
    if extra:
        raise ValueError(f"lmms_eval_specific_kwargs {', '.join(sorted(extra))}: egotask's prompt belongs to the "
                         "protocol; write a protocol file instead (see `egotask protocol show egotask`) and pass "
                         "it with --protocol FILE")
    return protocols.active_prompt().render(doc["question"])


def doc_to_target(doc: dict[str, Any]) -> str:
    return doc["answer"]


# --------------------------------------------------------------------------- judging

def build_record(doc: dict[str, Any], prediction: str, verdict: Verdict, outcome: Outcome | None = None,
                 protocol: dict[str, Any] | None = None, response: str | None = None) -> SampleRecord:
    """The record of one question. ``seen`` is what the model was shown: the frames an egotask adapter
    sampled (its outcome), else the span of the cut a model that opens files was given. ``protocol``
    is what :meth:`egotask.protocols.Protocol.record` says of the protocol it was asked under."""
    clip_seen = doc.get("clip_seen")
    seen = outcome.seen if outcome is not None and outcome.seen else (tuple(clip_seen) if clip_seen else None)
    return SampleRecord(
        task=doc.get("task") or doc["benchmark"], benchmark=doc["benchmark"], setting=doc["setting"],
        video_id=doc["video_id"], question_id=doc["question_id"], question_type=doc["question_type"],
        question=doc["question"], answer=doc["answer"], prediction=prediction, verdict=verdict,
        timestamp=doc.get("timestamp"), visible=(doc["visible_start"], doc["visible_end"]), seen=seen,
        frames=outcome.frames if outcome else None, model=outcome.model if outcome else None,
        generation_error=outcome.error if outcome else None,
        generation=outcome.generation if outcome else None,
        missing_videos_skipped=doc.get("missing_videos_skipped", 0), protocol=protocol, response=response,
    )


def prediction_of(response: str) -> str:
    """What the judge is shown of a reply (lmms-eval has stripped its reasoning): the answer the
    protocol's prompt asks for ("Answer: X" -> "X" where it asks for that form)."""
    return protocols.active_prompt().extract(response.strip())


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    response = ((results[0] if results else "") or "").strip()
    protocol, prompt = protocols.active_protocol(), protocols.active_prompt()
    prediction = prediction_of(response)
    outcome = answers.take(doc)
    judge = get_judge()
    if outcome is not None and outcome.error is not None:
        # No answer to judge: a generation failure, counted apart, never a wrong answer.
        verdict = Verdict.failure(error=f"not judged: the model gave no answer ({outcome.error})", **NOT_JUDGED)
    elif get_settings().judge_mode == "defer":  # `egotask judge` gives the verdict later
        verdict = Verdict.deferred(**judge.describe())
    else:
        verdict = judge_answers(judge, [JudgeItem(doc["question"], doc["answer"], prediction,
                                                  doc["question_type"])])[0]
    return scoring.sample_metrics(build_record(doc, prediction, verdict, outcome, protocol.record(prompt),
                                       response if prediction != response else None))


# --------------------------------------------------------------------------- aggregation
# The run's choice of counting failures as wrong is taken here, once, and recorded in the summary.

def aggregate_mean(items: list[int | None]) -> float | None:
    if get_settings().judge_mode == "defer":
        return None  # no verdicts yet: scored once `egotask judge` has judged the run
    return scoring.mean_of_judged(items, protocols.failures_counted_as_wrong())


def aggregate_count(items: list[int]) -> int:
    return int(sum(items))


def aggregate_details(items: list[dict[str, Any]]) -> dict[str, Any]:
    records = [read_record(r, f"sample {i}") for i, r in enumerate(items)]
    summary = scoring.summarize(records, protocols.failures_counted_as_wrong())
    summary["missing_videos_skipped"] = max((r.missing_videos_skipped for r in records), default=0)
    if summary["n_pending"]:
        print(f"egotask: judging deferred: {summary['n_pending']} of {summary['n']} verdicts pending for "
              f"{summary['judge']} ({summary['judge_model']}); judge them with `egotask judge OUTPUT --batch`.")
    if summary["n_failed"]:
        how = "counted as wrong" if summary["failed_counted_as_wrong"] else "left out of accuracy and score"
        print(f"egotask: {summary['n_failed']} of {summary['n']} items could not be judged "
              f"({summary['judge']}); they are {how}. See 'failed' in the results.")
    return summary
