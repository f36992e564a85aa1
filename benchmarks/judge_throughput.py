"""Judge throughput against a fake Gemini server with a fixed latency per request.

The real google-genai client talks to ``egotask.judges.fake_server`` (run in its own process, so its
work does not compete with the client for the GIL). Three runs, each in the same output:

- sequential: one request in flight (the predecessor's design, without its 8 s sleep);
- concurrent: ``--concurrency`` requests in flight over ``--items`` items; the ideal is
  concurrency / latency items per second, and the ratio to it is the figure of merit (aim: >= 0.85);
- cache-hit rerun: the same items again; every verdict comes from the SQLite cache, no requests.

"client CPU ms/item" is the judging process's CPU time per item (mostly google-genai building the
request and parsing the reply). At concurrency 32 and 200 ms the client needs about 160 x that much
CPU per second, so on a small, busy machine the ratio is bounded by the CPU it gets, not by waiting.

    .venv/bin/python benchmarks/judge_throughput.py            # 480 items, concurrency 32, 200 ms
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from tabulate import tabulate


def judge_items(n: int, salt: str):
    from egotask.judges import JudgeItem

    return [JudgeItem(f"[{salt}] What does sign {i} say?", f"{i} mph", f"The sign says {i} mph.", "reading")
            for i in range(n)]


def timed_run(name: str, items, concurrency: int, latency: float) -> list:
    from egotask.judges import build_judge

    os.environ["EGOTASK_JUDGE_CONCURRENCY"] = str(concurrency)
    judge = build_judge("gemini")
    judge._connect()  # client set-up (imports, connection pool) is a one-off, not throughput
    start, cpu = time.perf_counter(), time.process_time()
    verdicts = judge.judge_many(items, progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    failed = sum(v.failed for v in verdicts)
    rate = len(items) / seconds
    ideal = concurrency / latency if judge.stats["requests"] else None
    return [name, len(items), concurrency, f"{seconds:.2f}", f"{rate:.1f}",
            "-" if ideal is None else f"{ideal:.1f}", "-" if ideal is None else f"{rate / ideal:.2f}",
            judge.stats["requests"], judge.stats["cache_hits"], failed, f"{1000 * cpu / len(items):.2f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=480, help="items in the concurrent and cached runs")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the fake server takes per request")
    parser.add_argument("--sequential-items", type=int, default=25, help="items in the sequential run")
    args = parser.parse_args()

    server = subprocess.Popen([sys.executable, "-m", "egotask.judges.fake_server", "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as cache:
            os.environ.update({"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "benchmark-key",
                               "EGOTASK_CACHE_DIR": cache, "EGOTASK_JUDGE_CACHE": "on"})
            for var in ("GOOGLE_API_KEY", "EGOTASK_JUDGE_MODEL", "EGOTASK_JUDGE_RPM"):
                os.environ.pop(var, None)
            items = judge_items(args.items, "concurrent")
            rows = [
                timed_run("sequential", judge_items(args.sequential_items, "sequential"), 1, args.latency),
                timed_run("concurrent", items, args.concurrency, args.latency),
                timed_run("cache-hit rerun", items, args.concurrency, args.latency),
            ]
    finally:
        server.terminate()
        server.wait()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"fake Gemini server at {url}, {args.latency * 1000:.0f} ms per request; google-genai client; "
          f"{os.cpu_count()} CPU cores, load average {load}")
    print(tabulate(rows, headers=["run", "items", "concurrency", "seconds", "items/s", "ideal items/s",
                                  "ratio", "requests", "cache hits", "failed", "client CPU ms/item"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
