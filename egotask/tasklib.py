"""What the task YAMLs call (``!function utils.x``): docs, prompts, judging and aggregation.

Each benchmark folder's ``utils.py`` only names these functions; lmms-eval re-executes that file per
task, so nothing stateful lives there. The judge client lives in :mod:`egotask.judges`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from egotask import scoring
from egotask.data.sources import DataError, load_docs, missing_videos, resolve_video
from egotask.judges import JudgeItem, get_judge
from egotask.records import Verdict

MISSING_VIDEOS_VAR = "EGOTASK_MISSING_VIDEOS"  # "error" (default) or "skip"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


class VisibleVideo(str):
    """A video path that also carries the interval the model may see, ``[start, end)``.

    It is a ``str`` so that any lmms-eval model can open the file; egotask's adapters also honour
    ``start``/``end`` (other models see the whole file).
    """

    start: float
    end: float | None

    def __new__(cls, path: str, start: float = 0.0, end: float | None = None) -> VisibleVideo:
        obj = super().__new__(cls, path)
        obj.start, obj.end = float(start), (None if end is None else float(end))
        return obj

    def __reduce__(self):
        return (VisibleVideo, (str(self), self.start, self.end))


# --------------------------------------------------------------------------- docs

def make_process_docs(benchmark: str, *, full_video: bool = False, split: str | None = None) -> Callable[[Any], Any]:
    """A ``process_docs`` that swaps the packaged stub split for the benchmark's real docs.

    ``split`` ("train", "val" or "test") keeps only the videos of that split of the split manifest
    (``EGOTASK_SPLIT_MANIFEST``, else egotask's default; see :mod:`egotask.data.splits`).
    """

    def process_docs(_stub_split: Any) -> Any:
        import datasets

        get_judge().check_ready()  # fail before model inference, not after hours of it
        docs = load_docs(benchmark)
        if split is not None:
            from egotask.data.splits import filter_docs

            docs = filter_docs(docs, benchmark, split)
        if full_video:
            for doc in docs:
                doc["visible_end"] = None
        docs, skipped = _check_videos(docs)
        for doc in docs:
            doc["missing_videos_skipped"] = skipped
        return datasets.Dataset.from_list(docs)

    return process_docs


def _check_videos(docs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    missing = missing_videos(docs)
    if not missing:
        return docs, 0
    mode = os.environ.get(MISSING_VIDEOS_VAR, "error").strip().lower()
    shown = "\n  ".join(str(p) for p in missing[:5])
    more = f"\n  ... and {len(missing) - 5} more" if len(missing) > 5 else ""
    if mode != "skip":
        raise DataError(f"{len(missing)} video file(s) missing:\n  {shown}{more}\n"
                        f"Fix the video folder, or set {MISSING_VIDEOS_VAR}=skip to leave those "
                        "questions out (the count is reported in the results).")
    gone = {p.stem for p in missing}
    kept = [d for d in docs if d["video_id"] not in gone]
    return kept, len(docs) - len(kept)


def doc_to_visual(doc: dict[str, Any]) -> list[VisibleVideo]:
    return [VisibleVideo(str(resolve_video(doc)), doc["visible_start"], doc["visible_end"])]


def doc_to_text(doc: dict[str, Any], lmms_eval_specific_kwargs: dict[str, Any] | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def doc_to_target(doc: dict[str, Any]) -> str:
    return doc["answer"]


# --------------------------------------------------------------------------- judging

def unfinished_reasoning(prediction: str) -> bool:
    """True when generation stopped inside a reasoning block, so there is no final answer."""
    return THINK_OPEN in prediction and THINK_CLOSE not in prediction.split(THINK_OPEN, 1)[1]


def build_record(doc: dict[str, Any], prediction: str, verdict: Verdict) -> dict[str, Any]:
    return {
        "task": doc["benchmark"],
        "split": doc["split"],
        "video_id": doc["video_id"],
        "question_id": doc["question_id"],
        "question_type": doc["question_type"],
        "question": doc["question"],
        "answer": doc["answer"],
        "timestamp": doc.get("timestamp"),
        "visible": [doc["visible_start"], doc["visible_end"]],
        "prediction": prediction,
        "missing_videos_skipped": doc.get("missing_videos_skipped", 0),
        "verdict": verdict.to_dict(),
    }


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    prediction = (results[0] if results else "") or ""
    judge = get_judge()
    if unfinished_reasoning(prediction):
        # The model never answered: that is a wrong answer, not a judge failure.
        verdict = Verdict(pred="no", score=0, reason="no final answer: generation ended inside <think>",
                          **judge.describe())
    else:
        verdict = judge.judge(JudgeItem(doc["question"], doc["answer"], prediction.strip(),
                                        doc["question_type"]))
    record = build_record(doc, prediction.strip(), verdict)
    correct = scoring.verdict_correct(record["verdict"])
    return {
        "accuracy": correct,
        "score": verdict.score,
        "n_judged": int(correct is not None),
        "n_failed": int(correct is None),
        "details": record,
    }


# --------------------------------------------------------------------------- aggregation

def aggregate_mean(items: list[int | None]) -> float | None:
    return scoring.mean_of_judged(items)


def aggregate_count(items: list[int]) -> int:
    return int(sum(items))


def aggregate_details(items: list[dict[str, Any]]) -> dict[str, Any]:
    summary = scoring.summarize(items)
    summary["missing_videos_skipped"] = max((r.get("missing_videos_skipped", 0) for r in items), default=0)
    if summary["n_failed"]:
        print(f"egotask: {summary['n_failed']} of {summary['n']} items could not be judged "
              f"({summary['judge']}); they are left out of accuracy and score. See 'failed' in the results.")
    return summary
