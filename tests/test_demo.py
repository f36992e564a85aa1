"""`egotask demo`, as `make demo` runs it: generated data, the real `lmms_eval` with the OCR plugin and the
heuristic judge, then the results table on the console and in results.md."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from egotask.fixtures import EGOTEMPO_SAMPLE, INDOOR_SAMPLE, OUTDOOR_SAMPLE

pytestmark = pytest.mark.slow  # three lmms_eval runs: the demo, the command it prints, a one-task rerun

# task, setting, questions: the OCR baseline reads every clip's text, so each task scores 100 % / 5.00.
EXPECTED = [("egotextvqa_indoor", "indoor", INDOOR_SAMPLE), ("egotextvqa_outdoor", "outdoor", OUTDOOR_SAMPLE),
            ("egotempo_openqa", "egotempo", EGOTEMPO_SAMPLE)]


def run_demo(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    egotask = Path(sys.executable).with_name("egotask")
    cmd = [str(egotask)] if egotask.exists() else [sys.executable, "-m", "egotask.cli"]
    proc = subprocess.run([*cmd, "demo", "--workdir", str(workdir), *args], env=os.environ.copy(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def table_rows(stdout: str) -> list[str]:
    return re.findall(r"^ocr_baseline\s+(\S+)\s", stdout, re.MULTILINE)


def test_demo_evaluates_the_sample_end_to_end_prints_its_table_and_a_command_that_runs_again(tmp_path):
    workdir = tmp_path / "demo"
    proc = run_demo(workdir)
    for task, setting, sample in EXPECTED:
        n = len(sample)
        videos = len({qa.video_id for qa in sample})
        # model task setting videos acc (CI) acc with failures as wrong (CI) score (CI) n judged failed
        row = (rf"^ocr_baseline\s+{task}\s+{setting}\s+{videos}\s+100\.0\s+\[100\.0, 100\.0\]\s+100\.0\s+"
               rf"\[100\.0, 100\.0\]\s+5\.00\s+\[5\.00, 5\.00\]\s+{n}\s+{n}\s+0\b")
        assert re.search(row, proc.stdout, re.MULTILINE), proc.stdout
        assert f"| ocr_baseline | {task} | {setting} | {videos} | 100.0 |" in (workdir / "results.md").read_text()
    assert "judge: heuristic" in proc.stdout
    # One table: lmms_eval's own tables go to the log, not the console.
    assert table_rows(proc.stdout) == [task for task, _, _ in EXPECTED] and "|Filter|" not in proc.stdout
    # Nothing of lmms_eval's reaches the terminal, its progress bars included: they are in the log.
    assert "it/s]" not in proc.stdout + proc.stderr and "%|" not in proc.stdout + proc.stderr
    log = (workdir / "lmms_eval.log").read_text()
    assert "|Filter|" in log
    # lmms_eval's own footer reads the samples' `seen`, as the report does (issue 24, friction 1).
    assert "real time, only the video before each question's timestamp" in log and "not recorded" not in log

    (results_file,) = (workdir / "output").rglob("*_results.json")
    results = json.loads(results_file.read_text())["results"]
    for task, _, sample in EXPECTED:
        assert (results[task]["accuracy,none"], results[task]["n_judged,none"]) == (1.0, len(sample))
        (samples_file,) = (workdir / "output").rglob(f"*_samples_{task}.jsonl")
        records = [json.loads(line)["details"] for line in samples_file.read_text().splitlines()]
        # What the model answered: the text shown in each clip (EgoTempo's: the last word it shows), as
        # RapidOCR reads it ("LEVEL UP" comes out as "LEVELUP").
        assert sorted((r["video_id"], r["prediction"].replace(" ", "")) for r in records) == sorted(
            (qa.video_id, qa.answer.replace(" ", "")) for qa in sample)
    # The data set it generated: one clip per question, where the tasks' variables point.
    assert len(list((workdir / "data" / "videos").rglob("*.mp4"))) == len(INDOOR_SAMPLE) + len(OUTDOOR_SAMPLE)
    assert len(list((workdir / "data" / "egotempo_clips").glob("*.mp4"))) == len(EGOTEMPO_SAMPLE)

    # The command it printed runs as pasted, into a shell that has none of the demo's variables set.
    command = proc.stdout.split("(the same command runs it again):\n", 1)[1].splitlines()[0].strip()
    assert shlex.split(command)[0].startswith("EGOTEXTVQA_ANNOTATIONS=")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EGOTEXTVQA_", "EGOTEMPO_", "HF_HUB_OFFLINE"))}
    pasted = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=600)
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    assert len(list((workdir / "output").rglob("*_results.json"))) == 2
    # A rerun shows its own run only, not the two before it.
    again = run_demo(workdir, "--tasks", "egotempo_openqa")
    assert table_rows(again.stdout) == ["egotempo_openqa"]
    assert len(list((workdir / "output").rglob("*_results.json"))) == 3


def test_demo_runs_the_served_model_path_offline_against_the_local_fake_server(tmp_path):
    workdir = tmp_path / "demo"
    proc = run_demo(workdir, "--model", "openai_vlm", "--tasks", "egotextvqa_indoor")
    assert "a local fake OpenAI-compatible server answers at http://127.0.0.1:" in proc.stdout
    assert "(the same command runs it while this demo's server is up)" in proc.stdout
    (samples_file,) = (workdir / "output").rglob("*_samples_egotextvqa_indoor.jsonl")
    records = [json.loads(line)["details"] for line in samples_file.read_text().splitlines()]
    assert len(records) == len(INDOOR_SAMPLE)
    for r in records:
        # Every question was answered by the server, from frames sampled before its timestamp.
        assert r["generation_error"] is None and r["prediction"].startswith("I was shown ")
        assert r["seen"] is not None and r["seen"][1] < r["timestamp"]
    assert "real time, only the video before each question's timestamp" in (workdir / "lmms_eval.log").read_text()
