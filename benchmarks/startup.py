"""Start-up time of the commands a person meets first, and that none of them imports torch.

Each command runs in a fresh interpreter, as from a shell, through its module's ``__main__`` (what
the ``egotask`` and ``lmms_eval`` console scripts call):

- ``egotask plugins``, ``egotask --help``;
- ``egotask judge RUN --judge heuristic --no-cache`` on a saved run of 20 items (lmms-eval's files:
  ``<date>_results.json`` and a samples file), as after ``lmms_eval --log_samples``;
- ``lmms_eval --help``; an argument error (an unknown flag); two preflight errors: ``--model qwen3vl``
  without ``pretrained=``, and the gemini judge without a key.

For each it prints the wall time (median of ``--repeat`` runs), the peak memory of the process, and
whether torch was imported. Targets (issue #16): under 1 s for ``egotask plugins`` and for the
heuristic judge on 20 items.

Checks (both modes; they gate the exit status): every command exits as expected, says what it should
(the adapters listed; the re-judged results keep the run's model name; the errors name the fix), and
imports no torch. Times are printed against the targets but do not gate: on a shared machine they vary.

    .venv/bin/python benchmarks/startup.py            # 5 runs of each
    .venv/bin/python benchmarks/startup.py --quick    # 1 run of each; what CI runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from egotask.runs import find_runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402

N_ITEMS = 20
RUN_ID = "20260102_030405"
TARGET_S = {"egotask plugins": 1.0, "egotask judge --judge heuristic (20 items)": 1.0}

# Runs a module as `python -m` would, then records (at exit, after SystemExit too) whether torch was
# imported and the process's peak memory.
WRAPPER = """
import atexit, json, resource, runpy, sys
def _report(path=sys.argv[1]):
    with open(path, "w") as fh:
        json.dump({"torch": "torch" in sys.modules,
                   "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, fh)
atexit.register(_report)
module, sys.argv = sys.argv[2], [sys.argv[3], *sys.argv[4:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@dataclass
class Command:
    label: str
    module: str
    prog: str
    args: list[str]
    exit_code: int
    expect: tuple[str, ...]  # substrings of stdout + stderr
    env: dict[str, str] | None = None


@dataclass
class Measured:
    seconds: list[float]
    output: str
    exit_codes: set[int]
    torch: bool
    maxrss_mb: float


def write_saved_run(folder: Path) -> Path:
    """A saved lmms-eval run of 20 items, judged by the heuristic judge, as `lmms_eval --log_samples`
    writes it for an adapter without a checkpoint (its results say ``"model_name": ""``)."""
    from egotask.judges.base import JudgeItem
    from egotask.judges.heuristic import heuristic_verdict
    from egotask.records import SampleRecord

    folder.mkdir(parents=True, exist_ok=True)
    task = "egotextvqa_indoor"
    with open(folder / f"{RUN_ID}_samples_{task}.jsonl", "w") as fh:
        for i in range(N_ITEMS):
            answer = f"{60 + i} mph"
            prediction = [f"The speed limit is {answer}.", answer, "next to the car wash"][i % 3]
            item = JudgeItem(f"What is the speed limit on sign {i}?", answer, prediction, "hands-on")
            record = SampleRecord(task=task, benchmark=task, setting="indoor", video_id=f"v{i // 4}",
                                  question_id=str(i), question_type=item.question_type, question=item.question,
                                  answer=answer, prediction=prediction, verdict=heuristic_verdict(item),
                                  timestamp=10.0, visible=(0.0, 10.0))
            fh.write(json.dumps({"doc_id": i, "details": record.to_dict()}) + "\n")
    (folder / f"{RUN_ID}_results.json").write_text(json.dumps(
        {"model_name": "", "config": {"model": "ocr_baseline", "model_args": "max_frames=4", "limit": None}}))
    return folder


def commands(run_dir: Path) -> list[Command]:
    no_key = {"GEMINI_API_KEY": "", "GOOGLE_API_KEY": "", "EGOTASK_JUDGE": "gemini"}
    return [
        Command("egotask plugins", "egotask.cli", "egotask", ["plugins"], 0,
                ("qwen3vl", "smolvlm2", "heuristic", "pretrained (required)")),
        Command("egotask --help", "egotask.cli", "egotask", ["--help"], 0, ("plugins", "judge")),
        Command("egotask judge --judge heuristic (20 items)", "egotask.cli", "egotask",
                ["judge", str(run_dir), "--judge", "heuristic", "--no-cache"], 0,
                ("ocr_baseline", "kappa", f"{N_ITEMS}")),
        Command("lmms_eval --help", "egotask.lmms_entry", "lmms_eval", ["--help"], 0,
                ("--model_args", "egotask additions", "--judge NAME")),
        Command("lmms_eval: unknown flag", "egotask.lmms_entry", "lmms_eval", ["--tasks", "egotextvqa_indoor",
                "--no-such-flag"], 2, ("unrecognized arguments: --no-such-flag",)),
        Command("lmms_eval: no pretrained=", "egotask.lmms_entry", "lmms_eval",
                ["--tasks", "egotextvqa_indoor", "--model", "qwen3vl"], 1,
                ("needs pretrained=", "for example --model_args pretrained=")),
        Command("lmms_eval: judge without key", "egotask.lmms_entry", "lmms_eval",
                ["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args", "pretrained=."], 1,
                ("GEMINI_API_KEY", "--judge heuristic"), env=no_key),
    ]


def measure(cmd: Command, repeat: int, workdir: Path) -> Measured:
    seconds, codes, output, report = [], set(), "", {"torch": True, "maxrss_mb": float("nan")}
    env = {**os.environ, "EGOTASK_CACHE_DIR": str(workdir / "cache"), **(cmd.env or {})}
    for i in range(repeat):
        report_path = workdir / f"report-{i}.json"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", WRAPPER, str(report_path), cmd.module, cmd.prog, *cmd.args],
                              capture_output=True, text=True, env=env, cwd=workdir, timeout=300)
        seconds.append(time.perf_counter() - start)
        codes.add(proc.returncode)
        output = proc.stdout + proc.stderr
        if report_path.is_file():
            report = json.loads(report_path.read_text())
    return Measured(seconds, output, codes, report["torch"], report["maxrss_mb"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run of each command (checks only)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5; --quick: 1)")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    checks = Checks("startup")
    rows = []
    with tempfile.TemporaryDirectory(prefix="egotask-startup-") as tmp:
        workdir = Path(tmp)
        run_dir = write_saved_run(workdir / "output" / "ocr_baseline")
        for cmd in commands(run_dir):
            m = measure(cmd, repeat, workdir)
            median = statistics.median(m.seconds)
            target = TARGET_S.get(cmd.label)
            rows.append([cmd.label, f"{median:.2f}", f"{min(m.seconds):.2f}", f"{m.maxrss_mb:.0f}",
                         "yes" if m.torch else "no",
                         "-" if target is None else (f"< {target:g} s: " + ("met" if median < target else "NOT met"))])
            checks.expect(m.exit_codes == {cmd.exit_code},
                          f"{cmd.label}: exit {sorted(m.exit_codes)}, expected {cmd.exit_code}\n{m.output[-2000:]}")
            checks.expect(not m.torch, f"{cmd.label}: imported torch")
            for text in cmd.expect:
                checks.expect(text in m.output, f"{cmd.label}: output lacks {text!r}\n{m.output[-2000:]}")
        rejudged = [run.results_path for run in find_runs([run_dir]) if run.rejudged and run.has_results]
        checks.expect(len(rejudged) == 1, f"egotask judge wrote {len(rejudged)} results files, expected 1")
        if rejudged:
            data = json.loads(rejudged[0].read_text())
            checks.expect(data.get("model_name") == "ocr_baseline",
                          f"the re-judged results name the model {data.get('model_name')!r}, not 'ocr_baseline'")
    print(tabulate(rows, headers=["command", f"median s ({repeat} runs)", "min s", "peak MB", "torch imported",
                                  "target"]))
    return checks.exit_code()


if __name__ == "__main__":
    sys.exit(main())
