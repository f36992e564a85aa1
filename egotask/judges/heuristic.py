"""An offline, rule-based judge: normalised match, containment and ANLS-style similarity.

It needs no network and is labelled ``heuristic`` everywhere, so its numbers are never mistaken for
an LLM judge's. It is meant for smoke tests and the demo, not for published results.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from difflib import SequenceMatcher

from egotask.hookspecs import JudgeBackend, hookimpl
from egotask.judges.base import Judge, JudgeItem
from egotask.records import Verdict

RULES_VERSION = "heuristic-v1"
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalise(text: str) -> str:
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def similarity(a: str, b: str) -> float:
    """1 - normalised edit distance, approximated with difflib's ratio (ANLS-style, in [0, 1])."""
    return SequenceMatcher(None, a, b).ratio() if a or b else 1.0


def heuristic_verdict(item: JudgeItem) -> Verdict:
    pred, ref = normalise(item.prediction), normalise(item.answer)
    if not pred:
        pred_label, score, reason = "no", 0, "empty prediction"
    elif pred == ref:
        pred_label, score, reason = "yes", 5, "exact match after normalisation"
    elif ref and (f" {ref} " in f" {pred} " or f" {pred} " in f" {ref} "):
        pred_label, score, reason = "yes", 4, "one answer contains the other"
    else:
        sim = similarity(pred, ref)
        pred_label = "yes" if sim >= 0.5 else "no"
        score, reason = int(round(5 * sim)), f"similarity {sim:.2f}"
    return Verdict(pred=pred_label, score=score, judge="heuristic", judge_model=RULES_VERSION,
                   prompt_version=RULES_VERSION, reason=reason)


class HeuristicJudge(Judge):
    name = "heuristic"
    model = RULES_VERSION
    prompt_version = RULES_VERSION

    def judge_many(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        return [heuristic_verdict(item) for item in items]


@hookimpl
def egotask_judges() -> list[JudgeBackend]:
    return [JudgeBackend("heuristic", HeuristicJudge, "offline rules: normalised match, containment, "
                         "string similarity (not an LLM judge)", llm=False)]
