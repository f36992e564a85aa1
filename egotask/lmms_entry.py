"""The ``lmms_eval`` console script: lmms-eval's own flags, plus egotask's tasks and judge.

It differs from upstream's ``lmms-eval`` in three ways:
- egotask's task folder is always on ``--include_path`` (next to any folder you pass);
- ``--protocol NAME|FILE`` picks the evaluation protocol (prompt, answer extraction, judge prompt;
  ``EGOTASK_PROTOCOL``), ``--prompt-family NAME`` one of its per-model prompts, ``--judge NAME`` the
  judge backend, ``--judge-cache on|off|refresh`` its verdict cache and
  ``--judge-mode sync|defer`` whether to judge now or leave the verdicts pending for ``egotask judge``
  (they override the ``EGOTASK_JUDGE`` / ``EGOTASK_JUDGE_CACHE`` / ``EGOTASK_JUDGE_MODE`` settings of
  :mod:`egotask.settings`);
- it exits non-zero when the evaluation fails (upstream logs the exception and exits 0): 1 when it
  stops (a failed preflight check or a crash) or an output file could not be written (named; each
  file is written whole or not at all, :mod:`egotask.lmms_outputs`), 2 for a usage error, and 3 when
  it finished and wrote everything but some items failed: the judge gave no verdict, or the model
  gave no answer.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from dataclasses import dataclass

from egotask.judges.base import JudgeNotReady
from egotask.judges.secrets import redact_secrets
from egotask.lmms_bridge import check_model, check_model_weights, model_reads_intervals, weights_hint
from egotask.paths import tasks_path
from egotask.preflight import preflight
from egotask.protocols import ProtocolError, active_prompt, active_protocol, declare_model
from egotask.settings import SettingsError, configure
from egotask.taskindex import UnknownTaskError, check_task_names
from egotask.upstream_cli import parse_eval_args_function
from egotask.visible_clips import declare_model_reads_intervals

EXIT_ITEMS_FAILED = 3  # finished and wrote everything, but some items have no verdict or no answer

HELP_EXTRA = """
egotask additions:
  --protocol NAME|FILE  evaluation protocol: the prompt, the answer extraction and the judge prompt
                        (default: $EGOTASK_PROTOCOL or 'egotask'); `egotask protocol list` shows them,
                        `egotask protocol import` brings the official releases' (egotextvqa-official, ...)
  --prompt-family NAME  which of the protocol's per-model prompts to use (default: the one the model's
                        name matches, else the protocol's first; $EGOTASK_PROMPT_FAMILY)
  --judge NAME          judge backend for egotask tasks (default: $EGOTASK_JUDGE, else the protocol's,
                        'gemini' for egotask's); `egotask plugins` lists them; 'heuristic' judges offline
  --judge-cache MODE    on (default): reuse cached verdicts; refresh: judge again and overwrite;
                        off: neither read nor write the cache (same as $EGOTASK_JUDGE_CACHE)
  --judge-mode MODE     sync (default): judge each answer during the run; defer: write the samples
                        with verdicts pending and judge later with `egotask judge OUTPUT --batch`
                        (Gemini's Batch API, half price) or without --batch (same as $EGOTASK_JUDGE_MODE)
  --plan                print what the run would do and exit 0, running and writing nothing: items per
                        task, answers and verdicts already cached, visible-interval cuts and frames still
                        to make, judge requests, tokens, cost (synchronous and batch, from prices.json and
                        its date) and judging time; --plan=json prints it as JSON (`egotask plan` is the same)
  --plan-latency S      seconds one judge request is assumed to take, for the plan's time estimate
                        (default: $EGOTASK_PLAN_LATENCY, 3)
  --max-cost USD        refuse to start (exit 2, before the model loads) when the plan's estimated
                        synchronous judging cost is above USD
  egotask's tasks (egotextvqa_indoor, egotextvqa_outdoor, egotextvqa, egotempo_openqa, ...) are
  always included. Exit status: 0 all judged; 1 stopped (preflight check or crash) or an output file
  could not be written (named); 2 usage error;
  3 finished and written, but items failed to be judged or got no answer (listed in the results).
"""


def pop_option(argv: list[str], name: str) -> tuple[list[str], str | None]:
    """``argv`` without ``name VALUE`` / ``name=VALUE`` (the last one wins), and that value."""
    out, value, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == name:
            if i + 1 >= len(argv):
                raise SystemExit(f"lmms_eval: {name} needs a value")
            value, i = argv[i + 1], i + 2
            continue
        if arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
        else:
            out.append(arg)
        i += 1
    return out, value


def pop_flag(argv: list[str], name: str) -> tuple[list[str], str | None]:
    """``argv`` without ``name`` / ``name=VALUE``, and None (absent), "" (the bare flag) or VALUE."""
    out, value = [], None
    for arg in argv:
        if arg == name:
            value = ""
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
        else:
            out.append(arg)
    return out, value


def positive_number(flag: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number >= 0 or number == float("inf"):
        raise SettingsError(f"{flag} {value!r}: expected a number >= 0")
    return number


def root_cause(exc: BaseException) -> BaseException:
    """lmms-eval wraps dataset errors in tenacity's RetryError; show the error underneath."""
    last = getattr(exc, "last_attempt", None)
    inner = last.exception() if last is not None else None
    return root_cause(inner) if inner is not None else exc


@dataclass(frozen=True)
class EntryOptions:
    """egotask's own flags that are not settings: the plan and the cost limit."""

    plan_mode: str | None  # None: no plan; "": the table; "json"
    latency: float | None  # --plan-latency, seconds
    limit_usd: float | None  # --max-cost


def egotask_options(argv: list[str]) -> tuple[list[str], EntryOptions]:
    """Take egotask's flags out of ``argv`` (lmms-eval's parser would refuse them) and apply the ones that
    are settings; raises SettingsError or ProtocolError for a bad value."""
    argv, judge = pop_option(argv, "--judge")
    argv, judge_cache = pop_option(argv, "--judge-cache")
    argv, judge_mode = pop_option(argv, "--judge-mode")
    argv, protocol = pop_option(argv, "--protocol")
    argv, prompt_family = pop_option(argv, "--prompt-family")
    argv, plan_mode = pop_flag(argv, "--plan")
    argv, plan_latency = pop_option(argv, "--plan-latency")
    argv, max_cost = pop_option(argv, "--max-cost")
    if plan_mode not in (None, "", "json"):
        raise SettingsError(f"--plan={plan_mode}: expected --plan or --plan=json")
    latency, limit_usd = positive_number("--plan-latency", plan_latency), positive_number("--max-cost", max_cost)
    if latency == 0:
        raise SettingsError("--plan-latency 0: expected a number of seconds above 0")
    configure(**{k: v for k, v in (("judge", judge), ("judge_cache", judge_cache), ("judge_mode", judge_mode),
                                   ("protocol", protocol), ("prompt_family", prompt_family)) if v})
    active_protocol()  # a wrong name or file is a usage error, before anything loads
    return argv, EntryOptions(plan_mode, latency, limit_usd)


def main(argv: list[str] | None = None) -> int:
    try:
        argv, opts = egotask_options(list(sys.argv[1:] if argv is None else argv))
    except (SettingsError, ProtocolError) as exc:
        print(f"lmms_eval: {exc}", file=sys.stderr)
        return 2
    # Help, argument errors and the checks below need only lmms-eval's parser: lmms-eval itself (and
    # torch) is imported once they pass, so a mistake costs a fraction of a second, not 10 s.
    parse_eval_args = parse_eval_args_function()
    if any(a in ("-h", "--help") for a in argv):
        sys.argv = ["lmms_eval", "--help"]
        try:
            parse_eval_args()
        except SystemExit:
            print(HELP_EXTRA)
            return 0

    sys.argv = ["lmms_eval", *argv]
    _, args = parse_eval_args()
    args.include_path = [*([args.include_path] if args.include_path else []), str(tasks_path())]
    if not any(a.startswith("--process_docs_parallel") for a in argv):
        # process_results calls the judge; let as many documents be judged at once as it allows.
        from egotask.judges import judge_concurrency

        args.process_docs_parallel = judge_concurrency()

    if args.config or args.wandb_args or getattr(args, "swanlab_args", None):
        # Upstream's full driver handles these; it cannot report failure through the exit status.
        print("lmms_eval: --config/--wandb_args/--swanlab_args run through upstream lmms-eval, whose exit "
              "status is 0 even when evaluation fails; check the log.", file=sys.stderr)
        from lmms_eval.__main__ import cli_evaluate

        cli_evaluate(args)
        return 0
    if not args.tasks:
        print("lmms_eval: give --tasks (for example --tasks egotextvqa_indoor) and --model", file=sys.stderr)
        return 2
    status = before_the_model(args, opts)
    return status if status is not None else evaluate(args)


def before_the_model(args: argparse.Namespace, opts: EntryOptions) -> int | None:
    """Everything checked before the model loads (tasks, model arguments, prompt, judge, caches, weights),
    or the plan; an exit status to stop with, else None."""
    try:
        check_task_names(args.tasks.split(","), args.include_path)
    except UnknownTaskError as exc:
        print(f"lmms_eval: {exc}", file=sys.stderr)
        return 2
    try:
        check_model(args.model, args.model_args)
        declare_model_reads_intervals(model_reads_intervals(args.model))
        declare_model(f"{args.model} {args.model_args or ''}")  # picks the protocol's prompt for its family
        active_prompt()  # a --prompt-family the protocol lacks stops here
        if opts.plan_mode is not None:  # no preflight: it makes a judge request and the output folder
            check_model_weights(args.model, args.model_args)
            return show_plan(args, opts.latency, as_json=opts.plan_mode == "json")
        if opts.limit_usd is not None:  # before the preflight: a refused run makes no request and no folder
            check_model_weights(args.model, args.model_args)
            refusal = cost_refusal(args, opts.latency, opts.limit_usd)
            if refusal:
                print(f"lmms_eval: {refusal}", file=sys.stderr)
                return 2
        preflight(args.tasks.split(","), output_path=args.output_path)
        check_model_weights(args.model, args.model_args)
    except JudgeNotReady as exc:
        print(f"lmms_eval: {redact_secrets(exc.explain('--judge'))}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"lmms_eval: {redact_secrets(str(exc))}", file=sys.stderr)
        return 1
    return None


def evaluate(args: argparse.Namespace) -> int:
    """Run lmms-eval's evaluation, print the results, and say what failed (exit 1 or 3) or 0."""
    from lmms_eval.__main__ import cli_evaluate_single
    from lmms_eval.utils import make_table
    from loguru import logger

    from egotask import lmms_outputs

    lmms_outputs.install()

    logger.remove()
    # lmms-eval logs its --model_args (and errors holding them): no key reaches the screen.
    logger.configure(patcher=lambda record: record.update(message=redact_secrets(record["message"])))
    logger.add(sys.stderr, level=args.verbosity)
    try:
        results, samples = cli_evaluate_single(args)
    except SystemExit as exc:  # `--tasks list` and friends exit through sys.exit()
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        hint = weights_hint(root_cause(exc), args.model_args)
        if hint:  # no 90 lines of transformers' traceback for weights that are not there
            print(f"lmms_eval: {redact_secrets(hint)}", file=sys.stderr)
            return 1
        print(redact_secrets(traceback.format_exc()), file=sys.stderr)
        print(f"\nlmms_eval: evaluation failed: {redact_secrets(str(root_cause(exc)))}", file=sys.stderr)
        return 1
    if results is None:
        return 0
    print_results(args, results, make_table, samples)
    unwritten = lmms_outputs.write_failures()
    if unwritten:
        print("lmms_eval: exit status 1: could not write " + "; ".join(unwritten) + ". The numbers above are "
              "this run's; a file that is named was not written at all (none is left cut). Free space or pick "
              "another --output_path and run again (the answer and verdict caches make the rerun cheap).",
              file=sys.stderr)
        return 1
    failures = item_failures(results)
    if failures:
        print(failure_message(failures, args.output_path), file=sys.stderr)
        return EXIT_ITEMS_FAILED
    return 0


def show_plan(args, latency: float | None, as_json: bool = False) -> int:
    """Print the plan of this run (:mod:`egotask.plan`); nothing runs and nothing is written."""
    import json

    from egotask.plan import build_plan, render_plan

    plan = build_plan(args, latency)
    print(json.dumps(plan.to_dict(), indent=2) if as_json else render_plan(plan))
    return 0


def cost_refusal(args, latency: float | None, limit_usd: float) -> str | None:
    """Why the run may not start under ``--max-cost``, or None when the plan's estimate is within it."""
    from egotask.plan import COST_DIGITS, build_plan, round_cost

    plan = build_plan(args, latency, scratch=False)
    usd = plan.estimated_usd
    if usd is None:
        return (f"--max-cost {limit_usd:g}: the judging cost cannot be estimated ({plan.cost_sync.get('note')}); "
                "add the judge model's price to egotask/judges/prices.json, or drop --max-cost")
    if usd > limit_usd:
        return (f"not started: the estimated judging cost ${round_cost(usd):.{COST_DIGITS}g} ({plan.requests} "
                f"requests at most, {plan.tokens_in} tokens in, {plan.tokens_out} out, synchronous, prices checked "
                f"{plan.prices_checked}) is above --max-cost {limit_usd:g}. Run the same command with --plan to see "
                "where it comes from; raise --max-cost, judge later at half price with --judge-mode defer and "
                "`egotask judge OUTPUT --batch`, or lower --limit.")
    print(f"lmms_eval: estimated judging cost ${round_cost(usd):.{COST_DIGITS}g} is within --max-cost {limit_usd:g}",
          file=sys.stderr)
    return None


def item_failures(results: dict) -> dict[str, tuple[int, int, bool]]:
    """Per egotask task with failures: (items the judge gave no verdict, items the model gave no answer,
    whether the run counted them as wrong), from each task's summary (``details``)."""
    out = {}
    for task, metrics in (results.get("results") or {}).items():
        summary = metrics.get("details,none") if isinstance(metrics, dict) else None
        if not isinstance(summary, dict) or "n_failed" not in summary:
            continue  # not an egotask task
        judge_failed, no_answer = int(summary["n_failed"] or 0), int(summary.get("n_generation_failed") or 0)
        if judge_failed or no_answer:
            out[task] = (judge_failed, no_answer, bool(summary.get("failed_counted_as_wrong")))
    return out


def failure_message(failures: dict[str, tuple[int, int, bool]], output_path: str | None) -> str:
    judge_failed = sum(f[0] for f in failures.values())
    no_answer = sum(f[1] for f in failures.values())
    counted = any(f[2] for f in failures.values())
    where = (f"the results JSON under {output_path}" if output_path
             else "the results (run with --output_path to keep them)")
    per_task = ", ".join(f"{task}: {f[0]} / {f[1]}" for task, f in sorted(failures.items()))
    return (f"lmms_eval: exit status {EXIT_ITEMS_FAILED}: {judge_failed} item(s) could not be judged and {no_answer} "
            f"got no answer from the model (per task, not judged / no answer: {per_task}); they are "
            f"{'counted as wrong' if counted else 'left out of accuracy and score'}. Everything else is written. "
            f"They are listed under details, 'failed' and 'generation_failed', in {where}; running the same "
            "command again retries only them.")


def print_results(args, results: dict, make_table, samples: dict | None = None) -> None:
    """lmms-eval's table without the bulky per-type ``details``, then egotask's summary table, read
    with the run's samples (``--log_samples``) as ``egotask report`` reads them."""
    from pathlib import Path

    from egotask.reports.collect import attach_logged_samples, runs_from_results
    from egotask.reports.render import render_console

    lean = {**results, "results": {task: {k: v for k, v in metrics.items() if not k.startswith("details")}
                                   for task, metrics in results["results"].items()}}
    print(f"{args.model} ({redact_secrets(args.model_args)}), limit: {args.limit}, batch_size: {args.batch_size}")
    print(make_table(lean))
    if "groups" in results:
        print(make_table(lean, "groups"))
    runs = runs_from_results(results, Path(args.output_path or "."))
    attach_logged_samples(runs, samples)
    pending = sum(int(r.summary.get("n_pending") or 0) for r in runs)
    if pending:
        print(f"egotask: {pending} verdict(s) pending (--judge-mode defer): the run is not scored yet. Judge it "
              f"with: egotask judge {args.output_path or 'OUTPUT_PATH'} --batch (or without --batch)")
        return
    if runs:
        print(render_console(runs))


if __name__ == "__main__":
    sys.exit(main())
