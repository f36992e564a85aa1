"""Answers that say the video does not show what was asked: "i can't find it", "not found",
"Unanswerable", "there are no speed limit signs here".

Many EgoTextVQA references are such abstentions (165 of the 623 questions of the paper's real-time
subset), so an answer that abstains is right exactly when its reference abstains too. The heuristic
judge treats every abstention as one class; egotask's LLM judge prompt says the same in words.

The rules read the whole answer, not a word of it: "turn right when you see the metro sign" and "you
cannot turn right" are answers, not abstentions. A yes/no answer ("no, there are no traffic signals")
is an answer as well, so a leading "no," never makes one. Only the first sentence counts: "You could
try Garden & Co. The video does not show what it sells, though." answers the question.
"""

from __future__ import annotations

import re

_NEGATED = r"(?:can ?not|can't|could ?not|couldn't|unable to|do not|don't|did not|didn't|does not|doesn't)"
_LOOK = (r"(?:find|found|see|seen|know|tell|read|determine|answer|identify|locate|make out|derive|specify|"
         r"indicate|mention|show|display|contain|provide|include)")
_NOT_SHOWN = (r"(?:found|visible|shown|seen|displayed|mentioned|specified|legible|readable|indicated|available|"
              r"determinable|clear|clearly visible|directly visible|explicitly visible|sure|possible to \w+|"
              r"able to \w+)")

_RULES = [
    re.compile(rf"\b{_NEGATED} (?:\w+ ){{0,2}}{_LOOK}\b"),  # i can't find it; the video does not show the sign
    re.compile(rf"\b(?:is |are |was |were )?not {_NOT_SHOWN}\b"),  # not found; the hours are not displayed
    re.compile(r"^(?:there is|there are|there was|there were|there's) no\b"),  # there are no speed limit signs here
    re.compile(r"^no (?:visible|specific|such|relevant|readable|legible)\b"),  # no visible signs indicating ...
    re.compile(r"^no(?: \w+){1,3} (?:found|visible|shown|here)$"),  # no motorcycle found
    re.compile(r"\b(?:unanswerable|no idea|no way to (?:know|tell)|impossible to \w+|unknown)\b"),
    re.compile(r"\btoo (?:blurry|far|dark|small|blurred|low) (?:\w+ ){0,2}to (?:see|read|tell|make out)\b"),
]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")  # "www.usps.com" and "$4.25" hold no sentence end


def normalise(text: str) -> str:
    """Lowercase, straight apostrophes, one space between words, no punctuation at the ends."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split()).strip(" .!?,;:\"'")


def is_abstention(text: str | None) -> bool:
    """Whether an answer says the video does not show (or the speaker cannot find) what was asked."""
    if not text:
        return False
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    norm = normalise(first)
    return bool(norm) and any(rule.search(norm) for rule in _RULES)
