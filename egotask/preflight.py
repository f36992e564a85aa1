"""Checks run before any model is loaded: the judge can run and answers a real request, every folder
the run writes to is writable, and the data of every selected egotask task loads and has its videos.
Errors here cost seconds instead of hours of inference.

Each task is checked by calling its own ``process_docs`` from its YAML, the function lmms-eval will
call, so the check covers exactly the docs the task evaluates (a ``_test`` task only its held-out
videos, a ``_fullvideo`` task the whole video).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from egotask.judges import Judge, get_judge
from egotask.settings import get_settings
from egotask.sqlite_store import check_intact
from egotask.taskindex import resolve, task_function

CACHE_DIR_VAR = "EGOTASK_CACHE_DIR"


class PreflightError(RuntimeError):
    """Something the run needs is not there; the message names the folder, file or variable."""


def process_docs_of(task_names: list[str]) -> list[Callable[[Any], Any]]:
    """The ``process_docs`` of every egotask task named (directly or through a group or tag)."""
    return [task_function(t, "process_docs") for t in resolve(task_names)]


def check_writable(folder: str | Path, what: str) -> None:
    """Create ``folder`` if needed and a file in it (removed at once), or raise PreflightError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".egotask-write-check-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise PreflightError(f"{what} {folder} is not a writable folder ({exc.strerror or exc}); "
                             "nothing has run yet") from None


def check_caches(judge: Judge | None) -> None:
    """The cache folder (answers) and the judge's verdict cache, opened for writing."""
    from egotask.answers import FILENAME as ANSWERS_FILE

    settings = get_settings()
    if settings.answer_cache != "off":
        check_writable(settings.cache_dir, f"the cache folder ({CACHE_DIR_VAR}; or set EGOTASK_ANSWER_CACHE=off)")
    cache = judge.cache if judge is not None else None
    try:
        # A damaged page would otherwise stop the run hours in, at the first read or write that meets it.
        if settings.answer_cache != "off":
            check_intact(settings.cache_dir / ANSWERS_FILE, "the answer cache")
        if cache is not None and cache.mode != "off":
            check_intact(cache.path, "the judge cache")
        if cache is not None:
            cache.check_writable()
    except OSError as exc:
        raise PreflightError(str(exc)) from None


def check_outputs(folders: Iterable[str | Path], what: str = "the output folder") -> None:
    for folder in dict.fromkeys(Path(f) for f in folders):
        check_writable(folder, what)


def preflight(task_names: list[str], output_path: str | Path | None = None) -> None:
    """Everything a run over ``task_names`` needs, checked before the model loads. A failed check
    leaves no folder it made behind (an empty --output_path would look like a run)."""
    made = [p for p in (Path(output_path), *Path(output_path).parents) if not p.exists()] if output_path else []
    try:
        if output_path:
            check_outputs([output_path], "the --output_path folder")
        _preflight(task_names)
    except BaseException:
        for folder in made:  # deepest first; a folder something else wrote into stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _preflight(task_names: list[str]) -> None:
    checks = process_docs_of(task_names)
    if not checks:
        return
    if get_settings().judge_mode == "defer":  # no judge is asked now: `egotask judge` checks its own later
        check_caches(None)
        for process_docs in checks:
            process_docs(None)
        return
    judge = get_judge()
    judge.check_ready()
    check_caches(judge)
    for process_docs in checks:
        process_docs(None)
    judge.check_endpoint()
