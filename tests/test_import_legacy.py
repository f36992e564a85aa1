"""`egotask import-legacy`: the predecessor's files become records the report reads."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from egotask.cli import main
from egotask.records import load_records
from egotask.reports.collect import collect_runs
from egotask.reports.legacy import LegacyError, choose_files, convert_file, parse_name

INDOOR = "0479bea8-d221-4c6a-8c91-60108e43fe56"


def legacy_row(video_id=INDOOR, qid="1", acc="yes", score=5, key="gemini-2.5-flash", **extra):
    row = {"question_id": qid, "video_id": video_id, "question": "where?", "question_type": "kitchen",
           key: "on the shelf", "correct_answer": "the shelf", **extra}
    if acc is not None:
        row["acc"] = acc
    if score is not None:
        row["score"] = score
    return row


def write(path: Path, rows) -> Path:
    path.write_text(json.dumps(rows))
    return path


def test_split_comes_from_the_video_id_and_missing_verdicts_are_failures_not_wrong(tmp_path):
    path = write(tmp_path / "m_results.json", [
        legacy_row(qid="1"), legacy_row(video_id="101", qid="1", acc="no", score=0),
        legacy_row(qid="2", acc=None, score=None), legacy_row(video_id="102", qid="3", acc="maybe", score=2),
        legacy_row(qid="4", acc="YES ", score="4")])
    records = convert_file(parse_name(path))
    assert [r.setting for r in records] == ["indoor", "outdoor", "indoor", "outdoor", "indoor"]
    assert [r.verdict.pred for r in records] == ["yes", "no", None, None, "yes"]
    assert records[2].verdict.error == "no verdict in the predecessor's results file"
    assert "acc='maybe'" in records[3].verdict.error
    assert records[4].verdict.score == 4
    assert {r.verdict.judge for r in records} == {"legacy-gemini"}
    assert {r.verdict.prompt_version for r in records} == {"legacy-unknown"}
    assert records[0].model == "m" and records[0].visible == (0.0, None)
    assert records[0].task == "egotextvqa_indoor" and records[1].task == "egotextvqa_outdoor"


def test_report_over_imported_records_leaves_failures_out_of_the_denominator(tmp_path, capsys):
    src = write(tmp_path / "m_results.json", [legacy_row(qid="1"), legacy_row(qid="2", acc="no", score=1),
                                               legacy_row(qid="3", acc=None, score=None)])
    assert main(["import-legacy", str(src), "--output", str(tmp_path / "out")]) == 0
    (run,) = collect_runs([tmp_path / "out"])
    assert (run.model, run.setting, run.task) == ("m", "indoor", "egotextvqa_indoor")
    assert run.records[0].benchmark == "egotextvqa_indoor" and not run.failed_counted_as_wrong
    assert (run.summary["n"], run.summary["n_judged"], run.summary["n_failed"]) == (3, 2, 1)
    assert run.summary["accuracy"] == 0.5 and run.summary["score"] == 3.0


def test_egotempo_split_comes_from_the_file_name(tmp_path):
    clip = f"{INDOOR}_120.0_180.0"
    path = write(tmp_path / "m_egotempo_test_results.json", [legacy_row(video_id=clip, qid=clip)])
    (rec,) = convert_file(parse_name(path))
    assert (rec.setting, rec.task, rec.video_id) == ("egotempo", "egotempo_openqa", clip)


def test_model_key_option_reads_another_field_and_a_wrong_key_says_how_to_fix(tmp_path, capsys):
    path = write(tmp_path / "m_results.json", [legacy_row(key="answer_model")])
    with pytest.raises(LegacyError, match=r"m_results.json: row 0: no prediction under the model key "
                                          r"'gemini-2.5-flash' \(other fields: answer_model\); pass --model-key"):
        convert_file(parse_name(path))
    assert main(["import-legacy", str(path), "--output", str(tmp_path / "o"), "--model-key", "answer_model"]) == 0
    (rec,) = load_records(tmp_path / "o" / "m_results.records.jsonl")
    assert rec.prediction == "on the shelf"


def test_bad_rows_and_names_are_errors_naming_file_row_and_field(tmp_path):
    bad_id = write(tmp_path / "m_results.json", [legacy_row(), legacy_row(video_id="abc", qid="2")])
    with pytest.raises(LegacyError, match=r"m_results.json: row 1: video id 'abc' is neither"):
        convert_file(parse_name(bad_id))
    no_q = write(tmp_path / "n_results.json", [{k: v for k, v in legacy_row().items() if k != "question"}])
    with pytest.raises(LegacyError, match=r"n_results.json: row 0: missing field\(s\) question"):
        convert_file(parse_name(no_q))
    with pytest.raises(LegacyError, match=r"results.csv: not a predecessor file name"):
        parse_name(tmp_path / "results.csv")


def test_report_on_an_unconverted_predecessor_file_points_to_import_legacy(tmp_path, capsys):
    path = write(tmp_path / "m_results.json", [legacy_row()])
    assert main(["report", str(path)]) == 2
    assert "convert it with `egotask import-legacy` first" in capsys.readouterr().err


def test_a_bad_file_stops_the_import_but_keeps_files_already_converted(tmp_path, capsys):
    good = write(tmp_path / "a_results.json", [legacy_row()])
    bad = write(tmp_path / "b_results.json", [legacy_row(video_id="abc")])
    assert main(["import-legacy", str(good), str(bad), "--output", str(tmp_path / "o")]) == 2
    assert "b_results.json: row 0" in capsys.readouterr().err
    assert len(load_records(tmp_path / "o" / "a_results.records.jsonl")) == 1
    assert json.loads((tmp_path / "o" / "import-legacy.json").read_text())["files"].keys() == {"a_results.json"}


def test_predictions_files_import_unjudged_unless_their_results_file_is_given(tmp_path):
    preds = write(tmp_path / "m_predictions.json", [legacy_row(acc=None, score=None)])
    results = write(tmp_path / "m_results.json", [legacy_row()])
    chosen, skipped = choose_files([preds, results])
    assert [f.path for f in chosen] == [results] and [f.path for f, _ in skipped] == [preds]
    (rec,) = convert_file(parse_name(preds))
    assert rec.verdict.pred is None and rec.verdict.judge == "unjudged"
    assert "predictions file" in rec.verdict.error


# --------------------------------------------------------------------------- the real files

UUID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")


def expected_counts(path: Path) -> Counter:
    """Split counts read straight from a predecessor file, independently of the importer."""
    rows = json.loads(path.read_text())
    if "_egotempo_test_" in path.name:
        return Counter({"egotempo": len(rows)})
    return Counter("indoor" if UUID.match(r["video_id"]) else "outdoor" for r in rows if r["video_id"])


def test_every_seed_result_file_imports_with_the_files_split_counts(shared_data, tmp_path, capsys):
    seed = shared_data / "seed_results"
    files = sorted(seed.glob("*.json"))
    assert len(files) == 20
    # Results files (with verdicts), then the predictions files on their own (unjudged).
    results = [f for f in files if f.name.endswith("_results.json")]
    predictions = [f for f in files if f.name.endswith("_predictions.json")]
    assert main(["import-legacy", *map(str, results), "--output", str(tmp_path / "res")]) == 0
    assert main(["import-legacy", *map(str, predictions), "--output", str(tmp_path / "pred")]) == 0
    for folder, group in ((tmp_path / "res", results), (tmp_path / "pred", predictions)):
        for src in group:
            records = load_records(folder / (src.name.removesuffix(".json") + ".records.jsonl"))
            assert Counter(r.setting for r in records) == expected_counts(src), src.name
            raw = json.loads(src.read_text())
            if src in results:
                assert sum(r.verdict.pred == "yes" for r in records) == \
                    sum(row["acc"] == "yes" for row in raw), src.name
            else:
                assert all(r.verdict.pred is None for r in records), src.name
    counts = expected_counts(seed / "Qwen3-VL-2B-Instruct_results.json")
    assert counts == {"indoor": 199, "outdoor": 486}
    runs = {(r.model, r.setting): r for r in collect_runs([tmp_path / "res"])}
    assert len(runs) == 16
    tempo = runs[("Qwen3-VL-2B-Instruct", "egotempo")]
    assert tempo.summary["n"] == 496 and tempo.summary["accuracy"] == pytest.approx(125 / 496)
