"""`egotask demo`: a real, offline lmms_eval run on generated clips, then the results table."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

DEMO_TASKS = "egotextvqa,egotempo_openqa"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="generate a small sample and evaluate a tiny model on it end to end (offline)",
        description="Generate a few scene-text clips and annotation files in the benchmarks' formats, "
                    "build a tiny random-weight Qwen3-VL, run `lmms_eval` on egotextvqa_indoor, "
                    "egotextvqa_outdoor and egotempo_openqa with the offline heuristic judge, and print "
                    "the results table. Needs no network or GPU; takes a minute or two on 2 cores.")
    p.add_argument("--workdir", type=Path, default=Path("egotask_demo"),
                   help="folder for the sample data, the tiny model and lmms-eval's output "
                        "(default: ./egotask_demo)")
    p.add_argument("--model", default="qwen3vl", help="model adapter to run (default: qwen3vl)")
    p.add_argument("--model-args", default=None,
                   help="--model_args for lmms_eval (default: the tiny Qwen3-VL built in the workdir)")
    p.add_argument("--tasks", default=DEMO_TASKS, help=f"tasks to run (default: {DEMO_TASKS})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from egotask.fixtures import build_sample_data, build_tiny_qwen3vl
    from egotask.reports.collect import collect_runs
    from egotask.reports.render import render_console, render_markdown

    workdir = args.workdir.resolve()
    print(f"egotask demo: writing the sample data set to {workdir / 'data'}")
    env = build_sample_data(workdir / "data")
    model_args = args.model_args
    if model_args is None:
        model_dir = workdir / "tiny-qwen3vl"
        if not (model_dir / "config.json").exists():
            print(f"egotask demo: building a tiny random-weight Qwen3-VL in {model_dir}")
            build_tiny_qwen3vl(model_dir)
        model_args = f"pretrained={model_dir},max_frames=4"
    output = workdir / "output"
    cmd = [sys.executable, "-m", "egotask.lmms_entry", "--tasks", args.tasks, "--model", args.model,
           "--model_args", model_args, "--output_path", str(output), "--log_samples", "--judge", "heuristic",
           "--verbosity", "WARNING"]
    print("egotask demo: running", " ".join(["lmms_eval", *cmd[3:]]), flush=True)
    proc = subprocess.run(cmd, env={**os.environ, **env, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        print(f"egotask demo: lmms_eval failed (exit {proc.returncode})", file=sys.stderr)
        return proc.returncode
    runs = collect_runs([output])
    print("\n" + render_console(runs) + "\n")
    (workdir / "results.md").write_text(render_markdown(runs))
    print(f"egotask demo: markdown table in {workdir / 'results.md'}, samples under {output}")
    return 0
