"""The reasoning tags Thinking models wrap their reasoning in, and what every stage needs to know
about them. Small and dependency-free, so adapters, tasks, judging and the app can all import it."""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
NO_FINAL_ANSWER = "no final answer: generation ended inside <think>"


def unfinished_reasoning(text: str) -> bool:
    """True when generation stopped inside a reasoning block, so there is no final answer."""
    return THINK_OPEN in text and THINK_CLOSE not in text.split(THINK_OPEN, 1)[1]


def split_answer(text: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a raw reply; reasoning is None when the reply has no block."""
    if THINK_CLOSE in text:
        head, _, answer = text.rpartition(THINK_CLOSE)
        return head.replace(THINK_OPEN, "", 1).strip(), answer.strip()
    if unfinished_reasoning(text):
        return text.split(THINK_OPEN, 1)[1].strip(), ""
    return None, text.strip()
