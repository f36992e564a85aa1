"""What `egotask judge` prints: one row per (run, task) with the new accuracy and score and their
agreement with the saved verdicts, and one line on how the verdicts were got (mode, requests, tokens,
estimated cost); and `egotask judge agreement`'s table of judges against people."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from egotask.judges.agreement import agreement
from egotask.runs import Run, TaskSamples

HEADERS = ["run", "task", "n", "judged", "failed", "acc %", "score", "saved judge", "compared", "agree %",
           "kappa", "w-kappa (score)", "spearman (score)"]
STATISTICS = ("cohen_kappa", "score_weighted_kappa", "score_spearman")


@dataclass
class Written:
    """One run's files as `egotask judge` wrote them."""

    run: Run  # the run judged (:mod:`egotask.runs`)
    out: Path  # its results file
    data: dict[str, Any]  # what that file holds

    def summary(self, part: TaskSamples) -> dict[str, Any]:
        return self.data["results"][part.task]["details,none"]


def judging_table(written: list[Written], records: list[Any]) -> str:
    rows = [_row(w, part) for w in written for part in w.run.read()]
    parts = [part for w in written for part in w.run.read()]
    if len(parts) > 1:  # the same statistics over every task's items together
        overall = agreement([r.verdict.to_dict() for p in parts for r in p.records],
                            [r.verdict.to_dict() for p in parts for r in p.new_records])
        n_judged = sum(r.judged and r.generation_error is None for p in parts for r in p.new_records)
        failed = sum(w.summary(p)["n_failed"] for w in written for p in w.run.read())
        rows.append(["all inputs", "", len(records), n_judged, failed, "-", "-", "", overall["n_compared"],
                     _pct(overall["verdict_agreement"]), *(_num(overall[k]) for k in STATISTICS)])
    return tabulate(rows, headers=HEADERS, disable_numparse=True)


def _row(w: Written, sf: TaskSamples) -> list[Any]:
    summary = w.summary(sf)
    # A deferred run judged in place has no saved verdicts to compare with.
    agree = w.data.get("egotask_rejudge", {}).get("agreement", {}).get(sf.task)
    run = f"{w.data.get('model_name') or '?'} ({w.run.prefix})"  # the run's model, and its date or file name
    return [run, sf.task, summary["n"], summary["n_judged"], summary["n_failed"], _pct(summary["accuracy"]),
            _num(summary["score"]), agree["saved_judge"]["judge"] if agree else "(pending)",
            agree["n_compared"] if agree else "-", _pct(agree["verdict_agreement"]) if agree else "-",
            *(_num(agree[k]) if agree else "-" for k in STATISTICS)]


def judging_line(judging: dict[str, Any]) -> str:
    cost = judging.get("estimated_cost") or {}
    usd = cost.get("usd")
    shown = f"${usd:.4f}" if usd is not None else "unknown"
    jobs = "".join(f", job {j['name']} ({j['mode']}, {j['items']} items)" for j in judging.get("batch_jobs", []))
    return (f"{judging['mode']}: requests: {judging['requests']}, cached verdicts reused: {judging['cache_hits']}"
            + (f", retries: {judging['retries']}" if "retries" in judging else "") + jobs
            + f", tokens in/out: {judging['tokens_in']}/{judging['tokens_out']}, estimated cost: {shown}")


def agreement_table(rows: list[Any], first: str, second: str, a: str, b: str, left_out: bool = True) -> str:
    """One row per pair of raters (:class:`egotask.judges.human.Agreement`); the confusion table's cells
    are columns (``a``, ``b``: the raters' initials)."""
    from egotask.judges.human import CELLS

    body = [[r.first, r.second, r.n, r.n_videos, _pct(r.agreement), _num(r.kappa), _ci(r.kappa_ci),
             _pct(r.first_yes_rate), _pct(r.second_yes_rate), *(r.confusion.get(c, 0) for c in CELLS),
             _num(r.score_weighted_kappa), *([r.n_left_out] if left_out else [])] for r in rows]
    headers = [first, second, "n", "videos", "agree %", "kappa", "95% CI", f"{a} yes %", f"{b} yes %",
               f"{a}yes {b}yes", f"{a}yes {b}no", f"{a}no {b}yes", f"{a}no {b}no", "w-kappa (score)"]
    return tabulate(body, headers=headers + (["not judged"] if left_out else []), disable_numparse=True)


def _ci(interval: tuple[float, float] | None) -> str:
    return "-" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
