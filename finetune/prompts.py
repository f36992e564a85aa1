"""The evaluation prompt of each task, read from its lmms-eval YAML so finetuning asks exactly what
evaluation asks (``tasklib.doc_to_text`` with the task's default ``pre_prompt``/``post_prompt``)."""

from __future__ import annotations

from functools import cache
from typing import Any

from egotask import tasklib
from egotask.taskindex import task_config


@cache
def prompt_kwargs(task: str) -> dict[str, str]:
    """The task's ``lmms_eval_specific_kwargs["default"]`` (the including YAML's keys win)."""
    kwargs = task_config(task).get("lmms_eval_specific_kwargs")
    return dict(kwargs["default"]) if isinstance(kwargs, dict) and "default" in kwargs else {}


def question_text(doc: dict[str, Any]) -> str:
    """The text evaluation gives the model for this doc (its task is the doc's benchmark)."""
    return tasklib.doc_to_text(doc, prompt_kwargs(doc["benchmark"]))
