"""The evaluation prompt, so finetuning asks exactly what evaluation asks: the protocol's prompt
(``tasklib.doc_to_text``; ``EGOTASK_PROTOCOL``, egotask's own by default)."""

from __future__ import annotations

from typing import Any

from egotask import tasklib


def question_text(doc: dict[str, Any]) -> str:
    """The text evaluation gives the model for this doc."""
    return tasklib.doc_to_text(doc)
