"""The one index of egotask's task YAMLs: which file defines each task, group and tag, and what a
task's configuration says (following ``include:`` as lmms-eval does). Preflight and finetuning read
tasks through it, without importing what the ``!function`` tags name (or lmms-eval, whose YAML
reader imports torch), until :func:`task_function` is asked for one."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from egotask.paths import tasks_path


class _TaskYamlLoader(yaml.SafeLoader):
    """Reads task YAMLs with each ``!function`` left as its dotted name."""


_TaskYamlLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def read_yaml(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_TaskYamlLoader) or {}


@cache
def task_files() -> dict[str, Path]:
    """Task name -> the YAML that defines it."""
    found: dict[str, Path] = {}
    for path in sorted(tasks_path().rglob("*.yaml")):
        task = read_yaml(path).get("task")
        if isinstance(task, str):
            found[task] = path
    return found


@cache
def members() -> dict[str, tuple[str, ...]]:
    """Group or tag name -> the names of its tasks."""
    out: dict[str, list[str]] = {}
    for path in sorted(tasks_path().rglob("*.yaml")):
        config = read_yaml(path)
        if "group" in config:
            out.setdefault(config["group"], []).extend(config.get("task", []))
        elif isinstance(config.get("task"), str):
            tags = config.get("tag", [])
            for tag in [tags] if isinstance(tags, str) else tags:
                out.setdefault(tag, []).append(config["task"])
    return {name: tuple(tasks) for name, tasks in out.items()}


def resolve(names: list[str]) -> list[str]:
    """egotask's task names among ``names`` (a group or tag stands for its tasks); others are left out."""
    tasks, groups = task_files(), members()
    out: list[str] = []
    for name in names:
        out.extend([name] if name in tasks else [t for t in groups.get(name, ()) if t in tasks])
    return list(dict.fromkeys(out))


def task_config(task: str) -> dict[str, Any]:
    """A task's merged configuration: its YAML over the ones it includes (the including file wins)."""
    files = task_files()
    if task not in files:
        raise ValueError(f"no task YAML named {task!r} under {tasks_path()}")
    chain: list[dict[str, Any]] = []
    path: Path | None = files[task]
    while path is not None:
        config = read_yaml(path)
        chain.append(config)
        include = config.get("include")
        path = (path.parent / include).resolve() if include else None
    merged: dict[str, Any] = {}
    for config in reversed(chain):
        merged.update(config)
    return merged


def task_function(task: str, key: str) -> Callable[..., Any]:
    """The function a task's ``key: !function module.name`` names, resolved as lmms-eval resolves it:
    ``module`` is a file next to the YAML that says it (``utils`` -> ``utils.py``), else an importable
    module."""
    path: Path | None = task_files().get(task)
    if path is None:
        raise ValueError(f"no task YAML named {task!r} under {tasks_path()}")
    while path is not None:
        config = read_yaml(path)
        if key in config:
            module_name, _, name = str(config[key]).rpartition(".")
            local = path.parent / f"{module_name.replace('.', '/')}.py"
            if local.is_file():
                spec = importlib.util.spec_from_file_location(f"egotask_task_{path.parent.name}_{module_name}", local)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(module_name)
            return getattr(module, name)
        include = config.get("include")
        path = (path.parent / include).resolve() if include else None
    raise ValueError(f"task {task!r}: no {key!r} in {task_files()[task]} or the files it includes")
