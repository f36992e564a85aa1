"""The paper's real-time subset as a task: exactly the 623 outdoor questions of the release's
``outdoor_real_time.json``, each asked in real time; a question missing from the annotations is an
error."""

from __future__ import annotations

import json
import shutil

import pytest

from egotask.data.sources import DataError
from egotask.data.subsets import keys_from_release, subset_keys
from egotask.fixtures import write_clip
from egotask.preflight import process_docs_of


def test_packaged_ids_are_the_release_files_questions(shared_data):
    release = keys_from_release(shared_data / "egotextvqa" / "outdoor_real_time.json")
    assert len(release) == 623 and len({v for v, _ in release}) == 248
    assert list(subset_keys("outdoor_realtime")) == release
    assert ("11", "8.1") in release  # the release writes 11 and 8.1 as numbers


def test_the_task_yaml_gives_exactly_the_623_questions_in_real_time(shared_data, monkeypatch):
    from egotask.visible_clips import declare_model_reads_intervals

    monkeypatch.setenv("EGOTEXTVQA_ANNOTATIONS", str(shared_data / "egotextvqa"))
    (process_docs,) = process_docs_of(["egotextvqa_outdoor_realtime"])
    declare_model_reads_intervals(True)  # as for egotask's adapters: no cuts, so no videos are needed
    try:
        docs = list(process_docs(None))
    finally:
        declare_model_reads_intervals(False)
    assert len(docs) == 623
    assert {(d["video_id"], d["question_id"]) for d in docs} == set(subset_keys("outdoor_realtime"))
    assert {d["task"] for d in docs} == {"egotextvqa_outdoor_realtime"} and {d["setting"] for d in docs} == {"outdoor"}
    assert all(d["visible_end"] == d["timestamp"] for d in docs)
    release = json.loads((shared_data / "egotextvqa" / "outdoor_real_time.json").read_text())[0]["data"]
    by_key = {(str(r["video_id"]), str(r["question_id"])): r for r in release}
    for doc in docs:  # the same question, answer and timestamp as the release file
        row = by_key[(doc["video_id"], doc["question_id"])]
        assert (doc["question"], doc["answer"], doc["timestamp"]) == (row["question"], row["correct_answer"],
                                                                      row["timestamp"])


def test_a_subset_question_missing_from_the_annotations_is_an_error(shared_data, tmp_path, monkeypatch):
    folder = tmp_path / "ann"
    shutil.copytree(shared_data / "egotextvqa", folder)
    path = folder / "egotextvqa_outdoor_annotation.jsonl"
    lines = path.read_text().splitlines()
    kept = [ln for ln in lines if not (json.loads(ln)["video_id"] == "11" and json.loads(ln)["question_id"] == "8.2")]
    assert len(kept) == len(lines) - 1
    path.write_text("\n".join(kept) + "\n")
    monkeypatch.setenv("EGOTEXTVQA_ANNOTATIONS", str(folder))
    (process_docs,) = process_docs_of(["egotextvqa_outdoor_realtime"])
    with pytest.raises(DataError, match=r"subset outdoor_realtime .*1 of its 623 questions are not in the "
                                        r"egotextvqa_outdoor annotations: 11/8\.2"):
        process_docs(None)


@pytest.mark.slow
def test_lmms_eval_evaluates_exactly_the_623_questions(shared_data, tiny_qwen, tmp_path, lmms_eval):
    videos = tmp_path / "videos" / "EgoTextVQA-Outdoor"
    for video_id in sorted({v for v, _ in subset_keys("outdoor_realtime")}):
        write_clip(videos / f"{video_id}.mp4", [video_id], seconds=11.0, fps=1, size=(32, 32))
    env = {"EGOTEXTVQA_ANNOTATIONS": str(shared_data / "egotextvqa"), "EGOTEXTVQA_VIDEO_DIR": str(tmp_path / "videos")}
    run = lmms_eval(["--tasks", "egotextvqa_outdoor_realtime", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen},max_frames=2,max_pixels=1024", "--batch_size", "32",
                     "--gen_kwargs", "max_new_tokens=2"], env, tmp_path / "out")
    assert run.returncode == 0, run.output[-3000:]
    details = run.results["results"]["egotextvqa_outdoor_realtime"]["details,none"]
    assert details["n"] == 623
    samples = run.samples["egotextvqa_outdoor_realtime"]
    assert len(samples) == 623
    assert {(s["details"]["video_id"], s["details"]["question_id"]) for s in samples} == \
        set(subset_keys("outdoor_realtime"))
