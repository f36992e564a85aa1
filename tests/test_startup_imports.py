"""What a person runs first starts without torch: the CLI and its plugin listing, `egotask plugins`,
heuristic re-judging, and `lmms_eval`'s help, argument errors and preflight errors (each in a fresh
interpreter, since this test process has torch loaded already). Their times are measured by
benchmarks/startup.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from judge_fakes import make_items, write_samples

# Runs the code, then prints whether torch (and lmms-eval's evaluator) were imported.
PROBE = """
import sys
try:
{code}
except SystemExit as exc:
    print("exit", exc.code)
print("MODULES", {{"torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                  "evaluator": "lmms_eval.evaluator" in sys.modules}})
"""


def imported_after(code: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[dict, str]:
    body = "\n".join("    " + line for line in code.strip().splitlines())
    proc = subprocess.run([sys.executable, "-c", PROBE.format(code=body)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=120)
    line = next(line for line in proc.stdout.splitlines() if line.startswith("MODULES"))
    return eval(line.split(" ", 1)[1]), proc.stdout + proc.stderr  # noqa: S307 - our own probe's dict


def test_importing_the_cli_and_listing_plugins_imports_no_torch():
    modules, output = imported_after("""
from egotask.cli import build_parser
from egotask.plugins import provided_adapters, provided_judges
build_parser()
assert {"qwen3vl", "smolvlm2", "ocr_baseline"} <= {p.item.name for p in provided_adapters()}
assert "heuristic" in {p.item.name for p in provided_judges()}
""")
    assert modules == {"torch": False, "transformers": False, "evaluator": False}, output


def test_egotask_plugins_and_lmms_evals_model_listing_import_no_torch():
    modules, output = imported_after("""
from egotask.cli import main
main(["plugins"])
from egotask.lmms_bridge import model_manifests
assert {"qwen3vl", "smolvlm2"} <= {m.model_id for m in model_manifests()}
""")
    assert "pretrained (required)" in output
    assert modules == {"torch": False, "transformers": False, "evaluator": False}, output


def test_heuristic_rejudging_imports_no_torch(tmp_path):
    write_samples(tmp_path / "2026_samples_egotextvqa_indoor.jsonl", make_items(20))
    (tmp_path / "2026_results.json").write_text(json.dumps({"model_name": "", "config": {"model": "ocr_baseline"}}))
    modules, output = imported_after(f"""
from egotask.cli import main
assert main(["judge", {str(tmp_path)!r}, "--judge", "heuristic", "--no-cache"]) == 0
""")
    assert "ocr_baseline (2026)" in output  # the run column names the model
    assert modules == {"torch": False, "transformers": False, "evaluator": False}, output


def test_lmms_eval_help_argument_and_preflight_errors_import_no_torch(sample_env):
    for argv, expected in [
        (["--help"], "egotask additions"),
        (["--tasks", "egotextvqa_indoor", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--tasks", "egotextvqa_indoor", "--model", "qwen3vl"], "needs pretrained="),
        (["--tasks", "egotextvqa_indoor", "--model", "qwen3vI", "--model_args", "pretrained=x"], "unknown --model"),
        (["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args", "pretrained=x,max_frames=abc"],
         "--model_args max_frames='abc': expected a whole number from 1 to 256"),
        # pretrained=.: a folder that exists, so the weights check passes and the judge's is the one that fails
        (["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args", "pretrained=.", "--judge", "gemini"],
         "pass --judge heuristic"),
    ]:
        modules, output = imported_after(f"""
from egotask.lmms_entry import main
print("exit", main({argv!r}))
""", env={**sample_env, "GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""})
        assert expected in output, (argv, output)
        assert "exit 0" in output if argv == ["--help"] else "exit 0" not in output, (argv, output)
        assert modules == {"torch": False, "transformers": False, "evaluator": False}, (argv, output)
