"""Verdicts given without asking the LLM, where asking could only agree: the prediction is the
reference after normalisation (case, articles, punctuation, whitespace), or both abstain ("i can't
find it" against "Unanswerable").

A protocol turns them on with ``judge.shortcuts`` (egotask's own does; the official ones do not, since
their scorers asked the LLM every time). Each such verdict names its rule in the judge field
(``gemini+exact``, ``gemini+abstain``), so a report says how many verdicts no LLM gave. A "contains"
rule is deliberately absent: "the road next to the car wash" is not the answer "car wash".
"""

from __future__ import annotations

from egotask.abstention import is_abstention
from egotask.judges.base import Judge, JudgeItem
from egotask.judges.heuristic import normalise
from egotask.records import Verdict, answer_alternatives

RULES = ("exact", "abstain")


def shortcut_rule(item: JudgeItem) -> tuple[str, str] | None:
    """(rule, reason) when the verdict is certain without an LLM, else None."""
    prediction = normalise(item.prediction)
    references = answer_alternatives(item.answer)
    if prediction and any(prediction == normalise(ref) for ref in references):
        return "exact", "the same answer as the reference after normalisation (no LLM request)"
    if is_abstention(item.prediction) and any(is_abstention(ref) for ref in references):
        return "abstain", "both say the video does not show it (no LLM request)"
    return None


def uses_shortcuts(judge: Judge) -> bool:
    spec = judge.spec  # LLM judges carry their protocol's judge spec
    return bool(spec is not None and spec.shortcuts)


def shortcut_verdict(judge: Judge, item: JudgeItem) -> Verdict | None:
    """The verdict of an item the judge's protocol lets pass without a request, else None."""
    if not uses_shortcuts(judge):
        return None
    found = shortcut_rule(item)
    if found is None:
        return None
    rule, reason = found
    return Verdict(pred="yes", score=5, reason=reason, **{**judge.describe(), "judge": f"{judge.name}+{rule}"})
