"""The EgoTextVQA paper's published numbers, as reference rows for ``egotask report --paper``.

They live in one data file, ``paper_results.json`` (with its source named), and are shown in their own
table, marked as published under the paper's protocol and judge. They are never turned into runs: no
confidence interval, best mark, chart or aggregate of egotask's ever includes them.

A run of the same task is set beside them only when it was measured the same way
(``measured_under`` in the data file): the official protocol imported from the published release,
the paper's frame counts, the paper's judge model and its failure rule. Any other run is listed under
the table with "protocol differs:" and every difference: never side by side silently.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from egotask.reports.collect import TaskResult
from egotask.scoring import NOT_RECORDED

PAPER_FILE = Path(__file__).resolve().parent / "paper_results.json"
# Each published table, the egotask task that asks the same questions, and its setting.
PAPER_TABLES = {
    "outdoor": {"title": "EgoTextVQA outdoor", "task": "egotextvqa_outdoor", "setting": "outdoor"},
    "outdoor_realtime": {"title": "EgoTextVQA outdoor, real-time subset (623 questions)",
                         "task": "egotextvqa_outdoor_realtime", "setting": "outdoor"},
    "indoor": {"title": "EgoTextVQA indoor", "task": "egotextvqa_indoor", "setting": "indoor"},
}


@cache
def load_paper(path: Path = PAPER_FILE) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    for i, row in enumerate(data["rows"]):
        if row.get("table") not in PAPER_TABLES:
            raise ValueError(f"{path}: rows[{i}]: table {row.get('table')!r} is not one of {', '.join(PAPER_TABLES)}")
    return data


def paper_context(runs: list[TaskResult]) -> dict[str, Any]:
    """The published rows for the settings the report's runs cover (all of them when the runs are
    EgoTempo only, which the paper does not cover), in the paper's order; the runs of a published
    table's task measured the paper's way (``same``), and the others with their differences (``differ``)."""
    data = load_paper()
    settings = {r.setting for r in runs}
    wanted = [name for name, t in PAPER_TABLES.items() if t["setting"] in settings] or list(PAPER_TABLES)
    rows = [{**row, **PAPER_TABLES[row["table"]]} for name in wanted for row in data["rows"] if row["table"] == name]
    same, differ = [], []
    for name in wanted:
        for run in (r for r in runs if r.task == PAPER_TABLES[name]["task"]):
            row = {"label": run.label, "task": run.task, "title": PAPER_TABLES[name]["title"],
                   "accuracy": run.summary.get("accuracy"), "score": run.summary.get("score"),
                   "frames": _frames_shown(run)}
            differences = protocol_differences(run, data["measured_under"])
            (differ if differences else same).append({**row, "differences": differences})
    return {"source": data["source"], "protocol": data["protocol"], "note": data["note"], "rows": rows,
            "same": same, "differ": differ, "measured_under": data["measured_under"]}


def _frames_shown(run: TaskResult) -> str:
    frames = run.summary.get("frames") or {}
    shown = frames.get("n_frames") or {}
    if not shown:
        return "?"
    return str(shown["max"]) if shown["min"] == shown["max"] else f"{shown['min']}-{shown['max']}"


def protocol_differences(run: TaskResult, paper: dict[str, str]) -> list[str]:
    """How a run was measured differently from the paper's rows (empty: the same way)."""
    s = run.summary
    protocol = s.get("protocol") or {}
    out = []
    asked, judged = protocol.get("name") or NOT_RECORDED, protocol.get("judge_protocol") or NOT_RECORDED
    if asked != paper["protocol"]:
        out.append(f"prompt from protocol {asked} (paper: {paper['protocol']})")
    if judged != paper["protocol"]:
        out.append(f"judge prompt from protocol {judged} (paper: {paper['protocol']})")
    if asked == judged == paper["protocol"] and not protocol.get("release_verified"):
        out.append(f"{paper['protocol']} was imported from files that differ from the published release")
    settings = (s.get("frames") or {}).get("settings") or []
    if not settings or any(f.get("preset") not in paper["frames"] for f in settings):
        shown = "not recorded" if not settings else "; ".join(
            ", ".join(f"{k}={v}" for k, v in f.items() if v is not None) for f in settings)
        out.append(f"frames {shown} (paper: frames={' or '.join(paper['frames'])}, the paper's #F per setting)")
    if (s.get("judge_model") or NOT_RECORDED) != paper["judge_model"]:
        out.append(f"judge model {s.get('judge_model') or NOT_RECORDED} (paper: {paper['judge_model']})")
    if paper["failures"] == "wrong" and not run.failed_counted_as_wrong:
        out.append("failed judge calls left out (paper: counted as no/0)")
    return out
