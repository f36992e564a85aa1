"""`egotask judge`: score saved predictions again with another judge or prompt version."""

from __future__ import annotations

import argparse
import gc
import sys

from tabulate import tabulate

from egotask.judges import DEFAULT_JUDGE, JUDGE_VAR, JudgeNotReady, build_judge
from egotask.judges.agreement import agreement
from egotask.judges.cache import CACHE_DIR_VAR, CACHE_MODE_VAR
from egotask.judges.llm import MODEL_VAR
from egotask.settings import SettingsError, configure

COUNT_FAILED_VAR = "EGOTASK_COUNT_FAILED_AS_WRONG"
CONCURRENCY_VAR = "EGOTASK_JUDGE_CONCURRENCY"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge", help="re-score saved predictions with a judge (no model needed) and report agreement",
        description="Judge the predictions saved in lmms-eval samples files (`--log_samples`) or in records\n"
                    "files (`egotask import-legacy` output) again, with another judge, judge model or prompt\n"
                    "version, without running the model. Beside each input it writes\n"
                    "  <prefix>_rejudged-<judge>-..._samples_<task>.jsonl and\n"
                    "  <prefix>_rejudged-<judge>-..._results.json (lmms-eval's results shape, with the same\n"
                    "  summary as a task's `details`),\n"
                    "the prefix being the run's date or the records file's name, and prints the agreement\n"
                    "between the saved and the new verdicts, per file and task and over all inputs: Cohen's\n"
                    "kappa on yes/no, quadratic-weighted kappa and Spearman on the 0-5 scores. Verdicts are\n"
                    "cached, so judging the same predictions again costs nothing.",
        epilog="examples:\n  egotask judge results/ --judge gemini --model gemini-2.5-pro\n"
               "  egotask judge legacy_results/ --judge heuristic   # import-legacy output",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="an lmms-eval output folder or a folder of import-legacy output (searched for "
                        "*_samples_<task>.jsonl and *.records.jsonl), or such a file")
    p.add_argument("--judge", default=None,
                   help=f"judge backend (default: ${JUDGE_VAR} or '{DEFAULT_JUDGE}'); `egotask plugins` lists them")
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
                   help=f"count items the judge failed on as 'no'/0 instead of leaving them out (${COUNT_FAILED_VAR})")
    p.set_defaults(func=run)


def apply_options(args: argparse.Namespace):
    """The options override fields of egotask's settings (the variables give the defaults)."""
    overrides = {"judge": args.judge, "judge_model": args.model, "judge_concurrency": args.concurrency,
                 "judge_cache": "off" if args.no_cache else "refresh" if args.refresh_cache else None,
                 "count_failed_as_wrong": True if args.count_failed_as_wrong else None}
    return configure(**{k: v for k, v in overrides.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    from egotask.judges.rejudge import find_samples, group_by_run, load_inputs, rejudge_records, write_outputs

    try:
        settings = apply_options(args)
        judge = build_judge()
        judge.check_ready()
        files = [f for p in find_samples(args.paths) for f in load_inputs(p)]  # all checked before paying
    except (JudgeNotReady, SettingsError, ValueError, OSError) as exc:
        print(f"egotask judge: {exc}", file=sys.stderr)
        return 2
    records = [r for sf in files for r in sf.records]
    n_files = len({sf.path for sf in files})
    print(f"egotask judge: {len(records)} predictions from {n_files} file(s), judge {judge.name} "
          f"({judge.model}, prompt {judge.prompt_version})", file=sys.stderr)
    # What is loaded by now (the plugins import torch: some 400,000 objects) stays: a full garbage
    # collection over it mid-run holds the GIL for about half a second, stalling every request thread.
    gc.freeze()
    judged = rejudge_records(records, judge)
    start = 0
    for sf in files:
        sf.new_records, start = judged[start:start + len(sf.records)], start + len(sf.records)

    rows, failed = [], 0
    for group in group_by_run(files):
        out, data = write_outputs(group, judge, settings.count_failed_as_wrong)
        print(f"egotask judge: wrote {out}", file=sys.stderr)
        for sf in group:
            summary, agree = data["results"][sf.task]["details,none"], data["egotask_rejudge"]["agreement"][sf.task]
            failed += summary["n_failed"]
            rows.append([sf.path.name, sf.task, summary["n"], summary["n_judged"], summary["n_failed"],
                         _pct(summary["accuracy"]), _num(summary["score"]), agree["saved_judge"]["judge"],
                         agree["n_compared"], _pct(agree["verdict_agreement"]), _num(agree["cohen_kappa"]),
                         _num(agree["score_weighted_kappa"]), _num(agree["score_spearman"])])
    if len(files) > 1:  # the same statistics over every input's items together
        overall = agreement([r.verdict.to_dict() for sf in files for r in sf.records],
                            [r.verdict.to_dict() for sf in files for r in sf.new_records])
        n_judged = sum(r.judged and r.generation_error is None for sf in files for r in sf.new_records)
        rows.append(["all inputs", "", len(records), n_judged, sum(r[4] for r in rows), "-", "-", "",
                     overall["n_compared"], _pct(overall["verdict_agreement"]), _num(overall["cohen_kappa"]),
                     _num(overall["score_weighted_kappa"]), _num(overall["score_spearman"])])
    print(tabulate(rows, headers=["file", "task", "n", "judged", "failed", "acc %", "score", "saved judge",
                                  "compared", "agree %", "kappa", "w-kappa (score)", "spearman (score)"],
                   disable_numparse=True))
    stats = getattr(judge, "stats", None)
    if stats is not None:
        print(f"requests: {stats['requests']}, cached verdicts reused: {stats['cache_hits']}, "
              f"retries: {stats['retries']}")
    if failed:
        print(f"WARNING: {failed} item(s) could not be judged; they are left out of accuracy and score "
              "(see 'failed' in the results file). Run the same command again to retry only those.")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
