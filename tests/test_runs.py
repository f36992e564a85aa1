"""egotask.runs: the one reader of runs on disk (finding them, reading them, writing them back whole)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from egotask import scoring
from egotask.atomic import WriteError
from egotask.cli import main
from egotask.records import SampleRecord, Verdict
from egotask.runs import Run, find_runs

JUDGE = {"judge": "heuristic", "judge_model": "rules", "prompt_version": "v1"}
INDOOR_VIDEO = "0479bea8-d221-4c6a-8c91-60108e43fe56"  # an EgoTextVQA indoor id (a UUID); outdoor ids are numbers
DATES = ("20260101_120000", "20260102_090000")
TASKS = ("egotempo_openqa", "egotextvqa_indoor")  # in the order of their files' names
SETTING = {"egotextvqa_indoor": "indoor", "egotempo_openqa": "egotempo"}


def record(task: str, qid: str, pred: str = "yes") -> SampleRecord:
    return SampleRecord(task=task, benchmark=task, setting=SETTING[task], video_id="v1", question_id=qid,
                        question_type="kind", question="what?", answer="a", prediction="a",
                        verdict=Verdict(pred=pred, score=5 if pred == "yes" else 0, **JUDGE))


def write_lmms_run(folder: Path, date: str, n: int = 2) -> None:
    """What lmms_eval --log_samples writes for one run over both tasks."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for task in TASKS:
        records = [record(task, str(i)) for i in range(n)]
        with open(folder / f"{date}_samples_{task}.jsonl", "w") as fh:
            for i, r in enumerate(records):
                fh.write(json.dumps({"doc_id": i, **scoring.sample_metrics(r)}) + "\n")
        results[task] = scoring.results_entry(scoring.summarize(records))
    (folder / f"{date}_results.json").write_text(json.dumps({"model_name": "/models/qwen", "results": results,
                                                             "config": {"model_args": "max_frames=4,fps=1"}}))


def test_an_lmms_eval_folder_with_two_dated_runs_gives_two_runs_of_two_tasks_each(tmp_path):
    write_lmms_run(tmp_path / "out" / "qwen", DATES[0])
    write_lmms_run(tmp_path / "out" / "qwen", DATES[1], n=3)
    (tmp_path / "out" / "qwen" / f"{DATES[0]}_ann.labels.jsonl").write_text("{}\n")  # people's labels: no run
    runs = find_runs([tmp_path / "out"])
    folder = tmp_path / "out" / "qwen"
    assert [(r.folder, r.prefix, sorted(r.samples), r.records_file) for r in runs] == [
        (folder, date, sorted(TASKS), None) for date in DATES]
    first, second = runs
    assert first.results_path == folder / f"{DATES[0]}_results.json" and first.has_results
    assert [(p.task, p.path.name, len(p.records)) for p in second.read()] == [
        (task, f"{DATES[1]}_samples_{task}.jsonl", 3) for task in TASKS]
    assert {r.task for r in first.records} == set(TASKS) and len(first.records) == 4
    assert first.results()["model_name"] == "/models/qwen"
    assert first.frame_settings() == (4, 1.0) and not first.count_failed_as_wrong
    # The folder, a results file and a samples file of the same run reach it once; a samples file named
    # stands for its task only.
    assert len(find_runs([tmp_path / "out", folder / f"{DATES[0]}_results.json"])) == 2
    (named,) = find_runs([folder / f"{DATES[1]}_samples_egotempo_openqa.jsonl"])
    assert (named.prefix, list(named.samples), named.whole) == (DATES[1], ["egotempo_openqa"], False)
    assert named.has_results  # its results file is still known


def test_a_records_file_from_import_legacy_with_two_tasks_is_one_run_read_per_task(tmp_path):
    rows = [{"question_id": str(i), "video_id": video, "question": "where?", "question_type": "kitchen",
             "gemini-2.5-flash": "on the shelf", "correct_answer": "the shelf", "acc": "yes", "score": 5}
            for i, video in enumerate([INDOOR_VIDEO, "101", INDOOR_VIDEO])]
    (tmp_path / "m_results.json").write_text(json.dumps(rows))
    assert main(["import-legacy", str(tmp_path / "m_results.json"), "--output", str(tmp_path / "legacy")]) == 0
    (run,) = find_runs([tmp_path / "legacy"])
    assert (run.prefix, run.records_file, run.samples) == ("m_results", tmp_path / "legacy" / "m_results.records.jsonl",
                                                           {})
    assert not run.has_results
    assert [(p.task, len(p.records)) for p in run.read()] == [("egotextvqa_indoor", 2), ("egotextvqa_outdoor", 1)]
    assert {r.model for r in run.records} == {"m"}


def test_a_rejudged_copy_is_left_out_of_what_egotask_judge_finds_and_read_by_the_others(tmp_path):
    write_lmms_run(tmp_path, DATES[0])
    (run,) = find_runs([tmp_path])
    parts = run.read()
    out = run.write_copy("rejudged-heuristic-rules-v2", {p.task: p.records for p in parts}, {"results": {}})
    assert out == tmp_path / f"{DATES[0]}_rejudged-heuristic-rules-v2_results.json"
    assert [r.prefix for r in find_runs([tmp_path], rejudged=False)] == [DATES[0]]
    everything = find_runs([tmp_path])
    assert [(r.prefix, r.rejudged) for r in everything] == [(f"{DATES[0]}_rejudged-heuristic-rules-v2", True),
                                                           (DATES[0], False)]  # in the order of their files' names
    assert everything[0].records == run.records


def test_folders_without_runs_and_missing_paths_are_errors_naming_them(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ValueError, match=f"{tmp_path}: no lmms-eval run"):
        find_runs([tmp_path])
    with pytest.raises(ValueError, match="missing: no such file or folder"):
        find_runs([tmp_path / "missing"])
    (tmp_path / f"{DATES[0]}_results.json").write_text("{}")
    assert find_runs([tmp_path])[0].files == []
    with pytest.raises(ValueError, match=f"{tmp_path}: no lmms-eval run"):  # samples needed, none there
        find_runs([tmp_path], predictions=True)


def test_an_empty_or_broken_file_is_an_error_naming_file_and_line(tmp_path):
    write_lmms_run(tmp_path, DATES[0])
    (tmp_path / f"{DATES[0]}_samples_egotempo_openqa.jsonl").write_text('{"details": {}}\nnot json\n')
    (run,) = find_runs([tmp_path])
    with pytest.raises(ValueError, match=rf"{DATES[0]}_samples_egotempo_openqa.jsonl:1: "):
        run.read()
    problems: list[str] = []
    (lenient,) = find_runs([tmp_path])
    assert [p.task for p in lenient.read(problems)] == ["egotextvqa_indoor"]  # the readable file's
    assert len(problems) == 1 and "egotempo_openqa.jsonl:2: not valid JSON" in problems[0]


def test_completing_a_run_in_place_leaves_every_file_as_it_was_when_a_write_fails(tmp_path, monkeypatch):
    write_lmms_run(tmp_path, DATES[0])
    (run,) = find_runs([tmp_path])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    rows = {p.task: [scoring.sample_metrics(r.with_verdict(Verdict(pred="no", score=0, **JUDGE))) for r in p.records]
            for p in run.read()}

    def full_disk(fd: int) -> None:  # the disk fills up as the file is synced: the file boundary fails
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("egotask.atomic.os.fsync", full_disk)
    with pytest.raises(WriteError, match=rf"cannot write {tmp_path}/{DATES[0]}_samples_egotempo_openqa.jsonl: "
                                         "No space left on device; the file is left as it was"):
        run.write_in_place(rows, {"results": {}})
    with pytest.raises(WriteError, match="_rejudged-x_samples_egotempo_openqa.jsonl: No space left on device; "
                                         "nothing was written"):
        run.write_copy("rejudged-x", {p.task: p.records for p in run.read()}, {"results": {}})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary file left either
    monkeypatch.undo()
    out = run.write_in_place(rows, {"results": {"done": True}})
    assert json.loads(out.read_text()) == {"results": {"done": True}}
    assert {r.verdict.pred for r in Run(tmp_path, DATES[0], samples=dict(run.samples)).records} == {"no"}


def test_a_records_file_cannot_be_completed_in_place(tmp_path):
    path = tmp_path / "x.records.jsonl"
    path.write_text(json.dumps(record(TASKS[0], "1").to_dict()) + "\n")
    (run,) = find_runs([path])
    with pytest.raises(ValueError, match="x.records.jsonl: a records file has no lmms-eval results"):
        run.write_in_place({}, {})
