"""`egotask judge`: score saved predictions again with another judge or prompt version, or judge a run
whose verdicts were deferred (`lmms_eval --judge-mode defer`), synchronously or as one Gemini batch."""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from egotask.judges import DEFAULT_JUDGE, JUDGE_VAR, Judge, JudgeNotReady, build_judge
from egotask.judges.cache import CACHE_DIR_VAR, CACHE_MODE_VAR
from egotask.judges.llm import MODEL_VAR
from egotask.protocols import ProtocolError, failures_counted_as_wrong
from egotask.settings import Settings, SettingsError, configure, get_settings

if TYPE_CHECKING:  # imported when the command runs, not when `egotask --help` builds its parser
    from egotask.judges.batch import BatchJudge
    from egotask.records import SampleRecord
    from egotask.reports.judging import Written
    from egotask.runs import Run

COUNT_FAILED_VAR = "EGOTASK_COUNT_FAILED_AS_WRONG"
EXIT_ITEMS_FAILED = 3  # the same status as lmms_eval's: written, but some items failed
CONCURRENCY_VAR = "EGOTASK_JUDGE_CONCURRENCY"
SHOWN_FAILURES = 20  # failed items listed on the terminal (all of them are in the results file)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from egotask.judges.batch import INLINE_LIMIT_BYTES, JOBS_FOLDER

    p = sub.add_parser(
        "judge", help="re-score saved predictions with a judge (no model needed), or judge a deferred run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Judge the predictions saved in lmms-eval samples files (`--log_samples`) or in records "
                    "files (`egotask import-legacy` output) without running the model.\n\n"
                    "  - Re-judging (another judge, judge model or prompt version): beside each input it writes\n"
                    "    <date>_rejudged-<judge>-..._samples_<task>.jsonl and ..._results.json (lmms-eval's\n"
                    "    results shape, the same summary as a task's `details`), and prints the agreement\n"
                    "    between the saved and the new verdicts: Cohen's kappa on yes/no, quadratic-weighted\n"
                    "    kappa and Spearman on the 0-5 scores, per file and task and over all inputs.\n"
                    "  - A run made with `lmms_eval --judge-mode defer` (verdicts pending) is judged in place:\n"
                    "    its samples and results files end as a synchronous run's would.\n"
                    "  - --batch sends every item not in the verdict cache as one Gemini Batch API job (half\n"
                    "    the price; Google's target is 24 h): inline up to --batch-inline-limit bytes, else as\n"
                    f"    a JSONL file through the Files API. The job is kept in $EGOTASK_CACHE_DIR/{JOBS_FOLDER}/,\n"
                    "    so running the same command again polls that job instead of submitting again; without\n"
                    "    --wait it prints the job's name and state and returns. Items the batch failed are\n"
                    "    listed: leave out --batch (or add --resend-failed) to send them synchronously.\n\n"
                    "Verdicts are cached, so judging the same predictions again costs nothing. Results record\n"
                    "the mode, the requests made, tokens in and out, and an estimated cost (prices in\n"
                    "egotask/judges/prices.json). Before judging it checks that the output folders and the cache\n"
                    "are writable and makes one test request to the judge. Exit status: 0 all judged; 2 nothing\n"
                    "judged (bad input, no key, unreachable judge); 3 written, but some items could not be judged\n"
                    "or had no answer.",
        epilog="examples:\n"
               "  egotask judge results/ --judge gemini --model gemini-2.5-pro\n"
               "  lmms_eval --tasks egotextvqa --model qwen3vl ... --judge-mode defer --output_path results\n"
               "  egotask judge results/ --batch --wait\n"
               "  egotask judge legacy_results/ --judge heuristic   # import-legacy output\n"
               "  egotask judge agreement results/ --human results/m/*.labels.jsonl   # judges against people")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="an lmms-eval output folder or a folder of import-legacy output (searched for "
                        "*_samples_<task>.jsonl and *.records.jsonl), or such a file")
    p.add_argument("--protocol", default=None, metavar="NAME|FILE",
                   help="the protocol whose judge prompt, judge model and failure rule to judge with (default: "
                        "$EGOTASK_PROTOCOL or 'egotask'); `egotask protocol list` shows them")
    p.add_argument("--judge", default=None,
                   help=f"judge backend (default: ${JUDGE_VAR}, else the protocol's, else '{DEFAULT_JUDGE}'); "
                        "`egotask plugins` lists them")
    p.add_argument("--model", default=None, help=f"judging model (default: ${MODEL_VAR} or the backend's default)")
    p.add_argument("--concurrency", type=int, default=None,
                   help=f"requests in flight at once (default: ${CONCURRENCY_VAR} or 16)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--no-cache", action="store_true",
                       help=f"neither read nor write the verdict cache (${CACHE_MODE_VAR}=off)")
    cache.add_argument("--refresh-cache", action="store_true",
                       help=f"judge every item again and overwrite its cached verdict (${CACHE_MODE_VAR}=refresh); "
                            f"the cache lives in ${CACHE_DIR_VAR} (default ~/.cache/egotask)")
    p.add_argument("--count-failed-as-wrong", action="store_true",
                   help=f"count items the judge failed on as 'no'/0 instead of leaving them out (${COUNT_FAILED_VAR}; "
                        "a deferred run keeps the choice it was made with)")
    batch = p.add_argument_group("batch judging (Gemini)")
    batch.add_argument("--batch", action="store_true",
                       help="send the uncached items as one Gemini Batch API job (or poll the job already sent)")
    batch.add_argument("--wait", action="store_true", help="with --batch: poll until the job ends, with progress")
    batch.add_argument("--poll-interval", type=float, default=30.0, metavar="SECONDS",
                       help="with --wait: seconds between two polls (default: 30)")
    batch.add_argument("--resend-failed", action="store_true",
                       help="with --batch: send the items the batch failed on synchronously, in this command")
    batch.add_argument("--batch-inline-limit", type=int, default=INLINE_LIMIT_BYTES, metavar="BYTES",
                       help=f"requests go inline up to this many bytes of JSON, else as a JSONL file "
                            f"(default: {INLINE_LIMIT_BYTES}, the API's limit)")
    p.add_argument("--human", nargs="+", default=None, metavar="LABELS.jsonl",
                   help="with `egotask judge agreement RUN --human LABELS.jsonl...`: measure each judge on RUN "
                        "against people's labels from the app's Label view (agreement, Cohen's kappa with a "
                        "bootstrap CI, yes-rates, confusion table; kappa between people who labelled the same "
                        "items). PATH `agreement` names this mode (a folder named so: ./agreement)")
    p.set_defaults(func=run)


def apply_options(args: argparse.Namespace):
    """The options override fields of egotask's settings (the variables give the defaults)."""
    overrides = {"protocol": args.protocol, "judge": args.judge, "judge_model": args.model,
                 "judge_concurrency": args.concurrency,
                 "judge_cache": "off" if args.no_cache else "refresh" if args.refresh_cache else None,
                 "count_failed_as_wrong": True if args.count_failed_as_wrong else None}
    return configure(**{k: v for k, v in overrides.items() if v is not None})


class _Stop(Exception):
    """Ends the command with an exit status, and a message for stderr."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class JudgePlan:
    """What the command will judge, checked before anything is paid for."""

    settings: Settings
    runs: list[Run]  # read: each task's records, in order
    records: list[SampleRecord]  # every run's records, in order
    judge: Judge
    batcher: BatchJudge | None  # with --batch


def run(args: argparse.Namespace) -> int:
    if args.paths[0] == "agreement":  # `egotask judge agreement RUN --human LABELS...`: no judge is called
        from egotask.judges.human import run_command

        return run_command(args.paths[1:], args.human)
    try:
        if args.human:
            raise _Stop(2, "--human goes with `egotask judge agreement RUN --human LABELS.jsonl...`")
        if (args.wait or args.resend_failed) and not args.batch:
            raise _Stop(2, "--wait and --resend-failed go with --batch")
        with contextlib.ExitStack() as held:  # the runs' locks, held until their files are written
            plan = plan_judging(args, held)
            _announce(plan)
            # What is loaded by now (the plugins import torch: some 400,000 objects) stays: a full garbage
            # collection over it mid-run holds the GIL for about half a second, stalling every request thread.
            gc.freeze()
            judging = judge_plan(plan, args)
            written = write_results(plan, judging)
        return report(plan, written, judging, args)
    except _Stop as stop:
        if stop.message:
            print(f"egotask judge: {stop.message}", file=sys.stderr)
        return stop.status


def plan_judging(args: argparse.Namespace, held: contextlib.ExitStack) -> JudgePlan:
    """Read and lock the inputs, build the judge and check it, the outputs and the cache (exit 2 on a problem)."""
    from egotask.judges.batch import BatchError, BatchJudge
    from egotask.judges.rejudge import find_inputs, items_to_judge, lock_runs
    from egotask.preflight import PreflightError, check_caches, check_outputs

    try:
        settings = apply_options(args)
        runs = find_inputs(args.paths)
        # Another `egotask judge` on the same run would pay for every item again: wait for it, then
        # read the files as it left them (its verdicts are in the cache).
        lock_runs(runs, held, lambda run: print(f"egotask judge: another egotask judge is judging {run}; waiting "
                                                   "for it to finish (its verdicts are reused)", file=sys.stderr))
        records = [r for run in runs for r in run.records]  # all read and checked before paying
        if args.protocol is None:
            settings = _deferred_protocol(records) or settings
        judge = build_judge(settings=settings)
        judge.check_ready()
        check_outputs([run.folder for run in runs], "the folder of the input file (outputs go beside it)")
        check_caches(judge)
        # A cache-only rerun needs no network, and a batch job's submission is itself the first request.
        if not args.batch and not all(judge.cached(item) for item in items_to_judge(records, judge)):
            judge.check_endpoint()
        batcher = BatchJudge(judge, inline_limit=args.batch_inline_limit, poll_interval=args.poll_interval) \
            if args.batch else None
    except JudgeNotReady as exc:
        raise _Stop(2, exc.explain("--judge")) from exc
    except (PreflightError, SettingsError, ProtocolError, ValueError, OSError, BatchError) as exc:
        raise _Stop(2, str(exc)) from exc
    return JudgePlan(settings, runs, records, judge, batcher)


def _announce(plan: JudgePlan) -> None:
    pending = sum(r.pending for r in plan.records)
    judge = plan.judge
    files = {path for run in plan.runs for path in run.files}
    print(f"egotask judge: {len(plan.records)} predictions from {len(files)} file(s)"
          + (f", {pending} verdicts pending" if pending else "")
          + f", judge {judge.name} ({judge.model}, prompt {judge.prompt_version})"
          + (", batch" if plan.batcher else ""), file=sys.stderr)
    _note_other_judge(plan.records, judge)


def judge_plan(plan: JudgePlan, args: argparse.Namespace) -> dict[str, Any]:
    """Judge every record (synchronously, or from a batch), set each task's ``new_records``, and return
    how the verdicts were got (:func:`judging_record`)."""
    from egotask.judges.rejudge import rejudge_records

    source: Judge = plan.judge
    outcome, resent = None, 0
    if plan.batcher is not None:
        outcome, source, resent = _judge_batch(plan, args)
    try:
        judged = rejudge_records(plan.records, source)
    except OSError as exc:  # the verdict cache cannot be read or written (named): stop, paying for nothing more
        raise _Stop(1, str(exc)) from exc
    start = 0
    for part in (part for run in plan.runs for part in run.read()):
        part.new_records, start = judged[start:start + len(part.records)], start + len(part.records)
    return judging_record(plan.judge, outcome, resent)


def _judge_batch(plan: JudgePlan, args: argparse.Namespace) -> tuple[Any, Judge, int]:
    """The batch's outcome, a judge answering from its verdicts, and how many items were resent
    synchronously. A job still running ends the command (status 0) after saying how to collect it."""
    from egotask.judges.batch import BatchError, KnownVerdicts
    from egotask.judges.rejudge import items_to_judge

    judge = plan.judge
    assert plan.batcher is not None
    try:
        outcome = plan.batcher.run(items_to_judge(plan.records, judge), wait=args.wait)
    except (BatchError, JudgeNotReady, OSError) as exc:
        raise _Stop(1, str(exc)) from exc
    if not outcome.done:
        for job in outcome.waiting:
            print(f"batch job {job.name}: {job.state} ({len(job.items)} items, sent {job.created})")
        print("The verdicts are not all in yet. Run the same command again to collect them (it polls the "
              "same job, never submits again), or add --wait to poll until they are.")
        raise _Stop(0)
    verdicts, resent = dict(outcome.verdicts), 0
    if outcome.failed and args.resend_failed:
        items = {key: i for i in items_to_judge(plan.records, judge) if (key := judge.item_key(i)) in outcome.failed}
        print(f"egotask judge: sending the {len(items)} item(s) the batch failed on synchronously", file=sys.stderr)
        verdicts.update(zip(items, judge.judge_many(list(items.values())), strict=True))
        resent = len(items)
    return outcome, KnownVerdicts(judge, verdicts), resent


def write_results(plan: JudgePlan, judging: dict[str, Any]) -> list[Written]:
    """Write each run's files: a deferred run in place, anything else as re-judged copies beside it."""
    from egotask.judges.rejudge import completes_in_place, write_in_place, write_outputs
    from egotask.reports.judging import Written

    written = []
    for run in plan.runs:
        try:
            if completes_in_place(run, plan.judge):
                out, data = write_in_place(run, plan.judge, judging)
                print(f"egotask judge: judged the deferred run in place: {out}", file=sys.stderr)
            else:
                out, data = write_outputs(run, plan.judge, failures_counted_as_wrong(plan.settings), judging)
                print(f"egotask judge: wrote {out}", file=sys.stderr)
        except (OSError, ValueError) as exc:
            raise _Stop(1, str(exc)) from exc
        written.append(Written(run, out, data))
    return written


def report(plan: JudgePlan, written: list[Written], judging: dict[str, Any], args: argparse.Namespace) -> int:
    """The table and the judging line on stdout; the failures on stderr; the exit status."""
    from egotask.reports.judging import judging_line, judging_table

    print(judging_table(written, plan.records))
    print(judging_line(judging))
    failed = sum(w.summary(part)["n_failed"] for w in written for part in w.run.read())
    no_answer = sum(w.summary(part).get("n_generation_failed", 0) for w in written for part in w.run.read())
    if failed:
        new_records = [r for run in plan.runs for part in run.read() for r in part.new_records]
        _report_failures(new_records, failed, batch=plan.batcher is not None)
    if not (failed or no_answer):
        return 0
    how = "counted as wrong" if failures_counted_as_wrong(plan.settings) else "left out of accuracy and score"
    print(f"egotask judge: exit status {EXIT_ITEMS_FAILED}: {failed} item(s) could not be judged and "
          f"{no_answer} had no answer from the model; they are {how}. Everything else is written; they are "
          f"listed under details, 'failed' and 'generation_failed', in {', '.join(str(w.out) for w in written)}.",
          file=sys.stderr)
    return EXIT_ITEMS_FAILED


def judging_record(judge: Any, outcome: Any, resent: int) -> dict[str, Any]:
    """How this command got its verdicts, for the results files."""
    from egotask.judges.prices import estimate_cost

    stats = judge.stats
    if outcome is None:
        tokens_in, tokens_out = stats.get("tokens_in", 0), stats.get("tokens_out", 0)
        return {"mode": "synchronous", "requests": stats.get("requests", 0), "retries": stats.get("retries", 0),
                "cache_hits": stats.get("cache_hits", 0), "tokens_in": tokens_in, "tokens_out": tokens_out,
                "estimated_cost": estimate_cost(judge.name, judge.model, tokens_in, tokens_out)}
    batch_in, batch_out = outcome.tokens
    sync_in, sync_out = stats.get("tokens_in", 0), stats.get("tokens_out", 0)
    cost = estimate_cost(judge.name, judge.model, batch_in, batch_out, batch=True)
    if resent and cost.get("usd") is not None:
        extra = estimate_cost(judge.name, judge.model, sync_in, sync_out)
        cost = {**cost, "usd": round(cost["usd"] + (extra.get("usd") or 0.0), 6),
                "resent_synchronously_usd": extra.get("usd")}
    return {"mode": "batch", "requests": outcome.requests + stats.get("requests", 0),
            "batch_requests": outcome.requests, "cache_hits": outcome.cache_hits,
            "batch_jobs": [{"name": j.name, "mode": j.mode, "state": j.state, "items": len(j.items),
                            "failed": len(j.failed)} for j in outcome.jobs],
            "failed_in_batch": len(outcome.failed), "resent_synchronously": resent,
            "tokens_in": batch_in + sync_in, "tokens_out": batch_out + sync_out, "estimated_cost": cost}


def _report_failures(records: list, total: int, batch: bool) -> None:
    failed = [f"{r.video_id}/{r.question_id}: {r.verdict.error or ''}" for r in records
              if r.generation_error is None and r.verdict.failed]
    shown = "\n  ".join(failed[:SHOWN_FAILURES]) + (f"\n  ... and {len(failed) - SHOWN_FAILURES} more"
                                                     if len(failed) > SHOWN_FAILURES else "")
    how = "counted as wrong" if failures_counted_as_wrong(get_settings()) else "left out of accuracy and score"
    again = ("Send them synchronously with the same command without --batch (or with --resend-failed): "
             "cached verdicts are reused, only these are asked." if batch else
             "Run the same command again to retry only those.")
    print(f"WARNING: {total} item(s) could not be judged; they are {how} (see 'failed' in the results file):\n"
          f"  {shown}\n{again}")


def _deferred_protocol(records: list) -> Any:
    """A deferred run is judged under the protocol it was asked under (what its pending verdicts name),
    unless --protocol says otherwise: the settings with that protocol, or None when nothing is pending
    or the setting already names it."""
    named = {r.verdict.protocol for r in records if r.pending and r.verdict.protocol}
    if len(named) != 1 or named == {get_settings().protocol}:
        return None
    (protocol,) = named
    print(f"egotask judge: judging under protocol {protocol}, which the deferred run was asked under "
          "(--protocol chooses another)", file=sys.stderr)
    return configure(protocol=protocol)


def _note_other_judge(records: list, judge: Any) -> None:
    asked = {(r.verdict.judge, r.verdict.judge_model, r.verdict.prompt_version) for r in records if r.pending}
    mine = (judge.name, judge.model, judge.prompt_version)
    for other in sorted(asked - {mine}):
        print(f"egotask judge: note: the run deferred its verdicts to {other[0]} ({other[1]}, prompt {other[2]}); "
              f"they are given by {mine[0]} ({mine[1]}, prompt {mine[2]})", file=sys.stderr)
