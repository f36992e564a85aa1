"""Judge throughput against a fake Gemini server with a fixed latency per request.

The real google-genai client talks to ``egotask.testing.vendor`` (run in its own process, so its
work does not compete with the client for the GIL). Three runs, each in the same output:

- sequential: one request in flight (the predecessor's design, without its 8 s sleep);
- concurrent: ``--concurrency`` requests in flight over ``--items`` items; the ideal is
  concurrency / latency items per second, and the ratio to it is the figure of merit (aim: >= 0.85);
- cache-hit rerun: the same items again; every verdict comes from the SQLite cache, no requests.

"client CPU ms/item" is the judging process's CPU time per item (mostly google-genai building the
request and parsing the reply). At concurrency 32 and 200 ms the client needs about 160 x that much
CPU per second, so on a small, busy machine the ratio is bounded by the CPU it gets, not by waiting.

--quick runs the same three runs small (48 items, concurrency 8, 50 ms) and checks them: no failed
verdict, every item judged with the fake server's verdict, and a rerun that gets every verdict (the
same ones) from the cache with no request. These checks gate the exit status in both modes; the
ratios do not (on a tiny run they are noise).

    .venv/bin/python benchmarks/judge_throughput.py            # 480 items, concurrency 32, 200 ms
    .venv/bin/python benchmarks/judge_throughput.py --quick    # a few seconds; what CI runs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402
from _servers import fake_server  # noqa: E402

MODEL = "gemini-2.5-flash"


def judge_items(n: int, salt: str):
    from egotask.judges.base import JudgeItem

    return [JudgeItem(f"[{salt}] What does sign {i} say?", f"{i} mph", f"The sign says {i} mph.", "reading")
            for i in range(n)]


@dataclass
class Run:
    row: list
    verdicts: list
    stats: Counter  # the judge's requests, cache_hits, judged, failed


def build_judge(concurrency: int, cache_dir: Path):
    """The judge, configured here rather than through egotask's environment variables (which egotask
    reads once per process): each run gets its own concurrency and a fresh handle on the same cache."""
    from egotask.judges.cache import VerdictCache
    from egotask.judges.gemini import GeminiJudge
    from egotask.judges.llm import JudgeSettings

    settings = JudgeSettings(model=MODEL, concurrency=concurrency, rpm=None, timeout=60.0, max_attempts=6,
                             backoff=1.0)
    cache = VerdictCache(cache_dir / "judge_cache.sqlite3", mode="on")
    return GeminiJudge(judge_settings=settings, cache=cache)


def timed_run(name: str, items, concurrency: int, latency: float, cache_dir: Path) -> Run:
    judge = build_judge(concurrency, cache_dir)
    _ = judge.client  # client set-up (imports, connection pool) is a one-off, not throughput
    start, cpu = time.perf_counter(), time.process_time()
    verdicts = judge.judge_many(items, progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    judge.cache.close()
    failed = sum(v.failed for v in verdicts)
    rate = len(items) / seconds
    ideal = concurrency / latency if judge.stats["requests"] else None
    row = [name, len(items), concurrency, f"{seconds:.2f}", f"{rate:.1f}",
           "-" if ideal is None else f"{ideal:.1f}", "-" if ideal is None else f"{rate / ideal:.2f}",
           judge.stats["requests"], judge.stats["cache_hits"], failed, f"{1000 * cpu / len(items):.2f}"]
    return Run(row, verdicts, judge.stats)


def stored_verdicts(cache_dir: Path) -> int:
    from egotask.judges.cache import VerdictCache

    cache = VerdictCache(cache_dir / "judge_cache.sqlite3", mode="on")
    try:
        return len(cache)
    finally:
        cache.close()


def check_runs(checks: Checks, runs: dict[str, Run], stored: int) -> None:
    for name, run in runs.items():
        failed = [v for v in run.verdicts if v.failed]
        checks.expect(not failed, f"{name}: {len(failed)} of {len(run.verdicts)} verdicts failed, first: "
                                  f"{failed[0].error if failed else ''}")
        # the fake server's rule: the prediction contains the reference, so every answer is right
        wrong = [i for i, v in enumerate(run.verdicts) if not v.failed and v.pred != "yes"]
        checks.expect(not wrong, (f"{name}: {len(wrong)} items judged other than 'yes', first: item {wrong[0]} "
                                  f"{run.verdicts[wrong[0]].pred!r}") if wrong else "")
    for name in ("sequential", "concurrent"):
        n, stats = len(runs[name].verdicts), runs[name].stats
        checks.expect(stats["judged"] == n and stats["cache_hits"] == 0,
                      f"{name}: {stats['judged']} of {n} items judged by the server, "
                      f"{stats['cache_hits']} cache hits, expected {n} and 0 (fresh items)")
    rerun, first = runs["cache-hit rerun"], runs["concurrent"]
    checks.expect(rerun.stats["requests"] == 0,
                  f"cache-hit rerun: {rerun.stats['requests']} requests, expected 0")
    checks.expect(rerun.stats["cache_hits"] == len(rerun.verdicts),
                  f"cache-hit rerun: {rerun.stats['cache_hits']} cache hits, expected {len(rerun.verdicts)}")
    checks.expect(rerun.verdicts == first.verdicts, "cache-hit rerun: verdicts differ from the concurrent run's")
    fresh = len(runs["sequential"].verdicts) + len(first.verdicts)
    checks.expect(stored == fresh, f"the benchmark's cache file holds {stored} verdicts, expected {fresh} (one per "
                                   "item judged): verdicts went to another cache")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small runs (defaults below in brackets)")
    parser.add_argument("--items", type=int, default=None, help="items in the concurrent and cached runs (480 [48])")
    parser.add_argument("--concurrency", type=int, default=None, help="requests in flight (32 [8])")
    parser.add_argument("--latency", type=float, default=None,
                        help="seconds the fake server takes per request (0.2 [0.05])")
    parser.add_argument("--sequential-items", type=int, default=None, help="items in the sequential run (25 [5])")
    args = parser.parse_args()
    for arg, full, quick in (("items", 480, 48), ("concurrency", 32, 8), ("latency", 0.2, 0.05),
                             ("sequential_items", 25, 5)):
        if getattr(args, arg) is None:
            setattr(args, arg, quick if args.quick else full)

    with fake_server(args.latency, judge=True) as (url, _):
        # The google-genai client reads its endpoint and key from the environment itself.
        os.environ.update({"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "benchmark-key"})
        os.environ.pop("GOOGLE_API_KEY", None)  # the SDK would prefer it to GEMINI_API_KEY
        with tempfile.TemporaryDirectory() as cache:
            items = judge_items(args.items, "concurrent")
            runs = {
                "sequential": timed_run("sequential", judge_items(args.sequential_items, "sequential"), 1,
                                        args.latency, Path(cache)),
                "concurrent": timed_run("concurrent", items, args.concurrency, args.latency, Path(cache)),
                "cache-hit rerun": timed_run("cache-hit rerun", items, args.concurrency, args.latency, Path(cache)),
            }
            stored = stored_verdicts(Path(cache))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"fake Gemini server at {url}, {args.latency * 1000:.0f} ms per request; google-genai client; "
          f"{os.cpu_count()} CPU cores, load average {load}")
    print(tabulate([run.row for run in runs.values()],
                   headers=["run", "items", "concurrency", "seconds", "items/s", "ideal items/s",
                            "ratio", "requests", "cache hits", "failed", "client CPU ms/item"]))
    checks = Checks("judge_throughput --quick" if args.quick else "judge_throughput")
    check_runs(checks, runs, stored)
    if args.quick:
        print("(--quick: ratios on a tiny run are noise; they are not checked)")
    return checks.exit_code(announce_pass=args.quick)  # the full run's output stays the table


if __name__ == "__main__":
    sys.exit(main())
