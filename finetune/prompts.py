"""The evaluation prompt of each task, read from its lmms-eval YAML so finetuning asks exactly what
evaluation asks (``tasklib.doc_to_text`` with the task's default ``pre_prompt``/``post_prompt``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from egotask import tasklib
from egotask.paths import tasks_path


class _TaskYamlLoader(yaml.SafeLoader):
    """Reads lmms-eval task YAMLs without importing what their ``!function`` tags name."""


_TaskYamlLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def _read(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_TaskYamlLoader) or {}


@cache
def _task_files() -> dict[str, Path]:
    found = {}
    for path in sorted(tasks_path().rglob("*.yaml")):
        task = _read(path).get("task")
        if isinstance(task, str):
            found[task] = path
    return found


@cache
def prompt_kwargs(task: str) -> dict[str, str]:
    """The task's ``lmms_eval_specific_kwargs["default"]``, following ``include:`` like lmms-eval does
    (the including file's keys win)."""
    files = _task_files()
    if task not in files:
        raise ValueError(f"no task YAML named {task!r} under {tasks_path()}")
    path: Path | None = files[task]
    while path is not None:
        config = _read(path)
        kwargs = config.get("lmms_eval_specific_kwargs")
        if isinstance(kwargs, dict) and "default" in kwargs:
            return dict(kwargs["default"])
        include = config.get("include")
        path = (path.parent / include).resolve() if include else None
    return {}


def question_text(doc: dict[str, Any]) -> str:
    """The text evaluation gives the model for this doc (its task is the doc's benchmark)."""
    return tasklib.doc_to_text(doc, prompt_kwargs(doc["benchmark"]))
