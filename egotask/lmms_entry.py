"""The ``lmms_eval`` console script: lmms-eval's own flags, plus egotask's tasks and judge.

It differs from upstream's ``lmms-eval`` in three ways:
- egotask's task folder is always on ``--include_path`` (next to any folder you pass);
- ``--judge NAME`` picks the judge backend, ``--judge-cache on|off|refresh`` its verdict cache (they
  override the ``EGOTASK_JUDGE`` / ``EGOTASK_JUDGE_CACHE`` settings of :mod:`egotask.settings`);
- it exits non-zero when the evaluation fails (upstream logs the exception and exits 0).
"""

from __future__ import annotations

import sys
import traceback

from egotask.judges.base import JudgeNotReady
from egotask.lmms_bridge import check_model
from egotask.paths import tasks_path
from egotask.preflight import preflight
from egotask.settings import SettingsError, configure
from egotask.upstream_cli import parse_eval_args_function

HELP_EXTRA = """
egotask additions:
  --judge NAME          judge backend for egotask tasks (default: $EGOTASK_JUDGE or 'gemini');
                        `egotask plugins` lists them; 'heuristic' judges offline
  --judge-cache MODE    on (default): reuse cached verdicts; refresh: judge again and overwrite;
                        off: neither read nor write the cache (same as $EGOTASK_JUDGE_CACHE)
  egotask's tasks (egotextvqa_indoor, egotextvqa_outdoor, egotextvqa, egotempo_openqa, ...) are
  always included; exit status is non-zero when the evaluation fails.
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


def root_cause(exc: BaseException) -> BaseException:
    """lmms-eval wraps dataset errors in tenacity's RetryError; show the error underneath."""
    last = getattr(exc, "last_attempt", None)
    inner = last.exception() if last is not None else None
    return root_cause(inner) if inner is not None else exc


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, judge = pop_option(argv, "--judge")
    argv, judge_cache = pop_option(argv, "--judge-cache")
    try:
        configure(**{k: v for k, v in (("judge", judge), ("judge_cache", judge_cache)) if v})
    except SettingsError as exc:
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

    try:
        check_model(args.model, args.model_args)
        preflight(args.tasks.split(","))
    except JudgeNotReady as exc:
        print(f"lmms_eval: {exc.explain('--judge')}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"lmms_eval: {exc}", file=sys.stderr)
        return 1
    from lmms_eval.__main__ import cli_evaluate_single
    from lmms_eval.utils import make_table
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=args.verbosity)
    try:
        results, _samples = cli_evaluate_single(args)
    except SystemExit as exc:  # `--tasks list` and friends exit through sys.exit()
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        traceback.print_exc()
        print(f"\nlmms_eval: evaluation failed: {root_cause(exc)}", file=sys.stderr)
        return 1
    if results is not None:
        print_results(args, results, make_table)
    return 0


def print_results(args, results: dict, make_table) -> None:
    """lmms-eval's table without the bulky per-type ``details``, then egotask's summary table."""
    from pathlib import Path

    from egotask.reports.collect import runs_from_results
    from egotask.reports.render import render_console

    lean = {**results, "results": {task: {k: v for k, v in metrics.items() if not k.startswith("details")}
                                   for task, metrics in results["results"].items()}}
    print(f"{args.model} ({args.model_args}), limit: {args.limit}, batch_size: {args.batch_size}")
    print(make_table(lean))
    if "groups" in results:
        print(make_table(lean, "groups"))
    runs = runs_from_results(results, Path(args.output_path or "."))
    if runs:
        print(render_console(runs))
        failed = sum(r.summary["n_failed"] for r in runs)
        if failed:
            how = "counted as wrong" if any(r.failed_counted_as_wrong for r in runs) else "not counted as wrong"
            print(f"WARNING: {failed} item(s) could not be judged; they are {how}. "
                  "See 'failed' under details in the results JSON.")


if __name__ == "__main__":
    sys.exit(main())
