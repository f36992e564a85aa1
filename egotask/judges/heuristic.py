"""An offline, rule-based judge: normalised match, containment and ANLS-style similarity.

It needs no network and is labelled ``heuristic`` everywhere, so its numbers are never mistaken for
an LLM judge's. It is meant for smoke tests and the demo, not for published results.

Scene text keeps its value, so the rules are strict where similarity would mislead: the numbers of
a prediction (prices, phone numbers, speeds) must be exactly the reference's, and a short answer
(:data:`SHORT` characters or fewer) matches only as a whole word, never by similarity or as a piece
of a longer reference. A reference that lists acceptable answers (see
:func:`egotask.records.answer_alternatives`) is matched against each; the best verdict wins.

Abstentions are one class (:func:`egotask.abstention.is_abstention`): "Unanswerable" is right for the
reference "i can't find it", and any abstention is wrong for a reference that gives an answer.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from difflib import SequenceMatcher

from egotask.abstention import is_abstention
from egotask.hookspecs import JudgeBackend, hookimpl
from egotask.judges.base import Judge, JudgeItem
from egotask.records import Verdict, answer_alternatives

RULES_VERSION = "heuristic-v3"  # v3: abstentions are one class
SHORT = 3  # characters: "on", "no", "red" match exactly or not at all
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def normalise(text: str) -> str:
    text = _THOUSANDS.sub("", text)
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def numbers(text: str) -> list[str]:
    """The numbers of a text in order, thousands separators dropped: "$1,299.00" -> ["1299.00"]."""
    return _NUMBER.findall(_THOUSANDS.sub("", text))


def similarity(a: str, b: str) -> float:
    """1 - normalised edit distance, approximated with difflib's ratio (ANLS-style, in [0, 1])."""
    return SequenceMatcher(None, a, b).ratio() if a or b else 1.0


def _within(part: str, whole: str) -> bool:
    return f" {part} " in f" {whole} "


def _rules(prediction: str, reference: str) -> tuple[str, int, str]:
    pred, ref = normalise(prediction), normalise(reference)
    if not pred:
        return "no", 0, "empty prediction"
    pred_abstains, ref_abstains = is_abstention(prediction), is_abstention(reference)
    if pred_abstains and ref_abstains:
        return "yes", 5, "both say the video does not show it"
    if ref_abstains:
        return "no", 0, "the reference says the video does not show it; the prediction gives an answer"
    if pred_abstains:
        return "no", 0, "the prediction says the video does not show it; the reference gives an answer"
    if pred == ref:
        return "yes", 5, "exact match after normalisation"
    if numbers(prediction) != numbers(reference):
        return "no", 0, f"numbers differ: {numbers(prediction)} vs the reference's {numbers(reference)}"
    if ref and _within(ref, pred):
        return "yes", 4, "the prediction contains the reference"
    if len(pred) <= SHORT or len(ref) <= SHORT:
        return "no", 0, "a short answer must match exactly"
    if _within(pred, ref) and 2 * len(pred.split()) >= len(ref.split()):
        return "yes", 4, "the reference contains the prediction"
    sim = similarity(pred, ref)
    return ("yes" if sim >= 0.5 else "no"), int(round(5 * sim)), f"similarity {sim:.2f}"


def heuristic_verdict(item: JudgeItem) -> Verdict:
    pred_label, score, reason = max((_rules(item.prediction, ref) for ref in answer_alternatives(item.answer)),
                                    key=lambda r: (r[0] == "yes", r[1]))
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
                         "string similarity; numbers and short answers must match exactly (not an LLM judge)",
                         llm=False)]
