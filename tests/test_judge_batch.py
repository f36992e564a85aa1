"""`egotask judge --batch`: Gemini's Batch API through the real google-genai client, against the fake
server's batch and file endpoints (egotask/testing/batch.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from judge_fakes import expected_verdicts, make_items, write_samples

from egotask import settings
from egotask.cli import main as egotask_main
from egotask.judges.base import JudgeItem
from egotask.judges.batch import JOBS_FOLDER, BatchJob, BatchJudge, JobStore
from egotask.judges.cache import VerdictCache, cache_dir
from egotask.judges.gemini import GeminiJudge
from egotask.judges.prices import estimate_cost

RUN = "2026-01-02T03-04-05.123456"
TAG = "rejudged-gemini-gemini-2.5-flash-egotask-judge-v2"
FAST = ["--poll-interval", "0.02"]


def run_folder(tmp_path, items, name="out"):
    folder = tmp_path / name / "tiny-qwen"
    folder.mkdir(parents=True)
    samples = write_samples(folder / f"{RUN}_samples_egotextvqa_indoor.jsonl", items)
    (folder / f"{RUN}_results.json").write_text(json.dumps({"model_name": "tiny-qwen", "config": {"limit": None}}))
    return folder, samples


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def outputs(folder):
    samples = read_jsonl(folder / f"{RUN}_{TAG}_samples_egotextvqa_indoor.jsonl")
    results = json.loads((folder / f"{RUN}_{TAG}_results.json").read_text())
    return samples, results


def use_cache(monkeypatch, path):
    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(path))
    settings.reset()


@pytest.mark.slow  # 500 items judged twice, once synchronously: about 15 s
def test_500_items_go_in_one_inline_job_with_the_same_requests_and_verdicts_as_synchronous_judging(
        fake_judge, tmp_path, monkeypatch, capsys):
    server = fake_judge()
    items = make_items(500)
    folder, _ = run_folder(tmp_path, items)
    assert egotask_main(["judge", str(folder), "--judge", "gemini", "--batch", "--wait", *FAST]) == 0
    (job,) = server.batch.jobs.values()
    assert len(job.requests) == 500 and job.source == "inline" and server.requests == 0
    assert len({key for _, key in job.requests}) == 500  # every request has its own key
    batch_samples, batch_results = outputs(folder)
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in batch_samples] == expected_verdicts(items)
    assert len(VerdictCache(mode="on")) == 500  # in the same cache as synchronous verdicts
    assert "submitted batch job batches/fake-1 (500 items, inline)" in capsys.readouterr().err

    # The same predictions judged synchronously, with an empty cache, in a copy of the folder.
    use_cache(monkeypatch, tmp_path / "sync-cache")
    copy = tmp_path / "sync" / "tiny-qwen"
    shutil.copytree(folder, copy)
    for old in copy.glob(f"*{TAG}*"):
        old.unlink()
    assert egotask_main(["judge", str(copy), "--judge", "gemini"]) == 0
    assert server.requests == 1 + 500  # the endpoint check, then the 500 items
    sync_samples, sync_results = outputs(copy)
    assert sync_samples == batch_samples  # the same verdicts, reasons and provenance, item for item
    assert sync_results["results"] == batch_results["results"]
    # One definition of the request: what the batch carried is what the synchronous call sent.
    sent = server.bodies[-1]
    (batched,) = [request for request, _ in job.requests if request["contents"] == sent["contents"]]
    for field in ("systemInstruction", "generationConfig"):
        assert batched[field] == sent[field], field
    assert batched["generationConfig"]["responseJsonSchema"]["required"] == ["pred", "score"]


def test_requests_over_the_inline_limit_go_as_a_jsonl_file_through_the_files_api(fake_judge, tmp_path):
    server = fake_judge()
    items = make_items(30)
    folder, _ = run_folder(tmp_path, items)
    assert egotask_main(["judge", str(folder), "--judge", "gemini", "--batch", "--wait", *FAST,
                         "--batch-inline-limit", "20000"]) == 0
    (job,) = server.batch.jobs.values()
    (upload,) = server.batch.uploads
    assert job.source == "file" and len(job.requests) == 30
    lines = [json.loads(line) for line in server.batch.files[upload].decode().splitlines()]
    assert {line["key"] for line in lines} == {key for _, key in job.requests}
    samples, results = outputs(folder)
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in samples] == expected_verdicts(items)
    assert results["egotask_judging"]["batch_jobs"] == [{"name": job.name, "mode": "file",
                                                        "state": "JOB_STATE_SUCCEEDED", "items": 30, "failed": 0}]


def test_results_record_mode_requests_tokens_and_the_estimated_cost(fake_judge, tmp_path, monkeypatch):
    fake_judge()
    folder, _ = run_folder(tmp_path, make_items(30))
    assert egotask_main(["judge", str(folder), "--judge", "gemini", "--batch", "--wait", *FAST]) == 0
    judging = outputs(folder)[1]["egotask_judging"]
    # The fake's usage_metadata: 100 tokens in, 20 out per reply.
    assert (judging["mode"], judging["requests"], judging["tokens_in"], judging["tokens_out"]) == \
        ("batch", 30, 3000, 600)
    cost = judging["estimated_cost"]
    assert cost["batch_discount"] == 0.5 and cost["usd"] == pytest.approx((3000 * 0.30 + 600 * 2.50) / 1e6 * 0.5)
    assert cost == estimate_cost("gemini", "gemini-2.5-flash", 3000, 600, batch=True)

    use_cache(monkeypatch, tmp_path / "sync-cache")
    assert egotask_main(["judge", str(folder), "--judge", "gemini"]) == 0
    judging = outputs(folder)[1]["egotask_judging"]
    assert (judging["mode"], judging["requests"], judging["tokens_in"], judging["tokens_out"]) == \
        ("synchronous", 30, 3100, 620)  # and the endpoint check's request before them: it is paid for too
    assert judging["estimated_cost"]["usd"] == pytest.approx((3100 * 0.30 + 620 * 2.50) / 1e6)
    assert estimate_cost("gemini", "no-such-model", 1, 1)["usd"] is None


def test_a_job_that_fails_part_way_lists_its_failures_which_are_then_sent_synchronously(fake_judge, tmp_path, capsys):
    items = make_items(30)
    broken = items[3].question
    # The job answers 10 requests (one of them with an item error), then fails.
    server = fake_judge(batch_fail_after=10, batch_faults=lambda item: "error" if item["question"] == broken else None)
    folder, _ = run_folder(tmp_path, items)
    assert egotask_main(["judge", str(folder), "--judge", "gemini", "--batch", "--wait", *FAST]) == 3  # some failed
    (job,) = server.batch.jobs.values()
    assert job.state == "BATCH_STATE_FAILED"
    samples, results = outputs(folder)
    summary = results["results"]["egotextvqa_indoor"]["details,none"]
    assert (summary["n_judged"], summary["n_failed"]) == (9, 21)
    errors = [r["verdict"].get("error") or "" for r in samples]
    assert "batch item error: 500 injected batch item fault" in errors[3]
    assert all("ended JOB_STATE_FAILED without a response" in e for e in errors[10:])
    assert results["egotask_judging"]["failed_in_batch"] == 21
    out = capsys.readouterr().out
    assert "WARNING: 21 item(s) could not be judged" in out and "v0/3: batch item error" in out
    assert "without --batch (or with --resend-failed)" in out

    # Re-sent synchronously: only the 21, and the files end fully judged.
    assert egotask_main(["judge", str(folder), "--judge", "gemini"]) == 0
    assert server.requests == 1 + 21 and len(server.batch.created) == 1  # the endpoint check, then the 21
    samples, _ = outputs(folder)
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in samples] == expected_verdicts(items)


def test_resend_failed_sends_the_batch_failures_synchronously_in_the_same_command(fake_judge, tmp_path):
    items = make_items(12)
    server = fake_judge(batch_faults=lambda item: "malformed" if item["question"] == items[5].question else None)
    folder, _ = run_folder(tmp_path, items)
    assert egotask_main(["judge", str(folder), "--judge", "gemini", "--batch", "--wait", "--resend-failed",
                         *FAST]) == 0
    samples, results = outputs(folder)
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in samples] == expected_verdicts(items)
    judging = results["egotask_judging"]
    assert (judging["failed_in_batch"], judging["resent_synchronously"], server.requests) == (1, 1, 1)
    assert judging["requests"] == 13


def test_without_wait_the_command_returns_the_job_name_and_state_and_a_rerun_collects_it(fake_judge, tmp_path,
                                                                                         capsys):
    server = fake_judge(batch_hold=True)
    items = make_items(6)
    folder, _ = run_folder(tmp_path, items)
    args = ["judge", str(folder), "--judge", "gemini", "--batch"]
    assert egotask_main(args) == 0
    out = capsys.readouterr().out
    assert "batch job batches/fake-1: JOB_STATE_PENDING (6 items" in out and "Run the same command again" in out
    assert not list(folder.glob(f"*{TAG}*"))  # nothing written before the verdicts are in
    assert egotask_main(args) == 0  # still held: polled, not submitted again
    assert len(server.batch.created) == 1 and "JOB_STATE_PENDING" in capsys.readouterr().out
    server.batch.release()
    assert egotask_main(args) == 0
    assert len(server.batch.created) == 1
    samples, _ = outputs(folder)
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in samples] == expected_verdicts(items)


def test_a_submission_cut_off_before_its_name_was_kept_is_found_by_its_display_name(fake_judge):
    """Killed after the API created the job but before egotask wrote its name down: the job file holds
    only the items, and the next run adopts the API's job of that display name instead of a second one."""
    server = fake_judge(batch_hold=True)
    judge = GeminiJudge()
    items = make_items(4)
    store = JobStore()
    job = BatchJob(id="cut-off", judge=judge.describe(), mode="inline", created="2026-01-01T00:00:00+00:00",
                   items={judge.item_key(i): [i.question, i.answer, i.prediction, i.question_type] for i in items})
    store.save(job)
    from google.genai import types

    judge.client.batches.create(model=judge.model, src=[types.InlinedRequest(contents="x", metadata={"key": "k"})],
                                config=types.CreateBatchJobConfig(display_name=job.display_name))
    outcome = BatchJudge(judge, poll_interval=0.01, progress=False).run(items)
    assert len(server.batch.created) == 1 and not outcome.done
    assert [j.name for j in outcome.jobs] == ["batches/fake-1"] and store.jobs()[0].name == "batches/fake-1"


def test_batch_needs_the_gemini_judge_and_the_cache(fake_judge, tmp_path, capsys):
    fake_judge()
    folder, _ = run_folder(tmp_path, make_items(3))
    assert egotask_main(["judge", str(folder), "--judge", "heuristic", "--batch"]) == 2
    assert "--batch needs the gemini judge" in capsys.readouterr().err
    assert egotask_main(["judge", str(folder), "--judge", "gemini", "--batch", "--no-cache"]) == 2
    assert "cannot run with the cache off" in capsys.readouterr().err
    assert egotask_main(["judge", str(folder), "--judge", "gemini", "--wait"]) == 2
    assert "--wait and --resend-failed go with --batch" in capsys.readouterr().err


def test_unfinished_reasoning_is_wrong_without_a_batch_request(fake_judge, tmp_path):
    server = fake_judge()
    items = [JudgeItem("q?", "a", "<think>still thinking", "t"), *make_items(2)]
    folder, _ = run_folder(tmp_path, items)
    assert egotask_main(["judge", str(folder), "--judge", "gemini", "--batch", "--wait", *FAST]) == 0
    (job,) = server.batch.jobs.values()
    assert len(job.requests) == 2
    first = outputs(folder)[0][0]["verdict"]
    assert (first["pred"], first["score"], first["judge"]) == ("no", 0, "gemini")


@pytest.mark.slow  # three `egotask judge` subprocesses: about 30 s
def test_killed_between_submit_and_completion_the_rerun_polls_the_same_job_and_never_submits_twice(fake_judge,
                                                                                                     tmp_path):
    server = fake_judge(batch_hold=True)
    items = make_items(40)
    folder, _ = run_folder(tmp_path, items)
    cmd = [sys.executable, "-m", "egotask.cli", "judge", str(folder), "--judge", "gemini", "--batch", "--wait",
           "--poll-interval", "0.1"]
    proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while server.batch.gets < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # submitted, and polling
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(server.batch.created) == 1 and server.batch.gets >= 2
    (kept,) = (cache_dir() / JOBS_FOLDER).glob("*.json")
    assert json.loads(kept.read_text())["name"] == "batches/fake-1" and not list(folder.glob(f"*{TAG}*"))

    server.batch.release()
    rerun = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert len(server.batch.created) == 1 and server.requests == 0
    samples, results = outputs(folder)
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in samples] == expected_verdicts(items)
    assert results["egotask_judging"]["batch_jobs"][0]["name"] == "batches/fake-1"
    # Once collected, the job is done with: judging the same items again costs nothing at all.
    again = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and len(server.batch.created) == 1 and "requests: 0" in again.stdout
