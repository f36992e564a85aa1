"""The real `lmms_eval` entry with the Gemini judge, reached through google-genai at a fake server."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
from judge_fakes import KEY

from egotask.judges.cache import cache_dir
from egotask.judges.llm import PROBE_ITEM
from egotask.protocols import load_protocol
from egotask.reasoning import NO_FINAL_ANSWER
from egotask.testing.vendor import item_id

EGOTASK_JUDGE = load_protocol("egotask").judge
PROMPT_VERSION = EGOTASK_JUDGE.prompt_version

pytestmark = pytest.mark.slow


# Fields of a record's `generation` (record version 4) and of a run's summary of them that are the run's
# own clock readings, not properties of its answers.
TIMINGS = {"latency_s", "started", "decode_s", "span_s", "items_per_s", "latency_median_s", "latency_p95_s",
           "decode_s_per_item"}


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _untimed_text(report: str) -> str:
    """A report with its model-side timings (seconds and items a second) blanked."""
    return re.sub(r"\d+(\.\d+)? (items/s|s\b)", "T", report)


def _verdicts(run):
    return {(s["details"]["video_id"], s["details"]["question_id"]): s["details"]["verdict"]
            for s in run.samples["egotextvqa_indoor"]}


def _assert_no_key(run, folder):
    assert KEY not in run.output
    for root in (folder, cache_dir()):
        for path in root.rglob("*"):
            if path.is_file():
                assert KEY.encode() not in path.read_bytes(), path


def test_gemini_verdicts_survive_faults_and_reruns_pay_only_for_what_failed(sample_env, tiny_qwen, tmp_path,
                                                                             lmms_eval, fake_judge):
    state, lock = {"doomed": None, "flaky": True}, threading.Lock()

    def faults(item, attempt):
        if item["question"] == PROBE_ITEM.question:  # the preflight's test request goes through
            return None
        ident = item_id(item)
        with lock:
            state["doomed"] = state["doomed"] or ident
        if ident == state["doomed"]:  # one item's replies are unreadable (and quote the key) in run 1
            return "echo_key_text" if state["flaky"] else None
        return [None, "429", "echo_key", "500"][int(ident[:4], 16) % 4] if attempt == 1 else None

    server = fake_judge(faults=faults)
    args = ["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
            f"pretrained={tiny_qwen},max_frames=4", "--limit", "4", "--judge", "gemini"]
    env = {**sample_env, "EGOTASK_JUDGE_MAX_ATTEMPTS": "4"}

    first = lmms_eval(args, env, tmp_path / "run1")
    assert first.returncode == 3, first.output  # finished and written, but one item has no verdict
    assert "exit status 3: 1 item(s) could not be judged and 0 got no answer" in first.output
    details = first.results["results"]["egotextvqa_indoor"]["details,none"]
    assert (details["n"], details["n_judged"], details["n_failed"]) == (4, 3, 1)
    assert (details["judge"], details["judge_model"], details["prompt_version"]) == \
        ("gemini", "gemini-2.5-flash", PROMPT_VERSION)
    verdicts = _verdicts(first)
    judged = {k: v for k, v in verdicts.items() if v["pred"] is not None}
    failed = [v for v in verdicts.values() if v["pred"] is None]
    assert len(judged) == 3 and all(v["reason"].startswith("fake judge") for v in judged.values())
    assert failed[0]["score"] is None and "[redacted]" in failed[0]["raw"]
    assert "could not be judged" in first.output
    assert server.outcomes["echo_key_text"] == 3 and server.outcomes["ok"] >= 3
    _assert_no_key(first, tmp_path / "run1")

    state["flaky"] = False
    before = server.requests
    second = lmms_eval(args, env, tmp_path / "run2")
    assert second.returncode == 0, second.output
    assert server.requests - before == 2  # the preflight's test request, and only the item that failed
    again = _verdicts(second)
    assert all(v["pred"] is not None for v in again.values())
    assert {k: again[k] for k in judged} == judged

    before = server.requests
    third = lmms_eval(args, env, tmp_path / "run3")
    assert third.returncode == 0, third.output
    assert server.requests == before + 1  # an identical run makes only the preflight's test request
    assert _verdicts(third) == again
    _assert_no_key(third, tmp_path / "run3")


def test_gemini_without_key_fails_before_the_model_loads(sample_env, tmp_path, lmms_eval):
    missing_model = tmp_path / "no-such-checkpoint"
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={missing_model}", "--judge", "gemini"], sample_env)
    assert run.returncode != 0
    assert "GEMINI_API_KEY" in run.output and "--judge heuristic" in run.output
    assert "no-such-checkpoint" not in run.output  # the model was never opened


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("problem", ["unreachable", "rejected key", "unwritable cache"])
def test_a_wrong_judge_url_key_or_cache_stops_the_run_in_seconds_before_the_model_loads(sample_env, tmp_path,
                                                                                          lmms_eval, fake_judge,
                                                                                          problem):
    server = fake_judge(faults=(lambda item, attempt: "401") if problem == "rejected key" else None)
    env = dict(sample_env)
    if problem == "unreachable":
        env["GOOGLE_GEMINI_BASE_URL"] = _closed_port_url()
    if problem == "unwritable cache":
        (tmp_path / "file").write_text("")
        env["EGOTASK_CACHE_DIR"] = str(tmp_path / "file" / "cache")
    missing_model = tmp_path / "no-such-checkpoint"
    start = time.monotonic()
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={missing_model}", "--judge", "gemini"], env, tmp_path / "out")
    seconds = time.monotonic() - start
    assert run.returncode == 1, run.output
    expected = {"unreachable": "failed a test request to http://127.0.0.1", "rejected key": "401",
                "unwritable cache": "EGOTASK_CACHE_DIR"}[problem]
    assert expected in run.output and "no-such-checkpoint" not in run.output  # the model was never opened
    assert run.results is None and server.requests <= 1
    assert seconds < 60  # the interpreter and lmms-eval's imports, not an hour of retries


def test_deferred_judging_then_a_batch_gives_the_files_of_a_synchronous_run(sample_env, tiny_qwen, tmp_path,
                                                                           lmms_eval, fake_judge, capsys):
    """`lmms_eval --judge-mode defer` finishes without any judge (no key even), reports refuse the run, and
    `egotask judge --batch` then writes what a synchronous `lmms_eval` run writes."""
    import json
    import os

    from egotask.cli import main as egotask_main

    server = fake_judge()
    args = ["--tasks", "egotextvqa_indoor,egotempo_openqa", "--model", "qwen3vl", "--model_args",
            f"pretrained={tiny_qwen},max_frames=2", "--limit", "2", "--judge", "gemini"]
    no_key = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    deferred = lmms_eval([*args, "--judge-mode", "defer"], {**no_key, **sample_env}, tmp_path / "deferred")
    assert deferred.returncode == 0, deferred.output
    assert server.requests == 0 and not server.batch.created
    assert "verdict(s) pending (--judge-mode defer)" in deferred.output
    details = deferred.results["results"]["egotextvqa_indoor"]["details,none"]
    assert (details["n"], details["n_pending"], details["accuracy"]) == (2, 2, None)
    pending = deferred.samples["egotextvqa_indoor"][0]["details"]["verdict"]
    assert pending == {"pred": None, "score": None, "judge": "gemini", "judge_model": "gemini-2.5-flash",
                       "prompt_version": PROMPT_VERSION, "reason": "", "pending": True, "protocol": "egotask",
                       "prompt_sha256": EGOTASK_JUDGE.sha256}
    assert egotask_main(["report", str(tmp_path / "deferred")]) == 2  # not scored while pending

    assert egotask_main(["judge", str(tmp_path / "deferred"), "--judge", "gemini", "--batch", "--wait",
                         "--poll-interval", "0.05"]) == 0
    assert len(server.batch.created) == 1 and server.requests == 0

    synchronous = lmms_eval(args, {**sample_env, "EGOTASK_CACHE_DIR": str(tmp_path / "sync-cache")},
                            tmp_path / "synchronous")
    assert synchronous.returncode == 0, synchronous.output
    details = [row["details"] for rows in synchronous.samples.values() for row in rows]
    assert len(details) == 4
    assert all(d["verdict"]["judge"] in ("gemini", "gemini+exact", "gemini+abstain") for d in details)
    # the rest were settled by a shortcut rule, or had no final answer (the tiny model can stop inside
    # <think>); an item identical to one judged before is a cache hit
    asked = {(d["question"], d["answer"], d["prediction"]) for d in details
             if d["verdict"]["judge"] == "gemini" and d["verdict"]["reason"] != NO_FINAL_ANSWER}
    # the endpoint check, then each question that needed a request, as the run went
    assert server.requests == 1 + len(asked)
    (results_file,) = (tmp_path / "deferred").rglob("*_results.json")
    judged = json.loads(results_file.read_text())
    # Two runs generate the same answers in different times: everything but the timings is the same.
    assert _untimed(judged["results"]) == _untimed(synchronous.results["results"])
    for task, rows in synchronous.samples.items():
        (samples_file,) = (tmp_path / "deferred").rglob(f"*_samples_{task}.jsonl")
        assert _untimed([json.loads(line) for line in samples_file.read_text().splitlines()]) == _untimed(rows), task
    assert judged["egotask_judging"]["mode"] == "batch" and judged["egotask_judging"]["in_place"] is True

    capsys.readouterr()

    def report(folder) -> str:
        assert egotask_main(["report", str(folder), "--no-plots", "--bootstrap", "200"]) == 0
        return capsys.readouterr().out

    deferred_report, synchronous_report = report(tmp_path / "deferred"), report(tmp_path / "synchronous")
    assert "- Model side, tiny-qwen3vl0 (indoor): " in deferred_report, deferred_report[-3000:]
    assert _untimed_text(deferred_report) == _untimed_text(synchronous_report)
