"""The EgoTextVQA paper's published numbers, as reference rows for ``egotask report --paper``.

They live in one data file, ``paper_results.json`` (with its source named), and are shown in their own
table, marked as published under the paper's protocol and judge. They are never turned into runs: no
confidence interval, best mark, chart or aggregate of egotask's ever includes them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from egotask.reports.collect import Run

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


def paper_context(runs: list[Run]) -> dict[str, Any]:
    """The published rows for the settings the report's runs cover (all of them when the runs are
    EgoTempo only, which the paper does not cover), in the paper's order."""
    data = load_paper()
    settings = {r.setting for r in runs}
    wanted = [name for name, t in PAPER_TABLES.items() if t["setting"] in settings] or list(PAPER_TABLES)
    rows = [{**row, **PAPER_TABLES[row["table"]]} for name in wanted for row in data["rows"] if row["table"] == name]
    return {"source": data["source"], "protocol": data["protocol"], "note": data["note"], "rows": rows}
