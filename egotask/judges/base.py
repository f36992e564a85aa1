"""The judge interface: a backend turns (question, reference, prediction) items into verdicts."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from egotask.records import Verdict


class JudgeNotReady(RuntimeError):
    """The judge cannot run (for example no API key); raised before any model inference."""


@dataclass(frozen=True)
class JudgeItem:
    question: str
    answer: str  # the reference
    prediction: str
    question_type: str = ""


class Judge(abc.ABC):
    """A judge backend. Implementations must return one verdict per item and never raise for one
    bad item: an item that cannot be judged gets ``Verdict.failure(...)``."""

    name: str  # backend name, recorded with every verdict
    model: str  # the judging model, or the rule set for rule-based judges
    prompt_version: str

    def check_ready(self) -> None:  # noqa: B027 - optional hook: most judges are always ready
        """Raise :class:`JudgeNotReady` with a helpful message when the judge cannot run."""

    def check_endpoint(self) -> None:  # noqa: B027 - optional hook: offline judges have no endpoint
        """Make one real request to the judge's endpoint (before any model loads); raise
        :class:`JudgeNotReady` naming what to fix when it fails."""

    @abc.abstractmethod
    def judge_many(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        """Judge every item; the result is aligned with ``items``."""

    def judge(self, item: JudgeItem) -> Verdict:
        return self.judge_many([item])[0]

    def describe(self) -> dict[str, str]:
        return {"judge": self.name, "judge_model": self.model, "prompt_version": self.prompt_version}
