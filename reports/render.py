"""Render runs into markdown (Jinja templates in ``templates/``) or console tables (tabulate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from tabulate import tabulate

from egotask.reports.collect import TaskResult
from egotask.reports.paper import paper_context
from egotask.reports.tables import (
    BootstrapOptions,
    any_generation_failed,
    build_context,
    comparisons,
    footer,
    overall_rows,
    type_tables,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_TEMPLATE = "report.md.j2"


def fmt(value: Any, digits: int = 2, scale: float = 1.0) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def fmt_ci(interval: tuple[float, float] | None, digits: int = 2, scale: float = 1.0, prefix: str = "") -> str:
    """``[low, high]``; with a ``prefix`` (a cell's value comes first) nothing at all for no interval."""
    if interval is None:
        return "" if prefix else "–"
    return f"{prefix}[{fmt(interval[0], digits, scale)}, {fmt(interval[1], digits, scale)}]"


def signed(value: Any, digits: int = 2, scale: float = 1.0) -> str:
    """A difference, always with its sign."""
    return "–" if value is None else f"{value * scale + 0.0:+.{digits}f}"  # + 0.0: no "-0.0"


def signed_ci(interval: tuple[float, float] | None, digits: int = 2, scale: float = 1.0) -> str:
    return "–" if interval is None else f"[{signed(interval[0], digits, scale)}, {signed(interval[1], digits, scale)}]"


def pvalue(p: float | None) -> str:
    return "–" if p is None else "<0.001" if p < 0.001 else f"{p:.3f}"


def count(value: Any) -> str:
    return "–" if value is None else str(value)


def bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def md_escape(text: Any) -> str:
    """Keep a cell a cell: a pipe would split it, and a line break would end the table (the next line
    could even be a heading); both come from names the user chose (a model, a checkpoint folder)."""
    return " ".join(str(text).splitlines()).replace("|", "\\|")


def environment(template_dir: Path | None = None) -> Environment:
    dirs = [str(template_dir)] if template_dir else []
    env = Environment(loader=FileSystemLoader([*dirs, str(TEMPLATES)]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters.update(fmt=fmt, ci=fmt_ci, bold=bold, md=md_escape, signed=signed, sci=signed_ci, pvalue=pvalue,
                       count=count)
    return env


def resolve_template(template: str | Path | None) -> tuple[str, Path | None]:
    """A template file path (its folder is searched first, for includes) or a built-in name."""
    if template is None:
        return DEFAULT_TEMPLATE, None
    path = Path(template)
    if path.is_file():
        return path.name, path.resolve().parent
    if (TEMPLATES / str(template)).is_file():
        return str(template), None
    builtin = ", ".join(sorted(p.name for p in TEMPLATES.glob("*.j2")))
    raise ValueError(f"template {template}: no such file, and not a built-in template ({builtin})")


def render_markdown(runs: list[TaskResult], template: str | Path | None = None, template_dir: Path | None = None,
                    opts: BootstrapOptions | None = None, plots: dict[str, str] | None = None,
                    heading: int = 3, paper: bool = False,
                    pairs: list[tuple[TaskResult, TaskResult]] | None = None) -> str:
    """The report in markdown; ``plots`` maps a setting to the link of its chart; ``paper`` adds the
    published reference rows; ``pairs`` are the runs to compare (default: every two runs holding the
    same questions)."""
    if template_dir is None:
        name, found_dir = resolve_template(template)
    else:
        name, found_dir = str(template or DEFAULT_TEMPLATE), template_dir
    try:
        tmpl = environment(found_dir).get_template(name)
    except TemplateNotFound as exc:
        raise ValueError(f"template {template}: {exc.message or exc.name} not found") from None
    return tmpl.render(**build_context(runs, opts, plots, heading, paper, pairs))


def render_console(runs: list[TaskResult], opts: BootstrapOptions | None = None, by_type: bool = False,
                   paper: bool = False, pairs: list[tuple[TaskResult, TaskResult]] | None = None) -> str:
    """Plain-text tables: the overall table, with ``paper`` the published reference rows, and with
    ``by_type`` one table per setting (best marked *) and the paired comparisons (of ``pairs``, else of
    every two runs holding the same questions)."""
    rows = overall_rows(runs, opts)
    with_ci = any(r.records is not None for r in runs)
    no_answer = any_generation_failed(runs)
    headers = ["model", "task", "setting", *(["videos"] if with_ci else []), "acc %",
               *(["acc 95% CI"] if with_ci else []), "acc % (failures wrong)",
               *(["95% CI"] if with_ci else []), "score", *(["score 95% CI"] if with_ci else []),
               "n", "judged", "failed", *(["no answer"] if no_answer else [])]
    table = [[r["model"], r["task"], r["setting"], *([count(r["n_clusters"])] if with_ci else []),
              fmt(r["accuracy"], 1, 100), *([fmt_ci(r["accuracy_ci"], 1, 100)] if with_ci else []),
              fmt(r["accuracy_failed_as_wrong"], 1, 100),
              *([fmt_ci(r["accuracy_failed_as_wrong_ci"], 1, 100)] if with_ci else []), fmt(r["score"]),
              *([fmt_ci(r["score_ci"])] if with_ci else []), r["n"], r["n_judged"], r["n_failed"],
              *([r["n_generation_failed"]] if no_answer else [])]
             for r in rows]
    parts = [tabulate(table, headers=headers, disable_numparse=True)]
    if paper:
        parts.append(console_paper(runs))
    if by_type:
        for t in type_tables(runs, opts):
            head = ["question type"] + [f"{c} {m}" for c in t["columns"] for m in ("acc %", "score")]
            body = [[row["type"]] + [v for cell in row["cells"] for v in (
                fmt(cell["accuracy"], 1, 100) + ("*" if cell["accuracy_best"] else "")
                + fmt_ci(cell["accuracy_ci"], 1, 100, " "),
                fmt(cell["score"]) + ("*" if cell["score_best"] else "") + fmt_ci(cell["score_ci"], 2, 1, " "))]
                for row in t["rows"]]
            parts.append(f"{t['title']} by question type (* best)\n"
                         + tabulate(body, headers=head, disable_numparse=True))
        compared = comparisons(runs, opts, pairs)
        if compared["rows"]:
            parts.append("paired comparisons (A - B on questions both judged; † 95% CI excludes 0)\n"
                         + tabulate([comparison_cells(c) for c in compared["rows"]], headers=COMPARISON_HEADERS,
                                    disable_numparse=True))
    parts.append(console_footer(runs))
    return "\n\n".join(parts)


def console_paper(runs: list[TaskResult]) -> str:
    info = paper_context(runs)
    rows = [[f"{r['model']} (published)", r["title"], r["task"], f"{r['accuracy']:.1f}", f"{r['score']:.1f}",
             "-" if r["frames"] is None else r["frames"]] for r in info["rows"]]
    rows += [[f"{r['label']} (egotask, the paper's protocol)", r["title"], r["task"], fmt(r["accuracy"], 1, 100),
              fmt(r["score"], 1), r["frames"]] for r in info["same"]]
    table = tabulate(rows, headers=["model", "published table", "same questions as", "acc %", "score", "#F"],
                     disable_numparse=True)
    differ = "".join(f"\n  {r['label']} ({r['task']}): acc {fmt(r['accuracy'], 1, 100)} %, score {fmt(r['score'])}. "
                     f"protocol differs: {'; '.join(r['differences'])}" for r in info["differ"])
    return (f"Published results (reference rows, not egotask runs)\n{table}\n"
            f"Published in {info['source']}. Protocol and judge: {info['protocol']}. {info['note']}"
            + (f"\nNot comparable with the rows above (measured another way):{differ}" if differ else ""))


COMPARISON_HEADERS = ["setting", "A", "B", "questions", "videos", "acc A %", "acc B %", "Δ acc pp", "95% CI",
                      "Δ score", "95% CI", "McNemar p", "only A right", "only B right"]


def comparison_cells(c: dict[str, Any]) -> list[str]:
    """One paired comparison's overall numbers, as the console table and the app show them."""
    questions = str(c["n"]) + ("" if c["same_questions"] else f" of {c['n_a']} / {c['n_b']}")
    mark = {True: "†", False: ""}
    return [c["setting"], c["a"], c["b"], questions, str(c["n_clusters"]), fmt(c["accuracy_a"], 1, 100),
            fmt(c["accuracy_b"], 1, 100), signed(c["accuracy_diff"], 1, 100) + mark[c["accuracy_significant"]],
            signed_ci(c["accuracy_diff_ci"], 1, 100), signed(c["score_diff"]) + mark[c["score_significant"]],
            signed_ci(c["score_diff_ci"]), pvalue(c["mcnemar_p"]), str(c["a_only"]), str(c["b_only"])]


def console_footer(runs: list[TaskResult]) -> str:
    info = footer(runs)
    lines = [f"judge: {j['judge']} ({j['judge_model']}), prompt {j['prompt_version']}"
             + (f" for {', '.join(j['runs'])}" if len(info["judges"]) > 1 else "") for j in info["judges"]]
    for p in info["protocols"]:
        kinds = "; ".join(k["protocol"] + (f" for {', '.join(k['runs'])}" if k["runs"] else "")
                          for k in p["kinds"])
        lines.append(f"{', '.join(p['settings'])}: {kinds}")
    for p in info["eval_protocols"]:
        lines.append(f"protocol: {p['protocol']}" + (f" for {', '.join(p['runs'])}" if len(info["eval_protocols"]) > 1
                                                     else ""))
    for f in info["frames"]:
        lines.append(f"frames: {f['settings']}" + (f" for {', '.join(f['runs'])}" if len(info["frames"]) > 1 else ""))
    for g in info["generation"]:
        lines.append("model side" + (f", {', '.join(g['runs'])}" if len(info["generation"]) > 1 else "")
                     + f": {g['line']}")
    lines.append("acc % and score are over judged items; acc % (failures wrong) counts items that failed to be "
                 "judged (or got no answer) as no")
    if info["counted_wrong_runs"]:
        lines.append(f"{', '.join(info['counted_wrong_runs'])} chose to count failures as wrong when scored: "
                     "the accuracy in their own results is the (failures wrong) one")
    if any(run.records is not None for run in runs):  # a table of summaries alone has no CI column
        lines.append(f"95% CIs: {info['ci_method']} (videos = clusters)")
    return "\n".join(lines)
