"""A wrong EGOTEXTVQA_VIDEO_DIR is named in the error, with its value and where the videos were looked
for, and a folder one level too shallow gets the value that finds the files."""

from __future__ import annotations

import pytest

from egotask import tasklib
from egotask.data.sources import DataError

DOCS = [{"benchmark": "egotextvqa_indoor", "video_id": "abc", "question_id": "1"},
        {"benchmark": "egotextvqa_indoor", "video_id": "def", "question_id": "1"}]


def check(monkeypatch, folder) -> str:
    monkeypatch.setenv("EGOTEXTVQA_VIDEO_DIR", str(folder))
    with pytest.raises(DataError) as err:
        tasklib._check_videos([dict(d) for d in DOCS])
    return str(err.value)


def test_missing_videos_name_the_variable_its_value_and_the_layout_looked_for(tmp_path, monkeypatch):
    (tmp_path / "EgoTextVQA-Indoor").mkdir()
    text = check(monkeypatch, tmp_path)
    assert "2 video file(s) missing" in text
    assert f"EGOTEXTVQA_VIDEO_DIR={tmp_path} (the indoor videos are looked for as " \
           "EGOTEXTVQA_VIDEO_DIR/EgoTextVQA-Indoor/abc.mp4)" in text
    assert "one folder deeper" not in text


def test_a_folder_one_level_too_deep_is_detected_and_the_right_value_given(tmp_path, monkeypatch):
    # what an `hf download --local-dir data/EgoTextVQA` of a nested release gives
    nested = tmp_path / "EgoTextVQA-Indoor" / "EgoTextVQA-Indoor"
    nested.mkdir(parents=True)
    for vid in ("abc", "def"):
        (nested / f"{vid}.mp4").write_bytes(b"")
    text = check(monkeypatch, tmp_path)
    assert f"the files are one folder deeper: set EGOTEXTVQA_VIDEO_DIR={tmp_path / 'EgoTextVQA-Indoor'}" in text


def test_a_video_dir_that_is_not_a_folder_is_said_so(tmp_path, monkeypatch):
    text = check(monkeypatch, tmp_path / "nope")
    assert f"{tmp_path / 'nope'} is not a folder" in text and "EGOTEXTVQA_VIDEO_DIR=" in text
