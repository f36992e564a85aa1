"""Checks run before any model is loaded: the judge can run, and the data of every selected
egotask task loads and has its videos. Errors here cost seconds instead of hours of inference."""

from __future__ import annotations

from egotask.data.sources import BENCHMARKS
from egotask.judges import get_judge

GROUPS = {"egotextvqa": ("egotextvqa_indoor", "egotextvqa_outdoor"),
          "egotextvqa_realtime": ("egotextvqa_indoor", "egotextvqa_outdoor")}


def benchmarks_of(task_names: list[str]) -> list[tuple[str, bool]]:
    """(benchmark, full_video) for each egotask task named; other tasks are not ours to check."""
    found: list[tuple[str, bool]] = []
    for name in task_names:
        for bench in GROUPS.get(name, (name,)):
            base = next((b for b in BENCHMARKS if bench == b or bench.startswith(b + "_")), None)
            if base is not None:
                found.append((base, bench.endswith("_fullvideo")))
    return list(dict.fromkeys(found))


def preflight(task_names: list[str]) -> None:
    from egotask.tasklib import make_process_docs

    checks = benchmarks_of(task_names)
    if checks:
        get_judge().check_ready()
    for bench, full_video in checks:
        make_process_docs(bench, full_video=full_video)(None)  # the same path lmms-eval takes
