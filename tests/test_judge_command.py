"""`egotask judge`: re-scoring saved predictions, agreement, resuming after a kill, and clear errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from judge_fakes import expected_verdicts, make_items, write_samples

from egotask import settings
from egotask.cli import main as egotask_main
from egotask.judges.agreement import agreement
from egotask.judges.cache import VerdictCache
from egotask.records import RECORD_VERSION, load_records
from egotask.scoring import summarize

RUN = "2026-01-02T03-04-05.123456"


def _run_folder(tmp_path, n=9):
    folder = tmp_path / "out" / "tiny-qwen"
    folder.mkdir(parents=True)
    samples = write_samples(folder / f"{RUN}_samples_egotextvqa_indoor.jsonl", make_items(n))
    (folder / f"{RUN}_results.json").write_text(json.dumps({"model_name": "tiny-qwen", "config": {"limit": n}}))
    return folder, samples


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rejudge_writes_results_beside_the_samples_with_summary_and_agreement(fake_judge, tmp_path, capsys):
    server = fake_judge()
    folder, samples = _run_folder(tmp_path)
    assert egotask_main(["judge", str(tmp_path / "out"), "--judge", "gemini"]) == 0
    tag = "rejudged-gemini-gemini-2.5-flash-egotask-judge-v2"
    new_samples = folder / f"{RUN}_{tag}_samples_egotextvqa_indoor.jsonl"
    results = json.loads((folder / f"{RUN}_{tag}_results.json").read_text())
    records = _read_jsonl(new_samples)
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in records] == expected_verdicts(make_items(9))
    assert all(r["verdict"]["judge"] == "gemini" for r in records)
    task = results["results"]["egotextvqa_indoor"]
    assert task["details,none"] == {**summarize(load_records(new_samples)), "missing_videos_skipped": 0}
    assert task["details,none"]["n_generation_failed"] == 0 and records[0]["version"] == RECORD_VERSION
    assert task["accuracy,none"] == pytest.approx(6 / 9) and task["n_failed,none"] == 0
    assert results["model_name"] == "tiny-qwen" and results["config"] == {"limit": 9}
    agree = results["egotask_rejudge"]["agreement"]["egotextvqa_indoor"]
    assert agree["saved_judge"]["judge"] == "heuristic" and agree["n_compared"] == 9
    assert {"cohen_kappa", "score_weighted_kappa", "score_spearman"} <= set(agree)
    assert "kappa" in capsys.readouterr().out
    # The original files are untouched, and a second run pays for nothing.
    assert _read_jsonl(samples)[0]["details"]["verdict"]["judge"] == "heuristic"
    assert egotask_main(["judge", str(samples), "--judge", "gemini"]) == 0
    # 9 items and the first run's test request; the rerun, all cached, needs no network at all
    assert server.requests == 10 and "requests: 0" in capsys.readouterr().out


def test_agreement_reports_kappa_and_score_correlation_leaving_failures_out():
    first = [{"pred": p, "score": s} for p, s in [("yes", 5), ("yes", 4), ("no", 1), ("no", 0), ("yes", 5)]]
    second = [{"pred": p, "score": s} for p, s in [("yes", 5), ("no", 2), ("no", 1), ("no", 0), (None, None)]]
    out = agreement(first, second)
    assert (out["n_compared"], out["n_left_out"]) == (4, 1)
    assert out["verdict_agreement"] == 0.75 and out["cohen_kappa"] == pytest.approx(0.5)
    assert out["score_spearman"] == pytest.approx(1.0)
    assert 0 < out["score_weighted_kappa"] < 1
    same = agreement([{"pred": "yes", "score": 5}] * 3, [{"pred": "yes", "score": 5}] * 3)
    assert same["verdict_agreement"] == 1.0 and same["cohen_kappa"] is None  # undefined: one label only


def test_unfinished_reasoning_is_wrong_without_asking_the_judge(fake_judge, tmp_path):
    server = fake_judge()
    samples = write_samples(tmp_path / f"{RUN}_samples_egotempo_openqa.jsonl", make_items(2), "egotempo_openqa")
    rows = _read_jsonl(samples)
    rows[0]["details"]["prediction"] = "<think>the sign says"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert egotask_main(["judge", str(samples), "--judge", "gemini"]) == 0
    (out,) = tmp_path.glob("*_rejudged-*_samples_egotempo_openqa.jsonl")
    first = _read_jsonl(out)[0]["verdict"]
    assert (first["pred"], first["score"], first["judge"]) == ("no", 0, "gemini")
    assert server.requests == 2  # the test request and the one item with an answer


def test_missing_key_and_bad_input_fail_before_any_judging(fake_judge, tmp_path, monkeypatch, capsys):
    server = fake_judge()
    _, samples = _run_folder(tmp_path)
    monkeypatch.delenv("GEMINI_API_KEY")
    assert egotask_main(["judge", str(samples), "--judge", "gemini"]) == 2
    err = capsys.readouterr().err
    assert "GEMINI_API_KEY" in err and "--judge heuristic" in err
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"details": {"verdict": {}}}\nnot json\n')
    assert egotask_main(["judge", str(samples), str(bad), "--judge", "gemini"]) == 2
    assert "bad.jsonl:1: missing field video_id" in capsys.readouterr().err  # the first bad line is named
    assert server.requests == 0 and not list(tmp_path.rglob("*rejudged*"))


@pytest.mark.slow  # two `egotask judge` subprocesses: about 11 s
def test_killed_run_loses_nothing_and_the_rerun_calls_only_for_unjudged_items(fake_judge, tmp_path):
    server = fake_judge(latency=0.25)
    items = make_items(24)
    samples = write_samples(tmp_path / f"{RUN}_samples_egotextvqa_indoor.jsonl", items)
    cmd = [sys.executable, "-m", "egotask.cli", "judge", str(samples), "--judge", "gemini", "--concurrency", "2"]
    proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = VerdictCache(mode="on")
    deadline = time.monotonic() + 120
    while len(cache) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    judged_before_kill = len(cache)
    assert 6 <= judged_before_kill < 24 and not list(tmp_path.glob("*rejudged*"))
    requests_before = server.requests

    rerun = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert server.requests - requests_before == 24 - judged_before_kill + 1  # and its test request
    (out,) = tmp_path.glob("*_rejudged-*_samples_*.jsonl")
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in _read_jsonl(out)] == expected_verdicts(items)


def test_items_that_failed_give_exit_status_3_after_everything_is_written(fake_judge, tmp_path, capsys):
    def faults(item, attempt):  # signs 0 and 1: replies that are never a verdict
        return "malformed" if item["question"].endswith(("sign 0?", "sign 1?")) else None

    fake_judge(faults=faults)
    folder, samples = _run_folder(tmp_path)
    assert egotask_main(["judge", str(samples), "--judge", "gemini"]) == 3
    err = capsys.readouterr().err
    assert "exit status 3: 2 item(s) could not be judged and 0 had no answer" in err
    (results,) = folder.glob("*_rejudged-*_results.json")
    summary = json.loads(results.read_text())["results"]["egotextvqa_indoor"]["details,none"]
    assert (summary["n"], summary["n_judged"], summary["n_failed"]) == (9, 7, 2) and str(results) in err
    assert len(_read_jsonl(next(folder.glob("*_rejudged-*_samples_*.jsonl")))) == 9


def test_an_unreachable_judge_or_unwritable_cache_stops_before_any_judging(fake_judge, tmp_path, monkeypatch,
                                                                           capsys):
    server = fake_judge()
    _, samples = _run_folder(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", closed)
    start = time.monotonic()
    assert egotask_main(["judge", str(samples), "--judge", "gemini"]) == 2
    assert f"failed a test request to {closed}: connection error" in capsys.readouterr().err
    assert time.monotonic() - start < 5
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
    cache = tmp_path / "cache"
    (cache / "judge_cache.sqlite3").mkdir(parents=True)
    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(cache))
    settings.reset()  # settings are read once per process
    assert egotask_main(["judge", str(samples), "--judge", "gemini"]) == 2
    assert "cannot open the judge cache" in capsys.readouterr().err
    assert server.requests == 0 and not list(tmp_path.rglob("*rejudged*"))


def _deferred_run(tmp_path, items):
    """What `lmms_eval --judge-mode defer --log_samples` writes for one task: pending verdicts, their
    sample metrics, and a results entry with no accuracy yet."""
    from egotask.records import Verdict
    from egotask.scoring import sample_metrics

    folder = tmp_path / "deferred" / "tiny-qwen"
    folder.mkdir(parents=True)
    samples = write_samples(folder / f"{RUN}_samples_egotextvqa_indoor.jsonl", items)
    pending = Verdict.deferred(judge="heuristic", judge_model="heuristic-v1", prompt_version="heuristic-v1")
    records = [r.with_verdict(pending) for r in load_records(samples)]
    samples.write_text("".join(json.dumps({"doc_id": i, "target": r.answer, **sample_metrics(r)}) + "\n"
                               for i, r in enumerate(records)))
    summary = summarize(records)
    entry = {"alias": "egotextvqa_indoor", "accuracy,none": None, "accuracy_stderr,none": "N/A",
             "accuracy_stderr_clt,none": "N/A", "score,none": None, "score_stderr_clt,none": "N/A",
             "n_judged,none": 0, "n_judged_stderr_clt,none": 0.0, "n_failed,none": 0,
             "details,none": {**summary, "missing_videos_skipped": 0}}
    (folder / f"{RUN}_results.json").write_text(json.dumps({"model_name": "tiny-qwen", "config": {"limit": 9},
                                                            "results": {"egotextvqa_indoor": entry}}))
    return folder, samples


def test_a_deferred_run_is_judged_in_place_as_a_synchronous_run_would_have_written_it(tmp_path, capsys):
    import numpy as np

    items = make_items(9)
    folder, samples = _deferred_run(tmp_path, items)
    from egotask.reports.collect import PendingVerdicts, collect_runs

    with pytest.raises(PendingVerdicts):
        collect_runs([folder])
    assert egotask_main(["judge", str(folder), "--judge", "heuristic"]) == 0
    assert "judged the deferred run in place" in capsys.readouterr().err
    assert not list(folder.glob("*rejudged*"))
    rows = _read_jsonl(samples)
    records = load_records(samples)
    assert not any(r.pending for r in records) and all(r.verdict.judge == "heuristic" for r in records)
    assert [row["accuracy"] for row in rows] == [int(r.verdict.pred == "yes") for r in records]
    assert rows[0]["doc_id"] == 0 and rows[0]["target"] == items[0].answer  # lmms-eval's own fields kept
    results = json.loads((folder / f"{RUN}_results.json").read_text())
    entry = results["results"]["egotextvqa_indoor"]
    accuracy = [row["accuracy"] for row in rows]
    assert entry["accuracy,none"] == pytest.approx(sum(accuracy) / 9) and entry["n_judged,none"] == 9
    assert entry["accuracy_stderr_clt,none"] == pytest.approx(np.std(accuracy, ddof=1) / np.sqrt(9))
    assert entry["details,none"] == {**summarize(records), "missing_videos_skipped": 0}
    assert results["egotask_judging"]["in_place"] and results["egotask_judging"]["mode"] == "synchronous"
    assert collect_runs([folder])[0].summary["n_pending"] == 0  # now it reports
    # Judged again by the same judge: still in place; by another: beside, as any re-judging.
    assert egotask_main(["judge", str(folder), "--judge", "heuristic"]) == 0
    assert not list(folder.glob("*rejudged*")) and _read_jsonl(samples) == rows


def test_rejudged_results_keep_the_runs_model_and_the_table_names_the_run(tmp_path, capsys):
    """An adapter without a checkpoint (ocr_baseline) gets `"model_name": ""` from lmms-eval; the
    re-judged results name its --model instead of "?", and so do reports of them."""
    from egotask.reports.collect import collect_runs

    folder = tmp_path / "out"
    folder.mkdir()
    write_samples(folder / f"{RUN}_samples_egotextvqa_indoor.jsonl", make_items(6))
    (folder / f"{RUN}_results.json").write_text(json.dumps(
        {"model_name": "", "config": {"model": "ocr_baseline", "model_args": "max_frames=4"}}))
    assert egotask_main(["judge", str(folder), "--judge", "heuristic", "--no-cache"]) == 0
    (rejudged,) = folder.glob("*_rejudged-*_results.json")
    assert json.loads(rejudged.read_text())["model_name"] == "ocr_baseline"
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[0] == "run" and f"ocr_baseline ({RUN})" in out
    (run,) = [r for r in collect_runs([rejudged], with_samples=False)]
    assert run.model == "ocr_baseline"


@pytest.mark.slow
def test_two_concurrent_in_place_judge_commands_on_one_deferred_run_pay_once(fake_judge, tmp_path):
    server = fake_judge(latency=0.2)
    items = make_items(40)
    folder, samples = _deferred_run(tmp_path, items)
    cmd = [sys.executable, "-m", "egotask.cli", "judge", str(folder), "--judge", "gemini", "--concurrency", "4"]
    procs = [subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    # 40 verdicts and at most one test request each; without the lock each command asked about all 40
    assert server.requests <= 42
    assert sum("another egotask judge is judging" in err for _, err in outputs) == 1
    records = load_records(samples)
    assert [(r.verdict.pred, r.verdict.score) for r in records] == expected_verdicts(items)
    assert not list(folder.glob("*rejudged*"))
