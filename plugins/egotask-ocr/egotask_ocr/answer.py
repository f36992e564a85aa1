"""Choosing an answer from the text lines read in a question's frames."""

from __future__ import annotations

import re
from dataclasses import dataclass

NO_TEXT = "no text visible"

# Words that say what kind of answer is wanted, not what it is about.
STOPWORDS = frozenset("""
a an and are as at be can could did do does for from had has have how i in is it its me my of on or
say says said see seen shown show shows that the there this to was what when where which who whom whose
why with you your am being been by into up out about after before first last one word words text written
""".split())


@dataclass(frozen=True)
class Reading:
    """One text line read by OCR in one frame."""

    text: str
    confidence: float
    time: float  # the frame's timestamp, seconds


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS}


def choose_answer(question: str, readings: list[Reading]) -> str:
    """The text most relevant to ``question``: most shared content words, then seen most recently
    (a real-time question is about what is in view), then seen in most frames, then most confident."""
    candidates: dict[str, dict] = {}
    for r in readings:
        key = " ".join(words(r.text))
        if not key:
            continue
        c = candidates.setdefault(key, {"text": r.text.strip(), "last": r.time, "frames": 0, "conf": 0.0})
        c["last"], c["frames"] = max(c["last"], r.time), c["frames"] + 1
        if r.confidence > c["conf"]:
            c["text"], c["conf"] = r.text.strip(), r.confidence
    if not candidates:
        return NO_TEXT
    asked = content_words(question)

    def rank(c: dict) -> tuple:
        return (len(asked & content_words(c["text"])), c["last"], c["frames"], c["conf"])

    return max(candidates.values(), key=rank)["text"]
