"""Checks run before any model is loaded: the judge can run, and the data of every selected
egotask task loads and has its videos. Errors here cost seconds instead of hours of inference.

Each task is checked by calling its own ``process_docs`` from its YAML, the function lmms-eval will
call, so the check covers exactly the docs the task evaluates (a ``_test`` task only its held-out
videos, a ``_fullvideo`` task the whole video).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from egotask.judges import get_judge
from egotask.paths import tasks_path


@cache
def task_index() -> dict[str, list[Path] | Path]:
    """Task name -> its YAML; group or tag name -> the YAMLs of its tasks."""
    tasks: dict[str, Path] = {}
    members: dict[str, list[str]] = {}
    for path in sorted(tasks_path().rglob("*.yaml")):
        # The simple pass only needs names, so leave `!function` tags unresolved.
        config = yaml.load(path.read_text(), Loader=_NameLoader) or {}
        if "group" in config:
            members.setdefault(config["group"], []).extend(config.get("task", []))
        elif "task" in config:
            tasks[config["task"]] = path
            tags = config.get("tag", [])
            for tag in [tags] if isinstance(tags, str) else tags:
                members.setdefault(tag, []).append(config["task"])
    index: dict[str, list[Path] | Path] = dict(tasks)
    for name, listed in members.items():
        index[name] = [tasks[t] for t in listed if t in tasks]
    return index


class _NameLoader(yaml.SafeLoader):
    pass


_NameLoader.add_constructor("!function", lambda loader, node: None)


def process_docs_of(task_names: list[str]) -> list[Callable[[Any], Any]]:
    """The ``process_docs`` of every egotask task named (directly or through a group or tag)."""
    from lmms_eval.utils import load_yaml_config

    index = task_index()
    paths: list[Path] = []
    for name in task_names:
        found = index.get(name)
        paths.extend(found if isinstance(found, list) else [found] if found else [])
    return [load_yaml_config(str(p))["process_docs"] for p in dict.fromkeys(paths)]


def preflight(task_names: list[str]) -> None:
    checks = process_docs_of(task_names)
    if checks:
        get_judge().check_ready()
    for process_docs in checks:
        process_docs(None)
