"""`egotask report`: result tables (markdown or console), bar charts and the README's results block."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from egotask.atomic import write_text

DEFAULT_PLOTS = "report_plots"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="tables, confidence intervals and plots from lmms_eval output or imported files",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the results report from lmms_eval output folders (results JSON plus the "
                    "--log_samples JSONL) and/or files written by `egotask import-legacy`:\n"
                    "  - overall: one row per model run and setting (indoor, outdoor, egotempo), with\n"
                    "    accuracy over judged items and with failures counted as wrong side by side, mean\n"
                    "    score, n, judged and failed, and 95% confidence intervals from a cluster bootstrap\n"
                    "    over videos (questions of one video are resampled together; the number of videos\n"
                    "    is shown); the reader's EGOTASK_* variables change nothing;\n"
                    "  - per question type for each setting, models as columns, best value in bold;\n"
                    "  - with --paper, the EgoTextVQA paper's published numbers as reference rows;\n"
                    "  - paired comparisons of every two runs that hold the same questions (or of the runs\n"
                    "    of A and B with --compare): accuracy and score differences with paired cluster-\n"
                    "    bootstrap CIs, an exact McNemar p-value, and the questions each run alone got right;\n"
                    "  - a footer naming the judge, its prompt version, which part of the video the models\n"
                    "    saw and the frame settings they sampled with;\n"
                    "  - one accuracy-by-question-type bar chart (PNG) per setting, linked from the report.\n"
                    "Tables come from Jinja templates (egotask/reports/templates/, or --template).",
        epilog="examples:\n"
               "  egotask report results/ --output results.md\n"
               "  egotask report results/base results/finetuned --compare\n"
               "  egotask report results/ --format console\n"
               "  egotask report results/ --paper\n"
               "  egotask report legacy/ --readme README.md --plots docs/results")
    p.add_argument("inputs", nargs="+", type=Path, metavar="PATH",
                   help="lmms_eval --output_path folders, *_results.json files, or *.records.jsonl files "
                        "(folders are searched for both)")
    p.add_argument("--format", choices=("markdown", "console"), default="markdown",
                   help="markdown tables (default) or plain console tables (tabulate)")
    p.add_argument("--output", "-o", type=Path, help="write the markdown report to this file")
    p.add_argument("--readme", type=Path,
                   help="replace the text between <!-- egotask:results:start --> and "
                        "<!-- egotask:results:end --> in this file with the report (markers required)")
    p.add_argument("--template", help="a Jinja template file to render instead of the built-in "
                                      "report.md.j2 (it may {%% include %%} the built-in parts)")
    p.add_argument("--plots", type=Path,
                   help=f"folder for the bar charts (default: {DEFAULT_PLOTS}/ next to --output or --readme; "
                        "none when printing to the terminal)")
    p.add_argument("--no-plots", action="store_true", help="draw no charts")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap resamples for the confidence intervals (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed, for reproducible CIs (default: 0)")
    p.add_argument("--paper", action="store_true",
                   help="add the EgoTextVQA paper's published numbers as reference rows, in their own table "
                        "(marked as published under the paper's protocol and judge; never in egotask's CIs)")
    p.add_argument("--compare", action="store_true",
                   help="exactly two inputs A and B: compare each run of A with each run of B of the same setting, "
                        "on the questions both hold (without it, every two runs holding the same questions "
                        "are compared)")
    p.add_argument("--heading-level", type=int, default=3, choices=range(1, 7), metavar="{1..6}",
                   help="markdown heading level of the report's sections (default: 3)")
    p.set_defaults(func=run)


def _link(target: Path, document: Path) -> str:
    return Path(os.path.relpath(target.resolve(), document.resolve().parent)).as_posix()


def run(args: argparse.Namespace) -> int:
    from egotask.reports.collect import assign_labels, collect_runs
    from egotask.reports.plots import write_plots
    from egotask.reports.readme import replace_block, update_readme
    from egotask.reports.render import render_console, render_markdown, resolve_template
    from egotask.reports.tables import BootstrapOptions, type_tables

    try:
        opts = BootstrapOptions(n_resamples=args.bootstrap, seed=args.seed)
        resolve_template(args.template)
        if args.readme is not None:  # refuse a README without markers before writing anything
            replace_block(args.readme.read_text(encoding="utf-8"), "", str(args.readme))
        if args.compare:
            if len(args.inputs) != 2:
                raise ValueError(f"--compare takes exactly two inputs (A and B), got {len(args.inputs)}")
            side_a, side_b = (collect_runs([path]) for path in args.inputs)
            side_a = drop_shared(side_a, side_b, args.inputs)
            runs = [*side_a, *side_b]
            assign_labels(runs)
            pairs = compare_pairs(side_a, side_b, args.inputs)
        else:
            runs, pairs = collect_runs(args.inputs), None
        documents = [d for d in (args.output, args.readme) if d is not None]
        plots_dir = None if args.no_plots else args.plots or (
            documents[0].parent / DEFAULT_PLOTS if documents else None)
        plots = write_plots(type_tables(runs, opts), plots_dir) if plots_dir else {}

        def markdown(document: Path | None) -> str:
            links = {s: (_link(p, document) if document else p.as_posix()) for s, p in plots.items()}
            return render_markdown(runs, args.template, opts=opts, plots=links, heading=args.heading_level,
                                   paper=args.paper, pairs=pairs)

        if args.output is not None:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            write_text(args.output, markdown(args.output))
            print(f"egotask report: wrote {args.output}", file=sys.stderr)
        if args.readme is not None:
            changed = update_readme(args.readme, markdown(args.readme))
            print(f"egotask report: {args.readme} {'updated' if changed else 'already up to date'}",
                  file=sys.stderr)
        if not documents:
            console = args.format == "console"
            print(render_console(runs, opts, by_type=True, paper=args.paper, pairs=pairs) if console
                  else markdown(None), end="" if not console else "\n")
        for setting, path in plots.items():
            print(f"egotask report: {setting} chart in {path}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"egotask report: {exc}", file=sys.stderr)
        return 2
    return 0


def drop_shared(side_a: list, side_b: list, inputs: list[Path]) -> list:
    """A's runs less those B also holds (the same file, as when B is a subfolder of A): a run is never
    compared with itself."""
    in_b = {(run.source.resolve(), run.task) for run in side_b}
    kept = [run for run in side_a if (run.source.resolve(), run.task) not in in_b]
    for run in side_a:
        if all(run is not k for k in kept):
            print(f"egotask report: --compare: {run.source} ({run.task}) is under both {inputs[0]} and {inputs[1]}; "
                  "it is compared as B only", file=sys.stderr)
    return kept


def compare_pairs(side_a: list, side_b: list, inputs: list[Path]) -> list:
    """Each run of A with each run of B of the same setting that shares questions with it."""
    pairs, problems = [], []
    for a in side_a:
        for b in side_b:
            if a.setting != b.setting:
                continue
            if a.records is None or b.records is None:
                problems.append(f"{a.label if a.records is None else b.label} ({a.setting}) has no samples file")
            elif {r.key for r in a.records} & {r.key for r in b.records}:
                pairs.append((a, b))
            else:
                problems.append(f"{a.label} and {b.label} ({a.setting}) share no question")
    for problem in problems:
        print(f"egotask report: --compare: {problem}", file=sys.stderr)
    if not pairs:
        raise ValueError(f"--compare: no run of {inputs[0]} shares questions with a run of {inputs[1]} in the same "
                         "setting (both need their samples files)")
    return pairs
