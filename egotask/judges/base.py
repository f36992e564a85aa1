"""The judge interface: a backend turns (question, reference, prediction) items into verdicts."""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from egotask.records import Verdict

if TYPE_CHECKING:
    from egotask.judges.cache import VerdictCache
    from egotask.protocols.spec import JudgeSpec
    from egotask.settings import Settings

OFFLINE_JUDGE = "heuristic"


class JudgeNotReady(RuntimeError):
    """The judge cannot run (for example no API key); raised before any model inference.

    With ``offline_hint``, the message also says how to judge offline. ``str()`` names the variable,
    which every command reads, upstream ``lmms-eval`` too (it has no ``--judge``); commands that have
    a ``--judge`` flag print :meth:`explain` with it.
    """

    def __init__(self, problem: str, offline_hint: bool = False) -> None:
        self.problem, self.offline_hint = problem, offline_hint
        super().__init__(self.explain())

    def explain(self, flag: str | None = None) -> str:
        if not self.offline_hint:
            return self.problem
        how = (f"pass {flag} {OFFLINE_JUDGE} (or set EGOTASK_JUDGE={OFFLINE_JUDGE})" if flag else
               f"set EGOTASK_JUDGE={OFFLINE_JUDGE} (for example: EGOTASK_JUDGE={OFFLINE_JUDGE} lmms-eval ...)")
        return f"{self.problem} To judge offline instead, {how}; its numbers are rule-based, not an LLM judge's."


@dataclass(frozen=True)
class JudgeItem:
    question: str
    answer: str  # the reference
    prediction: str
    question_type: str = ""


class Judge(abc.ABC):
    """A judge backend: what every caller (lmms-eval's tasks, ``egotask judge``, the batch path, the
    preflight) may use. Implementations must return one verdict per item and never raise for one bad
    item: an item that cannot be judged gets ``Verdict.failure(...)``.

    A backend's factory (:class:`egotask.hookspecs.JudgeBackend`) is called with egotask's settings;
    rule-based judges ignore them."""

    name: str  # backend name, recorded with every verdict
    model: str  # the judging model, or the rule set for rule-based judges
    prompt_version: str
    spec: JudgeSpec | None = None  # the protocol's judge part (prompt, shortcuts); LLM judges carry one
    cache: VerdictCache | None = None  # where verdicts are kept between runs; rule-based judges have none
    # What judging cost so far: requests, retries, cache_hits, judged, failed, tokens_in, tokens_out.
    # Rule-based judges cost nothing and leave it empty.
    stats: Mapping[str, int] = MappingProxyType({})

    def __init__(self, settings: Settings | None = None) -> None:  # noqa: B027 - rule-based judges need nothing
        """Build the judge from egotask's settings (``None``: the process's)."""

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

    def cached(self, item: JudgeItem) -> bool:
        """Whether the item's verdict would come from a cache, with no request (never, without one)."""
        return False

    def item_key(self, item: JudgeItem) -> str:
        """A key naming the item's verdict under this judge: the cache's key, and an item's key in a batch."""
        fields = [self.name, self.model, self.prompt_version, item.question, item.answer, item.prediction]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()

    def describe(self) -> dict[str, str]:
        return {"judge": self.name, "judge_model": self.model, "prompt_version": self.prompt_version}
