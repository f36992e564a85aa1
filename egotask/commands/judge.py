"""`egotask judge`: score saved predictions again with another judge or prompt version."""

from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from egotask.judges import DEFAULT_JUDGE, JUDGE_VAR, JudgeNotReady, build_judge
from egotask.judges.cache import CACHE_DIR_VAR, CACHE_MODE_VAR
from egotask.judges.llm import MODEL_VAR
from egotask.settings import SettingsError, configure

COUNT_FAILED_VAR = "EGOTASK_COUNT_FAILED_AS_WRONG"
CONCURRENCY_VAR = "EGOTASK_JUDGE_CONCURRENCY"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge", help="re-score saved predictions with a judge (no model needed) and report agreement",
        description="Judge the predictions saved in lmms-eval samples files (`--log_samples`) again, with "
                    "another judge, judge model or prompt version, without running the model. Beside each "
                    "input it writes <date>_rejudged-<judge>-..._samples_<task>.jsonl and "
                    "<date>_rejudged-<judge>-..._results.json (lmms-eval's results shape, with the same "
                    "summary as a task's `details`), and prints the agreement between the saved and the new "
                    "verdicts: Cohen's kappa on yes/no, quadratic-weighted kappa and Spearman on the 0-5 "
                    "scores. Verdicts are cached, so judging the same predictions again costs nothing.",
        epilog="example: egotask judge results/ --judge gemini --model gemini-2.5-pro")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="an lmms-eval output folder (searched for *_samples_<task>.jsonl) or a samples file")
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
    from egotask.judges.rejudge import find_samples, group_by_run, load_samples_file, rejudge_records, write_outputs

    try:
        settings = apply_options(args)
        judge = build_judge()
        judge.check_ready()
        files = [load_samples_file(p) for p in find_samples(args.paths)]  # all inputs checked before paying
    except JudgeNotReady as exc:
        print(f"egotask judge: {exc.explain('--judge')}", file=sys.stderr)
        return 2
    except (SettingsError, ValueError, OSError) as exc:
        print(f"egotask judge: {exc}", file=sys.stderr)
        return 2
    records = [r for sf in files for r in sf.records]
    print(f"egotask judge: {len(records)} predictions from {len(files)} file(s), judge {judge.name} "
          f"({judge.model}, prompt {judge.prompt_version})", file=sys.stderr)
    judged = rejudge_records(records, judge)
    start = 0
    for sf in files:
        sf.new_records, start = judged[start:start + len(sf.records)], start + len(sf.records)

    rows, failed = [], 0
    for group in group_by_run(files):
        out, data = write_outputs(group, judge, settings.count_failed_as_wrong)
        print(f"egotask judge: wrote {out}", file=sys.stderr)
        for task, metrics in data["results"].items():
            summary, agree = metrics["details,none"], data["egotask_rejudge"]["agreement"][task]
            failed += summary["n_failed"]
            run = f"{data['model_name']} ({group[0].prefix})"  # the run's model and lmms-eval's date id
            rows.append([run, task, summary["n"], summary["n_judged"], summary["n_failed"], _pct(summary["accuracy"]),
                         _num(summary["score"]), agree["saved_judge"]["judge"], agree["n_compared"],
                         _num(agree["cohen_kappa"]), _num(agree["score_weighted_kappa"]),
                         _num(agree["score_spearman"])])
    print(tabulate(rows, headers=["run", "task", "n", "judged", "failed", "acc %", "score", "saved judge", "compared",
                                  "kappa", "w-kappa (score)", "spearman (score)"]))
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
