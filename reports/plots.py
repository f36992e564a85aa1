"""Per-question-type accuracy bar charts (one PNG per setting), drawn from the report's type tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from egotask.atomic import atomic_open  # noqa: E402

# No software version or date in the PNG, so an unchanged report writes identical files.
PNG_METADATA = {"Software": None}


def plot_name(setting: str) -> str:
    return f"{setting}_accuracy_by_type.png"


def plot_type_table(table: dict[str, Any], path: Path) -> Path:
    """Grouped bars: one group per question type (and overall), one bar per run, with the clustered
    95% CI as error bars where there is one."""
    labels = [row["type"] for row in table["rows"]]
    runs = table["columns"]
    x = np.arange(len(labels))
    width = 0.8 / max(len(runs), 1)
    heights = [[np.nan if row["cells"][i]["accuracy"] is None else row["cells"][i]["accuracy"] * 100
                for row in table["rows"]] for i in range(len(runs))]
    errors = [np.array([_error(row["cells"][i]) for row in table["rows"]]).T for i in range(len(runs))]
    highs = [h + e[1] for h, e in zip(np.array(heights, dtype=float), errors, strict=True)]
    top = np.nanmax([*heights, *highs]) if np.isfinite(heights).any() else 0.0
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 1.2 + 0.25 * len(labels) * len(runs))), 4.5))
    try:
        for i, name in enumerate(runs):
            ax.bar(x - 0.4 + width * (i + 0.5), heights[i], width, label=name, yerr=errors[i],
                   error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.3"})
        ax.set_xticks(x, labels, rotation=25, ha="right")
        ax.set_ylabel("accuracy (%); whiskers: clustered 95% CI")
        ax.set_title(f"{table['title']}: accuracy by question type")
        ax.set_ylim(0, min(100.0, max(5.0, top * 1.15)))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=110, metadata=PNG_METADATA, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _error(cell: dict[str, Any]) -> tuple[float, float]:
    """(below, above) the bar, in percentage points; 0 without an interval."""
    ci, value = cell.get("accuracy_ci"), cell["accuracy"]
    if ci is None or value is None:
        return (0.0, 0.0)
    return (max(0.0, (value - ci[0]) * 100), max(0.0, (ci[1] - value) * 100))


def write_plots(tables: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    """One PNG per setting in ``folder``; returns setting -> path."""
    return {t["setting"]: plot_type_table(t, folder / plot_name(t["setting"])) for t in tables}
