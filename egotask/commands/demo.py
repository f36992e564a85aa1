"""`egotask demo`: a real, offline lmms_eval run on generated clips, then the results table."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from egotask.atomic import write_text

DEMO_TASKS = "egotextvqa,egotempo_openqa"
DEMO_MODEL = "ocr_baseline"  # from plugins/egotask-ocr: reads the clips' scene text, so it scores well
OCR_ARGS = "max_frames=4,min_side=320"  # the clips are 160x96: no need to upscale them to 736 for OCR
SERVED_MODEL = "openai_vlm"  # served through egotask's local fake OpenAI-compatible server
SERVED_NAME = "egotask-fake-vlm"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="generate a small sample and evaluate a model on it end to end (offline)",
        description="Generate a few scene-text clips and annotation files in the benchmarks' formats, "
                    "run `lmms_eval` on egotextvqa_indoor, egotextvqa_outdoor and egotempo_openqa with "
                    "the offline heuristic judge, and print the results table. The default model is the "
                    "OCR baseline plugin (plugins/egotask-ocr), which reads the clips' text; "
                    "--model qwen3vl or smolvlm2 builds a tiny random-weight checkpoint instead, and "
                    "--model openai_vlm runs the served-model path against a local fake OpenAI-compatible "
                    "server started for the run (both score about zero: the point is the pipeline). Needs "
                    "no network or GPU; about a minute on 2 cores.")
    p.add_argument("--workdir", type=Path, default=Path("egotask_demo"),
                   help="folder for the sample data, the tiny model and lmms-eval's output "
                        "(default: ./egotask_demo)")
    p.add_argument("--model", default=DEMO_MODEL,
                   help=f"model adapter to run (default: {DEMO_MODEL}; `egotask plugins` lists them)")
    p.add_argument("--model-args", default=None,
                   help=f"--model_args for lmms_eval (default: {OCR_ARGS} for {DEMO_MODEL}; for qwen3vl "
                        "and smolvlm2, a tiny random-weight checkpoint built in the workdir; for "
                        f"{SERVED_MODEL}, the local fake server's base_url)")
    p.add_argument("--tasks", default=DEMO_TASKS, help=f"tasks to run (default: {DEMO_TASKS})")
    p.set_defaults(func=run)


def served_model_args(base_url: str) -> str:
    """``openai_vlm`` against the local fake server: frames sampled in this process's threads (the
    demo's few items do not need worker processes)."""
    return f"base_url={base_url}/v1,model={SERVED_NAME},max_frames=4,concurrency=4,frame_workers=0"


def default_model_args(model: str, workdir: Path, served_url: str | None = None) -> str:
    """Model args that run ``model`` offline: tiny checkpoints for the VLM adapters, the local fake
    server for the served one."""
    from egotask.fixtures import build_tiny_qwen3vl, build_tiny_smolvlm2
    from egotask.plugins import model_adapters

    adapters = model_adapters()
    names = {alias: a.name for a in adapters.values() for alias in (a.name, *a.aliases)}
    name = names.get(model)
    if name is None:
        hint = " Install it with: pip install -e plugins/egotask-ocr" if model == DEMO_MODEL else ""
        raise SystemExit(f"egotask demo: no model adapter {model!r} is installed (installed: "
                         f"{', '.join(sorted(adapters)) or 'none'}).{hint}")
    builders = {"qwen3vl": ("Qwen3-VL", build_tiny_qwen3vl), "smolvlm2": ("SmolVLM2", build_tiny_smolvlm2)}
    if name == DEMO_MODEL:
        return OCR_ARGS
    if name == SERVED_MODEL and served_url:
        return served_model_args(served_url)
    if name not in builders:
        raise SystemExit(f"egotask demo: give --model-args for {model!r}")
    label, build = builders[name]
    model_dir = workdir / f"tiny-{name}"
    if not (model_dir / "config.json").exists():
        print(f"egotask demo: building a tiny random-weight {label} in {model_dir}")
        build(model_dir)
    return f"pretrained={model_dir},max_frames=4"


def lmms_eval_program() -> str:
    """How to call egotask's `lmms_eval` from a shell: its name when that is the one on PATH (the venv is
    active), else its full path, so that the printed command works as pasted."""
    script = Path(sys.executable).with_name("lmms_eval")
    on_path = shutil.which("lmms_eval")
    if on_path and script.exists() and Path(on_path).resolve() == script.resolve():
        return "lmms_eval"
    return str(script) if script.exists() else f"{sys.executable} -m egotask.lmms_entry"


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        served_url = None
        if args.model == SERVED_MODEL and args.model_args is None:
            from egotask.testing.vendor import FakeVLMServer

            server = stack.enter_context(FakeVLMServer(keep_bodies=False))
            served_url = server.url
            print(f"egotask demo: a local fake OpenAI-compatible server answers at {served_url}/v1 for this run "
                  "(it names how many frames it was shown); with a real server, pass its base_url and model "
                  "in --model-args")
        return evaluate(args, served_url)


def _results_files(output: Path) -> set[Path]:
    """The results files of the lmms-eval runs under ``output`` (none before the first run)."""
    from egotask.runs import find_runs

    if not output.is_dir():
        return set()
    try:
        return {run.results_path for run in find_runs([output]) if run.has_results}
    except ValueError:  # a folder without runs yet
        return set()


def evaluate(args: argparse.Namespace, served_url: str | None) -> int:
    from egotask.fixtures import build_sample_data
    from egotask.reports.collect import collect_runs
    from egotask.reports.render import render_console, render_markdown
    from egotask.settings import child_env

    workdir = args.workdir.resolve()
    model_args = (args.model_args if args.model_args is not None
                  else default_model_args(args.model, workdir, served_url))
    print(f"egotask demo: writing the sample data set to {workdir / 'data'}")
    # The variables point the tasks at the sample; HF_HUB_OFFLINE keeps the Hub out of it.
    variables = {**build_sample_data(workdir / "data"), "HF_HUB_OFFLINE": "1"}
    output = workdir / "output"
    earlier = _results_files(output)
    lmms_args = ["--tasks", args.tasks, "--model", args.model, "--model_args", model_args, "--output_path",
                 str(output), "--log_samples", "--judge", "heuristic", "--verbosity", "WARNING"]
    shown = [f"{k}={shlex.quote(v)}" for k, v in variables.items()] + [lmms_eval_program(), *lmms_args]
    again = ("while this demo's server is up" if served_url else "again")
    print(f"egotask demo: running (the same command runs it {again}):\n  " + " ".join(
        shlex.quote(part) if i >= len(variables) else part for i, part in enumerate(shown)), flush=True)
    log = workdir / "lmms_eval.log"
    # All of lmms_eval's output, its tables, warnings and progress bars, goes to the log: the demo prints
    # one table, of this run, below.
    print(f"egotask demo: lmms_eval's output goes to {log} (about a minute)", flush=True)
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", "egotask.lmms_entry", *lmms_args], stdout=out,
                              stderr=subprocess.STDOUT, env=child_env(**variables))
    if proc.returncode != 0:
        print(log.read_text(encoding="utf-8")[-4000:], end="")
        print(f"egotask demo: lmms_eval failed (exit {proc.returncode}); its output is in {log}", file=sys.stderr)
        return proc.returncode
    new = sorted(_results_files(output) - earlier)
    if not new:
        print(f"egotask demo: lmms_eval wrote no results file under {output}; see {log}", file=sys.stderr)
        return 1
    runs = collect_runs(new)
    print("\n" + render_console(runs) + "\n")
    write_text(workdir / "results.md", render_markdown(runs))
    print(f"egotask demo: this run's table is also in {workdir / 'results.md'}; its results: "
          f"{', '.join(str(p) for p in new)}, the samples beside them. Earlier runs stay in {output}: "
          f"`egotask report {output}` reports them all.")
    return 0
