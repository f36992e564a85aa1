"""The checks before any model loads: one real request to the judge, writable caches and output
folders; and the exit status that says items failed. The real google-genai / openai clients reach a
local fake server, or a port where nothing listens."""

from __future__ import annotations

import socket
import time

import pytest
from judge_fakes import make_items

from egotask import settings
from egotask.judges import JudgeNotReady, build_judge
from egotask.lmms_entry import EXIT_ITEMS_FAILED, failure_message, item_failures
from egotask.preflight import PreflightError, preflight

TASKS = ["egotextvqa_indoor"]


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def gemini_run(sample_env, fake_judge, monkeypatch):
    """A run's environment with the Gemini judge at a fake server; returns the server."""
    monkeypatch.setenv("EGOTASK_JUDGE", "gemini")
    return fake_judge()


def test_a_working_judge_endpoint_passes_with_one_request(gemini_run):
    preflight(TASKS)
    assert gemini_run.requests == 1


@pytest.mark.parametrize("backend", ["gemini", "openai"])
@pytest.mark.parametrize("fault, expected", [
    ("401", "401"),
    ("403", "403"),
    ("invalid_key", "API key not valid"),
    ("404", "404"),  # e.g. an unknown model
])
def test_a_rejected_key_or_model_stops_the_preflight_at_once(gemini_run, monkeypatch, backend, fault, expected):
    if backend == "openai" and fault == "invalid_key":
        pytest.skip("Gemini's way of refusing a key")
    monkeypatch.setenv("EGOTASK_JUDGE", backend)
    gemini_run.faults = lambda item, attempt: fault
    start = time.monotonic()
    with pytest.raises(JudgeNotReady, match=f"{backend} judge .* failed a test request to http://127.0.0.1") as err:
        preflight(TASKS)
    assert expected in str(err.value) and "--judge heuristic" in str(err.value)
    assert ("GEMINI_API_KEY" if backend == "gemini" else "OPENAI_API_KEY") in str(err.value)
    assert gemini_run.requests == 1 and time.monotonic() - start < 5  # not retried


@pytest.mark.parametrize("backend, url_var, url", [
    ("gemini", "GOOGLE_GEMINI_BASE_URL", "closed"),
    ("gemini", "GOOGLE_GEMINI_BASE_URL", "not a url"),
    ("openai", "OPENAI_BASE_URL", "closed"),
    ("openai", "OPENAI_BASE_URL", "localhost:8000/v1"),  # no scheme
])
def test_an_unreachable_or_malformed_endpoint_stops_the_preflight_in_seconds(gemini_run, monkeypatch, backend,
                                                                              url_var, url):
    monkeypatch.setenv("EGOTASK_JUDGE", backend)
    monkeypatch.setenv(url_var, _closed_port_url() + ("/v1" if backend == "openai" else "") if url == "closed"
                       else url)
    start = time.monotonic()
    with pytest.raises(JudgeNotReady, match=f"failed a test request .*{url_var}"):
        preflight(TASKS)
    assert time.monotonic() - start < 5 and gemini_run.requests == 0


def test_a_malformed_endpoint_is_fatal_while_judging_too(fake_judge, monkeypatch):
    fake_judge()
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "not a url")
    judge = build_judge("gemini")
    verdicts = judge.judge_many(make_items(6))
    assert all(v.failed and "malformed" in v.error and "GOOGLE_GEMINI_BASE_URL" in v.error for v in verdicts)
    assert judge.stats["requests"] <= 6 and judge.stats["retries"] == 0  # never retried


def test_transient_server_errors_at_the_preflight_are_tried_again(gemini_run):
    gemini_run.faults = lambda item, attempt: "503" if attempt == 1 else None
    preflight(TASKS)
    assert gemini_run.requests == 2


def test_an_unwritable_cache_folder_stops_the_preflight(gemini_run, tmp_path, monkeypatch):
    # A file where the folder should be: unwritable for root too (tests may run as root).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(blocker / "cache"))
    settings.reset()
    with pytest.raises(PreflightError, match=f"EGOTASK_CACHE_DIR.* {blocker}/cache is not a writable folder"):
        preflight(TASKS)
    assert gemini_run.requests == 0  # nothing was asked either


def test_a_verdict_cache_that_cannot_be_opened_stops_the_preflight(gemini_run, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "judge_cache.sqlite3").mkdir(parents=True)  # the cache file's name taken by a folder
    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(cache))
    settings.reset()
    with pytest.raises(PreflightError, match="cannot open the judge cache .*judge_cache.sqlite3.*EGOTASK_CACHE_DIR"):
        preflight(TASKS)
    monkeypatch.setenv("EGOTASK_JUDGE_CACHE", "off")  # the way out the message offers
    settings.reset()
    preflight(TASKS)


def test_an_unwritable_output_folder_stops_the_preflight(sample_env, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PreflightError, match=f"the --output_path folder {blocker}/out is not a writable folder"):
        preflight(TASKS, output_path=blocker / "out")
    preflight(TASKS, output_path=tmp_path / "out")
    assert (tmp_path / "out").is_dir() and not list((tmp_path / "out").iterdir())


def _results(**tasks):
    return {"results": {"mme": {"mme_cognition_score,none": 1.0},  # an upstream task: no summary
                        **{t: {"accuracy,none": 0.5, "details,none": s} for t, s in tasks.items()}}}


def test_the_exit_status_counts_judge_and_generation_failures_of_every_task():
    indoor = {"n": 10, "n_judged": 7, "n_failed": 2, "n_generation_failed": 1, "failed_counted_as_wrong": False}
    tempo = {"n": 5, "n_judged": 5, "n_failed": 0}  # an older summary: no n_generation_failed
    clean = {"n": 5, "n_judged": 5, "n_failed": 0, "n_generation_failed": 0}
    assert item_failures(_results(egotextvqa_indoor=clean, egotempo_openqa=tempo)) == {}
    failures = item_failures(_results(egotextvqa_indoor=indoor, egotempo_openqa=tempo))
    assert failures == {"egotextvqa_indoor": (2, 1, False)}
    message = failure_message(failures, "results")
    assert message.startswith(f"lmms_eval: exit status {EXIT_ITEMS_FAILED}: 2 item(s) could not be judged and 1 "
                              "got no answer from the model")
    assert "'failed' and 'generation_failed'" in message and "under results" in message
    assert item_failures(_results(egotempo_openqa={**tempo, "n_generation_failed": 3})) == \
        {"egotempo_openqa": (0, 3, False)}


def test_a_failed_preflight_leaves_no_output_folder_behind(sample_env, tmp_path, monkeypatch):
    out = tmp_path / "results" / "run1"
    monkeypatch.setenv("EGOTEXTVQA_VIDEO_DIR", str(tmp_path / "no-videos-here"))
    settings.reset()
    with pytest.raises(Exception, match="no-videos-here"):
        preflight(TASKS, output_path=out)
    assert not (tmp_path / "results").exists()


def test_a_damaged_verdict_cache_stops_the_preflight_naming_the_file_and_the_fix(gemini_run):
    import os
    import sqlite3
    from pathlib import Path

    from egotask.judges.cache import VerdictCache
    from egotask.judges.heuristic import heuristic_verdict

    path = Path(os.environ["EGOTASK_CACHE_DIR"]) / "judge_cache.sqlite3"
    cache = VerdictCache(path=path, mode="on")
    for i, item in enumerate(make_items(200)):
        cache.put(f"key{i}", item, heuristic_verdict(item))
    cache.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    assert len(data) > 4 * 4096
    data[2 * 4096 + 8:2 * 4096 + 1000] = b"\xa5" * 992  # page 3: a b-tree page, its cells overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(PreflightError, match=rf"the judge cache {path} is damaged \(.+\)\. Move it aside "
                                             rf"\(mv {path} {path}\.damaged\)"):
        preflight(TASKS)
    assert gemini_run.requests == 0
