"""`egotask judge` on `egotask import-legacy` output: records files re-judged with the same outputs as
lmms-eval samples, agreement per file and task and over all inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from egotask.cli import main
from egotask.judges.heuristic import RULES_VERSION
from egotask.records import load_records
from egotask.reports.collect import collect_runs

INDOOR = "0479bea8-d221-4c6a-8c91-60108e43fe56"


def legacy_row(video_id, qid, prediction, answer, acc, score):
    return {"question_id": qid, "video_id": video_id, "question": "what does the sign say?",
            "question_type": "kitchen" if video_id == INDOOR else "location", "gemini-2.5-flash": prediction,
            "correct_answer": answer, "acc": acc, "score": score}


def imported(tmp_path: Path) -> Path:
    """One predecessor results file (indoor and outdoor mixed), converted by import-legacy."""
    rows = [legacy_row(INDOOR, "1", "kornflake", "kornflake", "yes", 5),
            legacy_row(INDOOR, "2", "the spice rack", "paprika", "no", 0),
            legacy_row("101", "1.0", "the speed limit here is 65 mph.", "65 mph", "no", 0),  # a failed call
            legacy_row("101", "2.0", "elm street", "elm st", "yes", 4),
            legacy_row("102", "1.0", "next to the car wash", "bakery", "no", 1)]
    src = tmp_path / "m_results.json"
    src.write_text(json.dumps(rows))
    assert main(["import-legacy", str(src), "--output", str(tmp_path / "legacy")]) == 0
    return tmp_path / "legacy"


def test_judge_accepts_an_import_legacy_folder_and_writes_the_samples_outputs(tmp_path, capsys):
    folder = imported(tmp_path)
    capsys.readouterr()
    assert main(["judge", str(folder), "--judge", "heuristic"]) == 0
    printed = capsys.readouterr().out
    indoor, outdoor = (folder / f"m_results_rejudged-heuristic-{RULES_VERSION}_samples_egotextvqa_{s}.jsonl"
                       for s in ("indoor", "outdoor"))
    assert [r.question_id for r in load_records(indoor)] == ["1", "2"]
    assert [r.question_id for r in load_records(outdoor)] == ["1.0", "2.0", "1.0"]
    new = {(r.video_id, r.question_id): r.verdict for r in load_records(indoor) + load_records(outdoor)}
    assert {v.judge for v in new.values()} == {"heuristic"}
    assert new[("101", "1.0")].pred == "yes"  # the answer the predecessor's failing judge recorded as "no"
    assert new[(INDOOR, "2")].pred == "no"
    results = json.loads((folder / f"m_results_rejudged-heuristic-{RULES_VERSION}_results.json").read_text())
    assert set(results["results"]) == {"egotextvqa_indoor", "egotextvqa_outdoor"}
    assert results["model_name"] == "m"
    agree = results["egotask_rejudge"]["agreement"]
    assert agree["egotextvqa_outdoor"]["saved_judge"]["judge"] == "legacy-gemini"
    assert agree["egotextvqa_outdoor"]["n_compared"] == 3 and agree["egotextvqa_outdoor"]["verdict_agreement"] == 0.6667
    lines = [line.split() for line in printed.splitlines()[2:] if line.strip()]
    # the run column names the records' model and the file: "m (m_results)"
    assert ["m", "(m_results)", "egotextvqa_indoor"] in [line[:3] for line in lines] and "all inputs" in printed
    overall = next(line for line in printed.splitlines() if line.startswith("all inputs"))
    assert overall.split()[2:4] == ["5", "5"] and "80.0" in overall  # 4 of 5 verdicts agree

    # A second run reads only the records files, never its own outputs; the report reads both.
    assert main(["judge", str(folder), "--judge", "heuristic"]) == 0
    assert "5 predictions from 1 file(s)" in capsys.readouterr().err
    runs = collect_runs([folder])
    assert sorted((r.setting, r.summary["judge"]) for r in runs) == [
        ("indoor", "heuristic"), ("indoor", "legacy-gemini"), ("outdoor", "heuristic"), ("outdoor", "legacy-gemini")]


def test_a_single_records_file_can_be_named(tmp_path, capsys):
    folder = imported(tmp_path)
    assert main(["judge", str(folder / "m_results.records.jsonl"), "--judge", "heuristic"]) == 0
    assert (folder / f"m_results_rejudged-heuristic-{RULES_VERSION}_results.json").is_file()


def test_a_folder_without_samples_or_records_names_both_kinds(tmp_path, capsys):
    assert main(["judge", str(tmp_path), "--judge", "heuristic"]) == 2
    err = capsys.readouterr().err
    assert "*_samples_<task>.jsonl" in err and "*.records.jsonl" in err


def test_heuristic_agreement_with_the_predecessors_gemini_verdicts_is_the_readmes(shared_data, tmp_path, capsys):
    """docs/results.md's figure: 85.1% agreement, kappa 0.24 over 5,462 items (Qwen3-VL-4B left out)."""
    files = [p for p in sorted((shared_data / "seed_results").glob("*_results.json")) if "Qwen3-VL-4B" not in p.name]
    assert main(["import-legacy", *map(str, files), "--output", str(tmp_path / "legacy")]) == 0
    capsys.readouterr()
    assert main(["judge", str(tmp_path / "legacy"), "--judge", "heuristic"]) == 0
    overall = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("all inputs")).split()
    assert overall[2:4] == ["5462", "5462"]
    assert overall[-5:-3] == ["5462", "85.1"] and overall[-3] == "0.239"
    shutil.rmtree(tmp_path / "legacy")
