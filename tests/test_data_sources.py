"""The loaders: real formats, real counts, and clear errors for bad rows and paths."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from egotask.data.sources import (
    EGOTEMPO_TYPES,
    INDOOR_TYPES,
    OUTDOOR_TYPES,
    DataError,
    load_docs,
    read_egotextvqa_jsonl,
    setting_of_video_id,
)


def test_video_id_decides_the_split():
    assert setting_of_video_id("0479bea8-d221-4c6a-8c91-60108e43fe56") == "indoor"
    assert setting_of_video_id("11") == "outdoor"
    with pytest.raises(DataError, match="neither"):
        setting_of_video_id("clip-7")


def test_real_annotations_load_with_their_counts_and_types(shared_data, monkeypatch):
    monkeypatch.setenv("EGOTEXTVQA_ANNOTATIONS", str(shared_data / "egotextvqa"))
    monkeypatch.setenv("EGOTEMPO_ANNOTATIONS", str(shared_data / "egotempo" / "egotempo_openQA.json"))
    indoor, outdoor = load_docs("egotextvqa_indoor"), load_docs("egotextvqa_outdoor")
    tempo = load_docs("egotempo_openqa")
    assert (len(indoor), len(outdoor), len(indoor) + len(outdoor), len(tempo)) == (2216, 4848, 7064, 500)
    assert len({d["video_id"] for d in indoor}) == 813
    assert len({d["video_id"] for d in outdoor}) == 694
    assert len({d["video_id"] for d in tempo}) == 367
    # Each split carries its own question types: the predecessor's tables swapped them.
    assert set(Counter(d["question_type"] for d in indoor)) == set(INDOOR_TYPES)
    assert set(Counter(d["question_type"] for d in outdoor)) == set(OUTDOOR_TYPES)
    assert Counter(d["question_type"] for d in tempo) == {t: 50 for t in EGOTEMPO_TYPES}
    assert all(d["setting"] == "indoor" for d in indoor) and all(d["setting"] == "outdoor" for d in outdoor)
    # (video_id, question_id) is the key; question ids alone repeat.
    for docs in (indoor, outdoor, tempo):
        keys = [(d["video_id"], d["question_id"]) for d in docs]
        assert len(set(keys)) == len(keys)
    assert len({d["question_id"] for d in indoor}) < len(indoor)
    # Real time: the visible interval ends at the question's timestamp; EgoTempo sees the whole clip.
    assert all(d["visible_end"] == d["timestamp"] for d in indoor + outdoor)
    assert all(d["visible_end"] is None for d in tempo)


def _write(tmp_path, rows):
    path = tmp_path / "egotextvqa_indoor_annotation.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = {"video_id": "0479bea8-d221-4c6a-8c91-60108e43fe56", "question_id": "1", "question_type": "kitchen",
        "question": "q?", "correct_answer": "a", "timestamp": 3.0}


@pytest.mark.parametrize("bad, message", [
    ({**GOOD, "timestamp": "soon"}, r":2: field timestamp must be a number"),
    ({k: v for k, v in GOOD.items() if k != "correct_answer"}, r":2: missing field\(s\) correct_answer"),
    ({**GOOD, "video_id": "42"}, r":2: video_id '42' is an outdoor id, but these are the indoor annotations"),
    ('{"video_id": ', r":2: not valid JSON"),
])
def test_malformed_row_names_file_line_and_field(tmp_path, bad, message):
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(DataError, match=message) as err:
        read_egotextvqa_jsonl(path, "indoor")
    assert str(path) in str(err.value)


def test_annotation_folder_without_the_file_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("EGOTEXTVQA_ANNOTATIONS", str(tmp_path))
    with pytest.raises(DataError, match="EGOTEXTVQA_ANNOTATIONS=.*egotextvqa_outdoor_annotation.jsonl"):
        load_docs("egotextvqa_outdoor")
