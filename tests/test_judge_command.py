"""`egotask judge`: re-scoring saved predictions, agreement, resuming after a kill, and clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from judge_fakes import expected_verdicts, make_items, write_samples

from egotask.cli import main as egotask_main
from egotask.judges.agreement import agreement
from egotask.judges.cache import VerdictCache
from egotask.records import load_records
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
    tag = "rejudged-gemini-gemini-2.5-flash-egotask-judge-v1"
    new_samples = folder / f"{RUN}_{tag}_samples_egotextvqa_indoor.jsonl"
    results = json.loads((folder / f"{RUN}_{tag}_results.json").read_text())
    records = _read_jsonl(new_samples)
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in records] == expected_verdicts(make_items(9))
    assert all(r["verdict"]["judge"] == "gemini" for r in records)
    task = results["results"]["egotextvqa_indoor"]
    assert task["details,none"] == {**summarize(load_records(new_samples)), "missing_videos_skipped": 0}
    assert task["details,none"]["n_generation_failed"] == 0 and records[0]["version"] == 2
    assert task["accuracy,none"] == pytest.approx(6 / 9) and task["n_failed,none"] == 0
    assert results["model_name"] == "tiny-qwen" and results["config"] == {"limit": 9}
    agree = results["egotask_rejudge"]["agreement"]["egotextvqa_indoor"]
    assert agree["saved_judge"]["judge"] == "heuristic" and agree["n_compared"] == 9
    assert {"cohen_kappa", "score_weighted_kappa", "score_spearman"} <= set(agree)
    assert "kappa" in capsys.readouterr().out
    # The original files are untouched, and a second run pays for nothing.
    assert _read_jsonl(samples)[0]["details"]["verdict"]["judge"] == "heuristic"
    assert egotask_main(["judge", str(samples), "--judge", "gemini"]) == 0
    assert server.requests == 9 and "requests: 0" in capsys.readouterr().out


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
    assert (first["pred"], first["score"], first["judge"]) == ("no", 0, "gemini") and server.requests == 1


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
    assert server.requests - requests_before == 24 - judged_before_kill
    (out,) = tmp_path.glob("*_rejudged-*_samples_*.jsonl")
    assert [(r["verdict"]["pred"], r["verdict"]["score"]) for r in _read_jsonl(out)] == expected_verdicts(items)


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
