"""build-qa: all real questions joined with a video folder, a report of what is wrong, and a dataset
the tasks read."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import datasets
import pytest

from egotask.data.build_qa import COLUMNS, build_rows
from egotask.data.sources import load_docs, resolve_video
from egotask.fixtures import write_clip, write_egotextvqa_annotations


def _real_ids(shared_data, subset, n):
    path = shared_data / "egotextvqa" / f"egotextvqa_{subset}_annotation.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted({r["video_id"] for r in rows})[:n], rows


def test_build_qa_on_all_real_rows_with_stand_in_videos(shared_data, tmp_path, monkeypatch):
    indoor_ids, indoor_rows = _real_ids(shared_data, "indoor", 3)
    outdoor_ids, outdoor_rows = _real_ids(shared_data, "outdoor", 3)
    videos = tmp_path / "videos"
    last_ts = {}
    for row in indoor_rows + outdoor_rows:
        last_ts[row["video_id"]] = max(last_ts.get(row["video_id"], 0.0), float(row["timestamp"]))
    for vid in indoor_ids:
        write_clip(videos / "EgoTextVQA-Indoor" / f"{vid}.mp4", ["X"], seconds=last_ts[vid] + 1.0, fps=2,
                   size=(64, 48))
    for vid in outdoor_ids[:2]:
        write_clip(videos / "EgoTextVQA-Outdoor" / f"{vid}.mp4", ["X"], seconds=last_ts[vid] + 1.0, fps=2,
                   size=(64, 48))
    # This one is shorter than its last question's timestamp: the report must say so.
    short = outdoor_ids[2]
    write_clip(videos / "EgoTextVQA-Outdoor" / f"{short}.mp4", ["X"], seconds=max(0.5, last_ts[short] - 1.0),
               fps=2, size=(64, 48))

    out = tmp_path / "qa"
    proc = subprocess.run([sys.executable, "-m", "egotask.cli", "data", "build-qa", "--annotations",
                           str(shared_data / "egotextvqa"), "--videos", str(videos), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert "7064 questions over 1507 videos; 6 videos found." in proc.stdout
    assert "CHECK 1501 videos missing" in proc.stdout
    assert "OK    0 duplicate (video_id, question_id) keys" in proc.stdout
    assert "OK    0 unknown question types" in proc.stdout
    report = json.loads((out / "validation_report.json").read_text())
    assert report["rows"] == 7064 and len(report["missing_videos"]) == 1501
    assert {p["video_id"] for p in report["timestamps_past_end"]} == {short}

    ds = datasets.load_from_disk(str(out))["test"]
    assert ds.column_names == list(COLUMNS) and len(ds) == 7064
    assert ds.features["timestamp"].dtype == "float64"
    assert sorted(set(ds["subset"])) == ["indoor", "outdoor"]

    # The tasks read it: questions from the dataset, videos from its video_path column.
    monkeypatch.setenv("EGOTEXTVQA_DATASET", str(out))
    indoor = load_docs("egotextvqa_indoor")
    assert len(indoor) == 2216 and len(load_docs("egotextvqa_outdoor")) == 4848
    doc = next(d for d in indoor if d["video_id"] == indoor_ids[0])
    assert resolve_video(doc) == videos.resolve() / "EgoTextVQA-Indoor" / f"{indoor_ids[0]}.mp4"
    assert doc["visible_end"] == doc["timestamp"]


def test_report_lists_duplicates_and_unknown_types(tmp_path):
    vid = "0479bea8-d221-4c6a-8c91-60108e43fe56"
    row = {"video_id": vid, "question_id": "1", "question_type": "kitchen", "question": "q?",
           "correct_answer": "a", "timestamp": 1.0}
    ann = write_egotextvqa_annotations(tmp_path / "ann", [row, row, {**row, "question_id": "2",
                                                                     "question_type": "astrology"}],
                                       [{**row, "video_id": "7", "question_type": "location"}])
    write_clip(tmp_path / "v" / "EgoTextVQA-Indoor" / f"{vid}.mp4", ["A"], seconds=2.0, fps=4, size=(64, 48))
    rows, report = build_rows(ann, tmp_path / "v", relative_paths=True, progress=False)
    assert [r["video_path"] for r in rows][:1] == [f"EgoTextVQA-Indoor/{vid}.mp4"]
    assert report.duplicate_keys == [{"video_id": vid, "question_id": "1", "count": 2}]
    assert [u["question_type"] for u in report.unknown_question_types] == ["astrology"]
    assert report.missing_videos == [str(tmp_path / "v" / "EgoTextVQA-Outdoor" / "7.mp4")]
    assert report.questions_without_video == 1 and report.problems == 3


def test_dataset_variable_pointing_nowhere_names_the_variable(tmp_path, monkeypatch):
    from egotask.data.sources import DataError

    monkeypatch.setenv("EGOTEXTVQA_DATASET", str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="EGOTEXTVQA_DATASET=.*nothing"):
        load_docs("egotextvqa_indoor")


def test_a_cut_off_video_is_reported_unreadable_naming_its_length(tmp_path):
    """An mp4 whose header promises 10 s but whose file holds a part of it (a cut-off download):
    the frame sampler's own check names it, so build-qa reports it with the other bad videos."""
    vid = "0479bea8-d221-4c6a-8c91-60108e43fe56"
    row = {"video_id": vid, "question_id": "1", "question_type": "kitchen", "question": "q?",
           "correct_answer": "a", "timestamp": 1.0}
    ann = write_egotextvqa_annotations(tmp_path / "ann", [row], [{**row, "video_id": "7", "question_type": "location"}])
    write_clip(tmp_path / "v" / "EgoTextVQA-Outdoor" / "7.mp4", ["A"], seconds=2.0, fps=4, size=(64, 48))
    full = write_clip(tmp_path / "full.mp4", ["A", "B"], seconds=10.0, fps=8, size=(64, 48),
                      container_options={"movflags": "faststart"})  # the index first, as downloads have it
    cut = tmp_path / "v" / "EgoTextVQA-Indoor" / f"{vid}.mp4"
    cut.parent.mkdir(parents=True)
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.4)])
    rows, report = build_rows(ann, tmp_path / "v", progress=False)
    assert [u["path"] for u in report.unreadable_videos] == [str(cut)]
    assert re.search(r"truncated or corrupt: its header says 10\.00s of video but the file holds only \d\.\d\ds",
                     report.unreadable_videos[0]["error"])
    assert report.problems == 1 and "CHECK 1 videos unreadable" in report.render()
