"""The reasoning tags Thinking models wrap their reasoning in, and what every stage needs to know
about them. Small and dependency-free, so adapters, tasks, judging and the app can all import it."""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
NO_FINAL_ANSWER = "no final answer: generation ended inside <think>"


def unfinished_reasoning(text: str) -> bool:
    """True when generation stopped inside a reasoning block, so there is no final answer."""
    return THINK_OPEN in text and THINK_CLOSE not in text.split(THINK_OPEN, 1)[1]
