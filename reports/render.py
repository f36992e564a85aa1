"""Render runs into markdown (Jinja templates) or console tables (tabulate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from tabulate import tabulate

from egotask.reports.collect import Run

TEMPLATES = Path(__file__).resolve().parent / "templates"
SPLIT_ORDER = {"indoor": 0, "outdoor": 1, "egotempo": 2}


def fmt(value: Any, digits: int = 2, scale: float = 1.0) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def environment(template_dir: Path | None = None) -> Environment:
    dirs = [str(template_dir)] if template_dir else []
    env = Environment(loader=FileSystemLoader([*dirs, str(TEMPLATES)]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    return env


def overall_rows(runs: list[Run]) -> list[dict[str, Any]]:
    ordered = sorted(runs, key=lambda r: (r.model, SPLIT_ORDER.get(r.split, 9), r.task))
    return [{"model": r.model, "task": r.task, "split": r.split, **r.summary} for r in ordered]


def provenance(runs: list[Run]) -> dict[str, str]:
    def distinct(key: str) -> str:
        return ", ".join(sorted({str(r.summary.get(key)) for r in runs if r.summary.get(key)})) or "?"

    return {"judge": distinct("judge"), "judge_model": distinct("judge_model"),
            "prompt_version": distinct("prompt_version")}


def render_markdown(runs: list[Run], template: str = "overall.md.j2", template_dir: Path | None = None) -> str:
    return environment(template_dir).get_template(template).render(rows=overall_rows(runs), **provenance(runs))


def render_console(runs: list[Run]) -> str:
    rows = [[r["model"], r["task"], r["split"], fmt(r["accuracy"], 1, 100), fmt(r["score"]), r["n"],
             r["n_judged"], r["n_failed"]] for r in overall_rows(runs)]
    meta = provenance(runs)
    table = tabulate(rows, headers=["model", "task", "split", "acc %", "score", "n", "judged", "failed"],
                     disable_numparse=True)
    return f"{table}\njudge: {meta['judge']} ({meta['judge_model']}), prompt {meta['prompt_version']}"
