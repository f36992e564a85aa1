"""Checks run before any model is loaded: the judge can run, and the data of every selected
egotask task loads and has its videos. Errors here cost seconds instead of hours of inference.

Each task is checked by calling its own ``process_docs`` from its YAML, the function lmms-eval will
call, so the check covers exactly the docs the task evaluates (a ``_test`` task only its held-out
videos, a ``_fullvideo`` task the whole video).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from egotask.judges import get_judge
from egotask.taskindex import resolve, task_function


def process_docs_of(task_names: list[str]) -> list[Callable[[Any], Any]]:
    """The ``process_docs`` of every egotask task named (directly or through a group or tag)."""
    return [task_function(t, "process_docs") for t in resolve(task_names)]


def preflight(task_names: list[str]) -> None:
    if not resolve(task_names):
        return
    get_judge().check_ready()  # first: it costs nothing, and needs nothing loaded
    for process_docs in process_docs_of(task_names):
        process_docs(None)
