"""`lmms_eval ... --plan` / `egotask plan`: the figures of a run before it runs, checked against the real run
that follows (the demo's data set, a tiny Qwen3-VL, the Gemini judge at a local fake server)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_lmms_eval

from egotask.fixtures import EGOTEMPO_SAMPLE, INDOOR_SAMPLE, OUTDOOR_SAMPLE
from egotask.judges.prices import estimate_cost
from egotask.plan import COST_DIGITS, round_cost
from egotask.reasoning import NO_FINAL_ANSWER
from egotask.testing.vendor import chars_usage

DEMO_TASKS = "egotextvqa,egotempo_openqa"  # egotask demo's
SIZES = {"egotextvqa_indoor": len(INDOOR_SAMPLE), "egotextvqa_outdoor": len(OUTDOOR_SAMPLE),
         "egotempo_openqa": len(EGOTEMPO_SAMPLE)}
N = sum(SIZES.values())


def snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under the folders, by path, with its bytes (a missing folder holds none)."""
    return {str(p): p.read_bytes() for folder in folders if folder.exists() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def plan(args: list[str], env: dict[str, str], command: str = "lmms_eval") -> subprocess.CompletedProcess:
    if command == "egotask":
        cmd = [sys.executable, "-m", "egotask.cli", "plan", *args]
    else:
        cmd = [sys.executable, "-m", "egotask.lmms_entry", *args]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600)


def plan_json(args: list[str], env: dict[str, str], watched: list[Path], table: bool = True) -> tuple[dict, str]:
    """The plan as JSON and (``table``) as the table, each checked to exit 0 and to leave ``watched``
    as it was."""
    before = snapshot(*watched)
    as_json = plan([*args, "--plan=json"], env)
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    shown = ""
    if table:
        proc = plan([*args], env, command="egotask")  # `egotask plan ARGS` is `lmms_eval ARGS --plan`
        assert proc.returncode == 0, proc.stdout + proc.stderr
        shown = proc.stdout
    assert snapshot(*watched) == before  # nothing written, nothing removed
    return json.loads(as_json.stdout), shown


def per_task(data: dict, name: str) -> dict[str, int]:
    return {t["task"]: t[name] for t in data["tasks"]}


def shown_cost(table: str, kind: str) -> float:
    return float(re.search(rf"\$([0-9.e-]+) {kind}\b", table)[1])


@pytest.mark.slow
def test_plan_counts_what_the_runs_that_follow_it_do_and_writes_nothing(sample_env, tiny_qwen, tmp_path,
                                                                        fake_judge, monkeypatch):
    server = fake_judge(usage=chars_usage)  # replies report the prompt at 4 characters a token, 20 tokens out
    cache = Path(os.environ["EGOTASK_CACHE_DIR"])
    hf_home = tmp_path / "hf-home"
    env = {**sample_env, "EGOTASK_PLAN_OUTPUT_TOKENS": "20", "HF_HOME": str(hf_home), "EGOTASK_JUDGE": "gemini"}
    output = tmp_path / "out"
    args = ["--tasks", DEMO_TASKS, "--model", "qwen3vl", "--model_args", f"pretrained={tiny_qwen},max_frames=4",
            "--verbosity", "WARNING"]
    watched = [cache, output, hf_home]

    # 1. Nothing cached: every item is generated (4 frames each) and may need a verdict.
    first, table = plan_json([*args, "--output_path", str(output), "--log_samples"], env, watched)
    assert not output.exists() and not hf_home.exists()
    assert per_task(first, "items") == SIZES
    assert per_task(first, "answers_cached") == dict.fromkeys(SIZES, 0)
    assert per_task(first, "to_generate") == SIZES
    assert per_task(first, "frames") == {t: 4 * n for t, n in SIZES.items()}
    assert per_task(first, "cuts_to_make") == dict.fromkeys(SIZES, 0)  # egotask's adapters read the intervals
    assert (first["requests"], first["preflight_requests"]) == (N + 1, 1)
    assert first["cost_sync"]["usd"] == pytest.approx(2 * first["cost_batch"]["usd"])
    header = table.split("\n-")[0].splitlines()[-2:]  # the table's two header lines
    assert all(word in " ".join(header) for word in ("items", "answers", "cached", "generate", "cuts", "frames",
                                                      "decode", "verdicts", "settled", "rule", "requests", "tokens"))
    assert re.search(rf"^total\s+{N}\s+0\s+{N}\s+0\s+{4 * N}\s+0\s+0\s+{N}\s+\d+\s+{20 * N}$", table, re.M), table
    prose = " ".join(table.split())  # the sentences are wrapped
    for figure in (f"judge requests: {N + 1} at most", "1 preflight test request", f"{20 * (N + 1)} out",
                   "synchronous", "batch", "checked 2026-12-01", "time: judging about",
                   "3 s each: assumed, EGOTASK_PLAN_LATENCY", "generation: not estimated"):
        assert figure in prose, table

    # 2. A deferred run generates exactly the answers planned, and asks the judge nothing.
    run = run_lmms_eval([*args[:-2], "--judge-mode", "defer"], env, output / "defer")
    assert run.returncode == 0, run.output
    assert server.requests == 0
    assert sum(len(s) for s in run.samples.values()) == N

    # 3. Now the answers are cached: the plan knows every prediction, so its requests and tokens are exact.
    second, table = plan_json([*args, "--plan-latency", "2"], env, watched)
    assert per_task(second, "answers_cached") == SIZES and second["tasks"] and \
        all(t["to_generate"] == 0 and t["frames"] == 0 for t in second["tasks"])
    assert all(t["requests_unknown"] == 0 for t in second["tasks"])
    assert "2 s each: assumed, --plan-latency" in " ".join(table.split())
    refused = run_lmms_eval([*args[:-2], "--max-cost", f"{second['cost_sync']['usd'] / 2:.10f}"], env, output / "no")
    assert refused.returncode == 2, refused.output
    assert "not started: the estimated judging cost $" in refused.output and "--max-cost" in refused.output
    assert server.requests == 0 and not (output / "no").exists()  # refused before the preflight's request

    run = run_lmms_eval([*args[:-2], "--max-cost", "1"], env, output / "sync")
    assert run.returncode == 0, run.output
    assert "is within --max-cost 1" in run.output
    assert server.requests == second["requests"]  # the preflight's test request included
    assert server.tokens_in == second["tokens_in"] and server.tokens_out == second["tokens_out"]
    real = estimate_cost("gemini", "gemini-2.5-flash", server.tokens_in, server.tokens_out)["usd"]
    for kind, batch in (("synchronous", False), ("batch", True)):
        shown = shown_cost(table, kind)
        cost = estimate_cost("gemini", "gemini-2.5-flash", server.tokens_in, server.tokens_out, batch=batch)["usd"]
        # within the stated rounding: half a unit of the last of COST_DIGITS significant figures
        assert abs(shown - cost) <= 0.5 * 10 ** (math.floor(math.log10(cost)) - COST_DIGITS + 1), (shown, cost)
    assert round_cost(real) == shown_cost(table, "synchronous")
    judged = [s["details"]["verdict"] for samples in run.samples.values() for s in samples]
    # settled without a request: a shortcut rule (gemini+exact, ...), or a reply stopped inside <think>
    by_rule = sum("+" in (v["judge"] or "") or v["reason"] == NO_FINAL_ANSWER for v in judged)
    assert second["requests"] - 1 + by_rule == N  # every item: a request or a rule
    assert sum(per_task(second, "settled_by_rule").values()) == by_rule

    # 4. After the run the caches hold everything: no answer to generate, no verdict to ask for.
    third, _ = plan_json(args, env, watched, table=False)
    assert per_task(third, "answers_cached") == SIZES
    assert sum(per_task(third, "verdicts_cached").values()) == second["requests"] - 1
    assert third["requests"] == 1 and third["preflight_requests"] == 1  # a run still makes its test request
    assert all(t["tokens_in"] == 0 for t in third["tasks"])


@pytest.mark.slow
def test_plan_of_the_demo_run_names_the_rule_based_judge_and_counts_every_item(sample_env, tmp_path):
    """`egotask demo`'s own run (the OCR baseline and the heuristic judge): nothing to pay for."""
    env = {**sample_env, "EGOTASK_JUDGE": "heuristic"}
    proc = plan(["--tasks", DEMO_TASKS, "--model", "ocr_baseline", "--model_args", "max_frames=4,min_side=320",
                 "--output_path", str(tmp_path / "out"), "--plan"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "judge: heuristic is rule-based: no requests, no tokens, no cost." in proc.stdout
    # total: items, answers cached, to generate, cuts to make, frames to decode, verdicts cached, settled by
    # rule, judge requests, tokens in and out
    assert re.search(rf"^total\s+{N}\s+0\s+{N}\s+0\s+{4 * N}\s+0\s+0\s+0\s+0\s+0$", proc.stdout, re.M), proc.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--plan=xml", "--max-cost=lots", "--plan-latency=0", "--max-cost=-1"])
def test_plan_and_max_cost_values_that_make_no_sense_are_usage_errors(flag, sample_env):
    proc = plan(["--tasks", "egotextvqa_indoor", "--model", "ocr_baseline", flag], sample_env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert flag.split("=")[0] in proc.stderr


def test_reading_the_caches_for_a_plan_leaves_their_files_as_they_were(tmp_path):
    from egotask.sqlite_store import keys_present, open_store, values_for

    path = tmp_path / "answers.sqlite3"
    writer = open_store(path, "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT)", "t", "h")
    writer.execute("INSERT INTO answers VALUES ('a', 'one')")
    # A writer still open: its -wal and -shm files exist, and are read through, read-only.
    assert values_for(path, "answers", ["a", "b"], "answer") == {"a": "one"}
    writer.close()  # every writer closed: the -wal is gone and must not come back
    before = snapshot(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.sqlite3"]
    assert keys_present(path, "answers", ["a", "b"]) == {"a"}
    assert keys_present(tmp_path / "none.sqlite3", "answers", ["a"]) == set()
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["answers.sqlite3"]
