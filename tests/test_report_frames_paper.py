"""Report footers name the frame settings (from the records' ``frames``, else the results' summary),
and `--paper` adds the published numbers as reference rows, apart from egotask's runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from egotask import scoring
from egotask.cli import main
from egotask.records import SampleRecord, Verdict, write_records
from egotask.reports.collect import collect_runs
from egotask.reports.render import render_console, render_markdown

JUDGE = {"judge": "gemini", "judge_model": "gemini-2.5-flash", "prompt_version": "egotask-judge-v1"}


def rec(model: str, setting: str, qid: int, pred: str, frames: dict | None) -> SampleRecord:
    bench = {"indoor": "egotextvqa_indoor", "outdoor": "egotextvqa_outdoor"}[setting]
    vid = "0479bea8-d221-4c6a-8c91-60108e43fe56" if setting == "indoor" else "11"
    return SampleRecord(task=bench, benchmark=bench, setting=setting, video_id=vid, question_id=str(qid),
                        question_type="kitchen" if setting == "indoor" else "location", question="q?", answer="a",
                        prediction="p", verdict=Verdict(pred=pred, score=4 if pred == "yes" else 1, **JUDGE),
                        timestamp=5.0, visible=(0.0, 5.0), frames=frames, model=model)


PAPER = {"max_frames": 60, "fps": None, "max_pixels": 589824}


def paper_runs(tmp_path: Path) -> Path:
    path = tmp_path / "runs.records.jsonl"
    write_records([rec("qwen-paper", "indoor", 1, "yes", {**PAPER, "n_frames": 60}),
                   rec("qwen-paper", "indoor", 2, "no", {**PAPER, "n_frames": 12}),  # a question at 0.4 s
                   rec("qwen-default", "indoor", 1, "no", {"max_frames": 8, "fps": 2.0, "max_pixels": None,
                                                           "n_frames": 8})], path)
    return path


def test_summary_carries_the_frame_settings_and_frames_shown():
    records = [rec("m", "indoor", 1, "yes", {**PAPER, "n_frames": 60}),
               rec("m", "indoor", 2, "no", {**PAPER, "n_frames": 12}), rec("m", "indoor", 3, "no", None)]
    assert scoring.summarize(records)["frames"] == {"settings": [PAPER], "n_recorded": 2, "n": 3,
                                                    "n_frames": {"min": 12, "max": 60, "mean": 36.0}}
    assert scoring.summarize(records[2:])["frames"] is None


def test_footer_names_each_runs_frame_settings_from_its_records(tmp_path):
    runs = collect_runs([paper_runs(tmp_path)])
    markdown = render_markdown(runs)
    assert ("- Frames: max_frames 8, fps 2.0, max_pixels unset (8 frames per question), for qwen-default (indoor)."
            in markdown)
    assert ("- Frames: max_frames 60, fps unset, max_pixels 589824 (12-60 frames per question), for qwen-paper "
            "(indoor)." in markdown)
    console = render_console(runs)
    assert "frames: max_frames 60, fps unset, max_pixels 589824 (12-60 frames per question) for qwen-paper" in console


def test_footer_reads_the_frame_settings_from_a_results_file_without_samples(tmp_path):
    records = [rec("m", "outdoor", 1, "yes", {"max_frames": 32, "fps": None, "max_pixels": None, "n_frames": 32})]
    summary = scoring.summarize(records)
    (tmp_path / "2026-01-01_results.json").write_text(json.dumps({
        "model_name": "m", "results": {"egotextvqa_outdoor": {"details,none": summary}}}))
    markdown = render_markdown(collect_runs([tmp_path]))
    assert "- Frames: max_frames 32, fps unset, max_pixels unset (32 frames per question)." in markdown


def test_runs_that_recorded_no_frame_settings_say_so(tmp_path):
    path = tmp_path / "old.records.jsonl"
    write_records([rec("m", "indoor", 1, "yes", None)], path)
    assert "- Frames: not recorded." in render_markdown(collect_runs([path]))


def test_paper_rows_are_a_table_of_their_own_with_the_source_named(tmp_path, capsys):
    path = paper_runs(tmp_path)
    assert main(["report", str(path), "--no-plots"]) == 0
    plain = capsys.readouterr().out
    assert "published" not in plain.lower()
    assert main(["report", str(path), "--no-plots", "--paper"]) == 0
    out = capsys.readouterr().out
    published = out[out.index("### Published results"):out.index("### EgoTextVQA indoor by question type")]
    rows = [line for line in published.splitlines() if line.startswith("| ") and "(published)" in line]
    # Only the indoor table: the runs are indoor.
    assert rows == [
        "| Human (published) | EgoTextVQA indoor | egotextvqa_indoor | 27.7 | 1.9 | – |",
        "| Gemini 1.5 Pro (published) | EgoTextVQA indoor | egotextvqa_indoor | 34.4 | 2.1 | 60 |",
        "| Gemini 1.5 Flash (published) | EgoTextVQA indoor | egotextvqa_indoor | 32.0 | 2.1 | 60 |",
        "| GPT-4o (published) | EgoTextVQA indoor | egotextvqa_indoor | 28.3 | 1.8 | 60 |",
        "| LLaVA-NeXT-Video (published) | EgoTextVQA indoor | egotextvqa_indoor | 25.4 | 1.8 | 128 |"]
    assert "EgoTextVQA: Towards Egocentric Scene-Text Aware Video Question Answering" in published
    assert "GPT-4o-mini" in published
    # egotask's own tables are the same with or without the reference rows.
    assert out.replace(published, "") == plain


def test_paper_rows_in_the_console_include_the_real_time_subset_for_outdoor_runs(tmp_path, capsys):
    path = tmp_path / "o.records.jsonl"
    write_records([rec("m", "outdoor", 1, "yes", None)], path)
    assert main(["report", str(path), "--format", "console", "--paper"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Gemini 1\.5 Pro \(published\) +EgoTextVQA outdoor, real-time subset \(623 questions\) "
                     r"+egotextvqa_outdoor_realtime +20\.2 +1\.4", out)
    assert "Human (published)" in out and "EgoTextVQA indoor" not in out
