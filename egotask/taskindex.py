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


class UnknownTaskError(ValueError):
    """A ``--tasks`` name that no task folder defines; the message suggests the nearest names."""


def _names_in_yaml_text(text: str) -> set[str]:
    """Every bare word standing alone as a value or list item of a YAML file: a superset of the task,
    group and tag names it defines, read without parsing (lmms-eval's 3,000 YAMLs in a fraction of a
    second, where lmms-eval's own index takes half a minute)."""
    names: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lstrip("- ").strip("'\"") in ("task", "group", "tag"):
            value = value.strip().strip("'\"")
            if value and not value.startswith(("[", "!")):
                names.add(value)
            elif value.startswith("["):
                names.update(v.strip().strip("'\"") for v in value.strip("[]").split(","))
        elif line.lstrip().startswith("- "):
            names.add(line.strip()[2:].strip().strip("'\""))
    return {n for n in names if n}


def known_task_names(include_paths: list[str | Path] = ()) -> set[str]:
    """Task, group and tag names of lmms-eval's own task folder, egotask's and ``include_paths``."""
    folders = [tasks_path(), *(Path(p) for p in include_paths)]
    spec = importlib.util.find_spec("lmms_eval")  # finds the package without importing it (or torch)
    if spec and spec.submodule_search_locations:
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "tasks")
    names: set[str] = set()
    for folder in folders:
        # Templates named ``*_yaml`` may hold tags too.
        paths = [*folder.rglob("*.yaml"), *folder.rglob("*_yaml")] if folder.is_dir() else []
        for path in paths:
            names.add(path.stem)
            try:
                names |= _names_in_yaml_text(path.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue  # an unreadable YAML is lmms-eval's to report
    return names


def check_task_names(names: list[str], include_paths: list[str | Path] = ()) -> None:
    """Fail in a fraction of a second on a ``--tasks`` name no task folder holds (lmms-eval itself
    would index every task for half a minute, then end in a traceback), suggesting egotask's nearest."""
    import difflib

    wanted = [n for n in names if n and not n.startswith("list") and not Path(n).is_file()]
    if not wanted:
        return
    known = known_task_names(include_paths)
    unknown = [n for n in wanted if n not in known]
    if not unknown:
        return
    ours = sorted(set(task_files()) | set(members()))
    lines = []
    for name in unknown:
        close = difflib.get_close_matches(name, ours, n=3, cutoff=0.6) or difflib.get_close_matches(
            name, sorted(known), n=3, cutoff=0.75)
        lines.append(f"unknown task {name!r}" + (f"; did you mean {' or '.join(close)}?" if close else "."))
    raise UnknownTaskError("\n".join(lines) + "\negotask's tasks: " + ", ".join(ours)
                           + "\n(`lmms_eval --tasks list` lists every task, lmms-eval's own too, in about 30 s)")
