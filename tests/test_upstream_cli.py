"""egotask's `lmms_eval` reads its arguments with lmms-eval's own parser, compiled from lmms-eval's
source without importing its evaluator: the same parser, in a fraction of the time. And upstream
`lmms-eval`, which has no preflight, still ends with why nothing was evaluated when the judge lacks a key."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from egotask import upstream_cli
from egotask.paths import tasks_path

SAMPLE_ARGV = ["lmms_eval", "--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args", "pretrained=x",
               "--seed", "1,2,3,4", "--limit", "5", "--batch_size", "2", "--log_samples", "--verbosity", "WARNING"]


@pytest.mark.slow  # imports lmms-eval's evaluator (torch, transformers): about 10 s
def test_the_compiled_parser_is_lmms_evals_own(monkeypatch):
    from lmms_eval.__main__ import parse_eval_args

    monkeypatch.setattr(sys, "argv", SAMPLE_ARGV)
    ours_parser, ours = upstream_cli.compile_parser_function()()
    theirs_parser, theirs = parse_eval_args()
    assert vars(ours) == vars(theirs) and ours.seed == [1, 2, 3, 4]
    assert ours_parser.format_help() == theirs_parser.format_help()


def test_a_parser_that_needs_an_expensive_import_is_not_compiled(tmp_path, monkeypatch):
    (tmp_path / "fake_upstream.py").write_text(textwrap.dedent("""
        import argparse
        import numpy as np

        def _helper(value):
            return np.float64(value)

        def parse_eval_args():
            parser = argparse.ArgumentParser()
            parser.add_argument("--x", type=_helper)
            return parser, parser.parse_args()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(upstream_cli, "UPSTREAM_MODULE", "fake_upstream")
    with pytest.raises(LookupError, match="needs 'np'"):
        upstream_cli.compile_parser_function()


@pytest.mark.slow  # upstream lmms-eval imports everything, then retries the dataset load 5 times
def test_upstream_lmms_eval_without_a_judge_key_ends_with_the_reason_and_the_variable(sample_env):
    env = {**os.environ, **sample_env, "EGOTASK_JUDGE": "gemini", "GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""}
    proc = subprocess.run([sys.executable, "-m", "lmms_eval", "--include_path", str(tasks_path()), "--tasks",
                           "egotextvqa_indoor", "--model", "ocr_baseline", "--limit", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("egotask: nothing was evaluated: the gemini judge needs an API key"), proc.stderr[-3000:]
    assert "set EGOTASK_JUDGE=heuristic" in last and "--judge" not in last  # upstream has no --judge
