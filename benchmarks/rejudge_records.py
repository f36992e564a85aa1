"""Re-judging real records files with `egotask judge`, against a fake Gemini server with a fixed
latency per request.

The input is what ``egotask import-legacy`` writes from the predecessor's files: by default
``Qwen3-VL-2B-Instruct_results.json`` of ``../shared/data/seed_results`` (685 EgoTextVQA predictions,
199 indoor and 486 outdoor), or the ``*.records.jsonl`` files given with ``--records``. The command
runs in this process (``egotask.cli.main``), with the real
google-genai client talking to ``egotask.testing.vendor`` in its own process; the imports
(about 6 s: torch through the plugins, google-genai, scipy and scikit-learn) are done before
timing. Two runs:

- re-judge: every prediction judged; the ideal rate is concurrency / latency items per second, and
  the ratio to it is the figure of merit (aim: >= 0.85). The time covers the whole command: reading
  the records, judging, writing the re-judged samples and results, printing the agreement;
- cache-hit rerun: the same command again; every verdict comes from the SQLite cache, no requests.

--quick runs the same on 48 generated records at concurrency 8 and 50 ms (no shared data needed) and
checks both runs: exit status 0, every record re-judged, by the protocol's shortcut rule where one
settles it (no request) and by gemini with the fake server's verdict otherwise, one request per item
asked, the outputs beside the input holding every record, and a rerun with no request. The checks gate the exit
status in both modes; the ratio does not (on a tiny run it is noise).

    .venv/bin/python benchmarks/rejudge_records.py            # 685 real records, concurrency 32, 200 ms
    .venv/bin/python benchmarks/rejudge_records.py --quick    # a few seconds; what CI runs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from egotask.runs import REJUDGED_MARK, find_runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402
from _servers import fake_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "seed_results" / "Qwen3-VL-2B-Instruct_results.json"


def generated_records(path: Path, n: int) -> Path:
    """``n`` records in import-legacy's shape (legacy verdicts), indoor and outdoor mixed."""
    from egotask.records import SampleRecord, Verdict, write_records
    from egotask.reports.legacy import LEGACY_JUDGE

    records = []
    for i in range(n):
        setting = "indoor" if i % 3 == 0 else "outdoor"
        video_id = f"{i:08x}-0000-4000-8000-000000000000" if setting == "indoor" else str(100 + i)
        ref = f"{20 + i} mph"
        pred = [f"the speed limit here is {ref}.", ref, "next to the car wash"][i % 3]
        records.append(SampleRecord(
            task=f"egotextvqa_{setting}", benchmark=f"egotextvqa_{setting}", setting=setting, video_id=video_id,
            question_id="1", question_type="description", question=f"What does sign {i} say?", answer=ref,
            prediction=pred, verdict=Verdict(pred="no", score=0, **LEGACY_JUDGE), model="generated"))
    write_records(records, path)
    return path


def imported_records(source: Path, folder: Path) -> list[Path]:
    from egotask.cli import main as egotask_main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = egotask_main(["import-legacy", str(source), "--output", str(folder)])
    if code != 0:
        raise SystemExit(f"egotask import-legacy {source} failed (exit {code})")
    return [run.records_file for run in find_runs([folder]) if run.records_file]


def run_judge(folder: Path, concurrency: int) -> tuple[int, float, str]:
    """``egotask judge FOLDER --judge gemini``: exit status, wall seconds, what it printed."""
    from egotask.cli import main as egotask_main

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = egotask_main(["judge", str(folder), "--judge", "gemini", "--concurrency", str(concurrency)])
    return code, time.perf_counter() - start, out.getvalue()


def requests_made(printed: str) -> tuple[int, int, int]:
    """(requests, cached verdicts reused, retries) from the command's closing line."""
    match = re.search(r"requests: (\d+), cached verdicts reused: (\d+), retries: (\d+)", printed)
    return (int(match[1]), int(match[2]), int(match[3])) if match else (-1, -1, -1)


def check_outputs(checks: Checks, folder: Path, inputs: list[Path], run: str) -> None:
    from egotask.judges import build_judge, settled_verdict
    from egotask.judges.rejudge import judge_item
    from egotask.records import load_records
    from egotask.testing.vendor import fake_verdict

    expected = sum(len(load_records(p)) for p in inputs)
    copies = [run for run in find_runs([folder]) if run.prefix.split(REJUDGED_MARK, 1)[-1].startswith("gemini-")
              and run.rejudged]
    outputs = [path for run in copies for path in run.files]
    records = [r for p in outputs for r in load_records(p)]
    checks.expect(len(records) == expected, f"{run}: {len(records)} re-judged records in {len(outputs)} file(s), "
                                            f"expected {expected}")
    judge = build_judge()
    # An item the protocol's shortcuts settle (an exact match, an abstention on both sides) gets the
    # shortcut's verdict without a request; every other item the fake server's.
    wanted = {(r.question, r.answer, r.prediction): (
        (v.judge, v.pred, v.score) if (v := settled_verdict(judge, judge_item(r))) is not None else
        ("gemini", *(fake_verdict({"question": r.question, "reference": r.answer, "prediction": r.prediction})[k]
                     for k in ("pred", "score")))) for r in records}
    wrong = [r for r in records if r.verdict.pred is None
             or (r.verdict.judge, r.verdict.pred, r.verdict.score) != wanted[(r.question, r.answer, r.prediction)]]
    checks.expect(not wrong, f"{run}: {len(wrong)} records without the fake server's verdict, first: "
                             f"{wrong[0].video_id}/{wrong[0].question_id} {wrong[0].verdict}" if wrong else "")
    results = [run.results_path for run in copies if run.has_results]
    n = sum(m["details,none"]["n"] for p in results for m in json.loads(p.read_text())["results"].values())
    checks.expect(n == expected, f"{run}: results files count {n} items, expected {expected}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="48 generated records, small settings (below in [])")
    parser.add_argument("--records", type=Path, nargs="+",
                        help="*.records.jsonl files to re-judge (default: import-legacy of "
                             f"{DEFAULT_SOURCE.name} from ../shared/data/seed_results)")
    parser.add_argument("--concurrency", type=int, default=None, help="requests in flight (32 [8])")
    parser.add_argument("--latency", type=float, default=None,
                        help="seconds the fake server takes per request (0.2 [0.05])")
    args = parser.parse_args()
    args.concurrency = args.concurrency or (8 if args.quick else 32)
    args.latency = args.latency or (0.05 if args.quick else 0.2)

    work = Path(tempfile.mkdtemp(prefix="egotask-rejudge-bench-"))
    try:
        with fake_server(args.latency, judge=True) as (url, _):
            # Set before egotask reads its settings (once per process): a fresh verdict cache, the fake server.
            os.environ.update({"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "benchmark-key",
                               "EGOTASK_CACHE_DIR": str(work / "cache"), "EGOTASK_JUDGE_CACHE": "on"})
            for var in ("GOOGLE_API_KEY", "EGOTASK_JUDGE_MODEL", "EGOTASK_JUDGE_RPM"):
                os.environ.pop(var, None)
            folder = work / "records"
            folder.mkdir()
            if args.records:
                inputs = [Path(shutil.copy(p, folder)) for p in args.records]
            elif args.quick:
                inputs = [generated_records(folder / "generated_results.records.jsonl", 48)]
            elif DEFAULT_SOURCE.is_file():
                inputs = imported_records(DEFAULT_SOURCE, folder)
            else:
                print(f"{DEFAULT_SOURCE} not found: pass --records FILES, or --quick", file=sys.stderr)
                return 2
            # Imports are a one-off, not throughput: the plugins' (torch, through the model adapters),
            # google-genai's and the agreement statistics' (scipy, scikit-learn) take about 6 s here. The
            # timed command builds its own judge and client.
            import scipy.stats  # noqa: F401
            import sklearn.metrics  # noqa: F401

            from egotask.judges import build_judge
            from egotask.judges.rejudge import items_to_judge
            from egotask.records import load_records
            from egotask.settings import configure

            configure(judge="gemini")
            _ = build_judge().client

            n = sum(len(load_records(p)) for p in inputs)
            # Requests go only to items no shortcut settles, one per distinct item.
            judge = build_judge()
            asked = len({judge.item_key(i) for p in inputs for i in items_to_judge(load_records(p), judge)})
            checks = Checks("rejudge_records --quick" if args.quick else "rejudge_records")
            rows = []
            for run in ("re-judge", "cache-hit rerun"):
                code, seconds, printed = run_judge(folder, args.concurrency)
                requests, hits, retries = requests_made(printed)
                checks.expect(code == 0, f"{run}: egotask judge exited {code}:\n{printed[-2000:]}")
                # The ideal: every request in flight at once, none waiting; records settled by a
                # shortcut cost no request, so the ideal records/s rises by records per request.
                ideal = args.concurrency / args.latency * n / max(asked, 1) if run == "re-judge" else None
                rate = n / seconds
                rows.append([run, n, args.concurrency, f"{seconds:.2f}", f"{rate:.1f}",
                             "-" if ideal is None else f"{ideal:.1f}", "-" if ideal is None else f"{rate / ideal:.2f}",
                             requests, hits, retries])
                check_outputs(checks, folder, inputs, run)
                if run == "re-judge":
                    # A retried request (a connection reset under load) is a request too, and is counted apart.
                    checks.expect(requests - retries == asked and hits == 0,
                                  f"{run}: {requests} requests ({retries} retries) and {hits} cache hits, expected "
                                  f"{asked} first requests ({n - asked} of {n} records settled by a shortcut) and "
                                  "0 cache hits")
                else:
                    checks.expect(requests == 0 and hits == asked, f"{run}: {requests} requests and {hits} cache "
                                                                   f"hits, expected 0 and {asked}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"egotask judge on {', '.join(p.name for p in inputs)}; fake Gemini server, {args.latency * 1000:.0f} ms "
          f"per request; google-genai client; {os.cpu_count()} CPU cores, load average {load}")
    print(f"{n - asked} of {n} records settled by the protocol's shortcuts without a request; {asked} asked")
    print(tabulate(rows, headers=["run", "records", "concurrency", "seconds", "records/s", "ideal records/s",
                                  "ratio", "requests", "cache hits", "retries"], disable_numparse=True))
    if args.quick:
        print("(--quick: the ratio on a tiny run is noise; it is not checked)")
    return checks.exit_code(announce_pass=args.quick)


if __name__ == "__main__":
    sys.exit(main())
