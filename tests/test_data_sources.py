"""The loaders: real formats, real counts, and clear errors for bad rows and paths."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from egotask.data.sources import (
    EGOTEMPO_TYPES,
    INDOOR_TYPES,
    OUTDOOR_TYPES,
    DataError,
    load_docs,
    local_video_path,
    read_egotempo_json,
    read_egotextvqa_jsonl,
    resolve_video,
    setting_of_video_id,
)
from egotask.records import answer_alternatives
from egotask.tasklib import make_process_docs


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


# --------------------------------------------------------------------------- bad input: #17


def _write_bytes(tmp_path, lines: list[str], encoding="utf-8"):
    path = tmp_path / "egotextvqa_indoor_annotation.jsonl"
    path.write_bytes("".join(line + "\n" for line in lines).encode(encoding))
    return path


def _row(**fields) -> str:
    return json.dumps({**GOOD, **fields}, ensure_ascii=False)


@pytest.mark.parametrize("raw, message", [
    ("NaN", "field timestamp must be a finite number, got nan"),
    ("Infinity", "field timestamp must be a finite number, got inf"),
    ("-Infinity", "field timestamp must be a finite number, got -inf"),
    ("true", "field timestamp must be a number, got true"),
    ('"12.5"', "field timestamp must be a number, got '12.5'"),
])
def test_non_finite_and_non_numeric_timestamps_name_file_and_line(tmp_path, raw, message):
    bad = _row(question_id="2").replace('"timestamp": 3.0', f'"timestamp": {raw}')
    path = _write_bytes(tmp_path, [_row(), bad])
    with pytest.raises(DataError, match=re.escape(f"{path}:2: {message}")):
        read_egotextvqa_jsonl(path, "indoor")


def test_duplicate_question_key_names_both_lines(tmp_path):
    path = _write_bytes(tmp_path, [_row(), _row(question_id="2"), _row(question="asked twice?")])
    with pytest.raises(DataError, match=re.escape(
            f"{path}:3: duplicate question (video_id {GOOD['video_id']!r}, question_id '1'), first on line 1")):
        read_egotextvqa_jsonl(path, "indoor")


@pytest.mark.parametrize("field, value, shown", [
    ("question", ["what", "is it?"], "list"),
    ("correct_answer", {"text": "windex"}, "dict"),
    ("question_type", ["kitchen"], "list"),
    ("video_id", ["0479bea8-d221-4c6a-8c91-60108e43fe56"], "list"),
    ("question_id", True, "bool"),
    ("correct_answer", ["windex", 3], "list"),  # a list of answers holds strings only
])
def test_list_dict_or_bool_text_fields_name_file_line_and_field(tmp_path, field, value, shown):
    path = _write_bytes(tmp_path, [_row(), _row(**{"question_id": "2", field: value})])
    with pytest.raises(DataError, match=re.escape(f"{path}:2: field {field} must be") + f".*{shown}"):
        read_egotextvqa_jsonl(path, "indoor")


def test_a_list_of_acceptable_answers_is_kept_as_alternatives(tmp_path):
    path = _write_bytes(tmp_path, [_row(correct_answer=["windex", "window cleaner"])])
    (doc,) = read_egotextvqa_jsonl(path, "indoor")
    assert doc["answer"] == "windex | window cleaner"
    assert answer_alternatives(doc["answer"]) == ["windex", "window cleaner"]


def test_latin1_annotation_file_names_the_file_and_line(tmp_path, monkeypatch):
    path = _write_bytes(tmp_path, [_row(), _row(question_id="2", question="café?")], encoding="latin-1")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: not UTF-8 text")):
        read_egotextvqa_jsonl(path, "indoor")
    tempo = tmp_path / "egotempo_openQA.json"
    tempo.write_bytes(json.dumps({"annotations": [TEMPO_GOOD, {**TEMPO_GOOD, "question": "café?"}]}, indent=1,
                                 ensure_ascii=False).encode("latin-1"))
    with pytest.raises(DataError, match=re.escape(f"{tempo}:") + r"\d+: not UTF-8 text"):
        read_egotempo_json(tempo)


CLIP = "0d270946-95c5-4e71-ae49-b9e802548147_120.0_180.0"
TEMPO_GOOD = {"question_id": CLIP, "clip_id": CLIP, "question_type": "counting objects", "question": "how many?",
              "answer": "Two."}


def _write_tempo(tmp_path, rows) -> Path:
    path = tmp_path / "egotempo_openQA.json"
    path.write_text(json.dumps({"annotations": rows}, indent=2))
    return path


@pytest.mark.parametrize("video", [CLIP, f"{CLIP}.mp4", f"clips/{CLIP}.MP4"])
def test_an_egotempo_video_field_names_the_clip_with_its_times_whole(video):
    # lmms-lab-eval/egotempo gives `video`, not `clip_id`: only a video extension is taken off it.
    from egotask.data.sources import BENCHMARKS, egotempo_doc

    row = {k: v for k, v in TEMPO_GOOD.items() if k != "clip_id"}
    assert egotempo_doc({**row, "video": video}, BENCHMARKS["egotempo_openqa"], "row 1")["video_id"] == CLIP


@pytest.mark.parametrize("clip_id", ["../outside", "/etc/passwd", "sub/clip", "..", ""])
def test_egotempo_clip_id_that_leaves_the_video_folder_names_file_and_line(tmp_path, monkeypatch, clip_id):
    path = _write_tempo(tmp_path, [TEMPO_GOOD, {**TEMPO_GOOD, "clip_id": clip_id, "question_id": "q2"}])
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if '"q2"' in text) - 1  # the object's opening brace
    message = "missing field(s) clip_id" if not clip_id else "field clip_id must be a file name"
    with pytest.raises(DataError, match=re.escape(f"{path}:{line}: annotations[1]: {message}")):
        read_egotempo_json(path)
    # The task path: the egotempo task's docs come from the same reader.
    monkeypatch.setenv("EGOTEMPO_ANNOTATIONS", str(path))
    monkeypatch.setenv("EGOTEMPO_VIDEO_DIR", str(tmp_path / "clips"))
    with pytest.raises(DataError, match=re.escape(f"{path}:{line}")):
        make_process_docs("egotempo_openqa")(None)


@pytest.mark.parametrize("video_id", ["../outside", "/etc/passwd", "a/../../b"])
def test_a_video_path_built_from_an_id_never_leaves_its_folder(tmp_path, monkeypatch, video_id):
    monkeypatch.setenv("EGOTEMPO_VIDEO_DIR", str(tmp_path / "clips"))
    doc = {"benchmark": "egotempo_openqa", "video_id": video_id, "question_id": "1"}
    for lookup in (local_video_path, resolve_video):
        with pytest.raises(DataError, match="not a file name.*EGOTEMPO_VIDEO_DIR"):
            lookup(doc)


def test_duplicate_egotempo_question_names_both_lines(tmp_path):
    path = _write_tempo(tmp_path, [TEMPO_GOOD, {**TEMPO_GOOD, "question": "again?"}])
    with pytest.raises(DataError, match=re.escape(f"{path}:") + r"\d+: annotations\[1\]: duplicate question"):
        read_egotempo_json(path)
