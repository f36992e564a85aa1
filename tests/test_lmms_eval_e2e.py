"""The real `lmms_eval` entry, end to end, on generated clips and a tiny Qwen3-VL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from egotask.frames import VisibleVideo
from egotask.paths import tasks_path
from egotask.tasklib import make_process_docs

pytestmark = pytest.mark.slow


def test_indoor_run_writes_accuracy_score_and_judged_samples(sample_env, tiny_qwen, tmp_path, lmms_eval):
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen},max_frames=4", "--limit", "4"], sample_env, tmp_path / "out")
    assert run.returncode == 0, run.output
    metrics = run.results["results"]["egotextvqa_indoor"]
    assert {"accuracy,none", "score,none", "n_judged,none", "n_failed,none"} <= set(metrics)
    details = metrics["details,none"]
    assert (details["n"], details["n_judged"], details["n_failed"]) == (4, 4, 0)
    assert details["judge"] == "heuristic" and details["prompt_version"]
    samples = run.samples["egotextvqa_indoor"]
    assert len(samples) == 4
    for sample in samples:
        record = sample["details"]
        assert (record["setting"], record["task"], record["version"]) == ("indoor", "egotextvqa_indoor", 4)
        assert record["verdict"]["pred"] in ("yes", "no")
        assert record["visible"] == [0.0, record["timestamp"]]
        # Only the continuation: never the prompt or chat roles.
        assert record["question"] not in record["prediction"]
        assert "assistant" not in record["prediction"] and "user:" not in record["prediction"].lower()


def test_group_and_egotempo_run_together(sample_env, tiny_qwen, tmp_path, lmms_eval):
    run = lmms_eval(["--tasks", "egotextvqa,egotempo_openqa", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen},max_frames=2", "--limit", "2"], sample_env, tmp_path / "out")
    assert run.returncode == 0, run.output
    results = run.results["results"]
    for task, split in (("egotextvqa_indoor", "indoor"), ("egotextvqa_outdoor", "outdoor"),
                        ("egotempo_openqa", "egotempo")):
        assert results[task]["details,none"]["n"] == 2
        assert {(s["details"]["setting"], s["details"]["task"]) for s in run.samples[task]} == {(split, task)}
    assert "acc %" in run.output  # egotask's summary table follows lmms-eval's


def test_missing_video_fails_before_inference_naming_file_and_variable(sample_env, tiny_qwen, tmp_path,
                                                                        lmms_eval):
    videos = tmp_path / "videos"
    (videos / "EgoTextVQA-Outdoor").mkdir(parents=True)
    run = lmms_eval(["--tasks", "egotextvqa_outdoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen}"], {**sample_env, "EGOTEXTVQA_VIDEO_DIR": str(videos)})
    assert run.returncode != 0
    assert "EgoTextVQA-Outdoor/101.mp4" in run.output and "EGOTASK_MISSING_VIDEOS" in run.output


def test_malformed_annotation_fails_naming_the_line(sample_env, tiny_qwen, tmp_path, lmms_eval):
    folder = tmp_path / "ann"
    folder.mkdir()
    src = sample_env["EGOTEXTVQA_ANNOTATIONS"]
    for name in os.listdir(src):
        (folder / name).write_text(open(os.path.join(src, name)).read())
    rows = (folder / "egotextvqa_indoor_annotation.jsonl").read_text().splitlines()
    bad = json.loads(rows[1])
    del bad["question"]
    rows[1] = json.dumps(bad)
    (folder / "egotextvqa_indoor_annotation.jsonl").write_text("\n".join(rows) + "\n")
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen}"], {**sample_env, "EGOTEXTVQA_ANNOTATIONS": str(folder)})
    assert run.returncode != 0
    assert "egotextvqa_indoor_annotation.jsonl:2: missing field(s) question" in run.output


def test_unknown_task_exits_non_zero(sample_env, tiny_qwen, lmms_eval):
    run = lmms_eval(["--tasks", "egotextvqa_kitchen", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen}"], sample_env)
    assert run.returncode != 0 and "egotextvqa_kitchen" in run.output


def test_plain_upstream_cli_finds_the_tasks_through_tasks_path(sample_env, tiny_qwen, tmp_path):
    printed = subprocess.run([sys.executable, "-m", "egotask.cli", "tasks-path"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert printed == str(tasks_path())
    proc = subprocess.run([sys.executable, "-m", "lmms_eval", "--include_path", printed, "--tasks",
                           "egotempo_openqa", "--model", "qwen3vl", "--model_args",
                           f"pretrained={tiny_qwen},max_frames=2", "--limit", "1", "--output_path",
                           str(tmp_path / "o"), "--verbosity", "WARNING"],
                          capture_output=True, text=True, env={**os.environ, **sample_env}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "o").rglob("*_results.json"))


def test_realtime_docs_see_only_the_video_before_the_question(sample_env):
    from egotask.frames import sample_visual
    from egotask.tasklib import doc_to_visual

    docs = make_process_docs("egotextvqa_indoor")(None)
    full = make_process_docs("egotextvqa_indoor", full_video=True)(None)
    (visual,) = doc_to_visual(docs[0])
    assert isinstance(visual, VisibleVideo) and visual.end == docs[0]["timestamp"] == 3.5
    frames = sample_visual(visual, max_frames=8)
    assert max(frames.timestamps) < 3.5
    (whole,) = doc_to_visual(full[0])
    assert whole.end is None and max(sample_visual(whole, max_frames=8).timestamps) > 3.5


def test_a_run_that_counts_failures_as_wrong_records_that_choice(sample_env, tiny_qwen, tmp_path, lmms_eval,
                                                                 fake_judge):
    # Two of the four questions get a 400 on every request, so no verdict.
    fake_judge(faults=lambda item, attempt: "400" if item["reference"] in ("PAPRIKA", "ODYSSEY") else None)
    env = {**sample_env, **{k: os.environ[k] for k in ("GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY")},
           "EGOTASK_JUDGE": "gemini"}
    runs = {}
    for flag in ("0", "1"):
        run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                         f"pretrained={tiny_qwen},max_frames=2", "--limit", "4"],
                        {**env, "EGOTASK_COUNT_FAILED_AS_WRONG": flag}, tmp_path / f"out{flag}")
        assert run.results is not None, run.output
        runs[flag] = run.results["results"]["egotextvqa_indoor"]["details,none"]
    left_out, counted = runs["0"], runs["1"]
    assert left_out["failed_counted_as_wrong"] is False and counted["failed_counted_as_wrong"] is True
    assert counted["n_failed"] == left_out["n_failed"] == 2 and left_out["n_judged"] == 2
    yes = round(left_out["accuracy"] * 2)
    assert counted["accuracy"] == pytest.approx(yes / 4) and counted["score"] == pytest.approx(left_out["score"] / 2)
