"""`egotask report`: tables from hand-made records (golden file), CIs, README block, templates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from egotask.cli import main
from egotask.reports.collect import collect_runs
from egotask.reports.readme import END, START, ReadmeMarkerError, replace_block, update_readme
from egotask.reports.render import render_markdown
from egotask.reports.stats import bootstrap_ci
from egotask.reports.tables import BootstrapOptions

GOLDEN = Path(__file__).parent / "golden" / "report_small.md"


def record(model, split, qtype, qid, pred, score, visible_end=3.0):
    task = {"indoor": "egotextvqa_indoor", "egotempo": "egotempo_openqa"}[split]
    verdict = {"pred": pred, "score": score, "judge": "gemini", "judge_model": "gemini-2.5-flash",
               "prompt_version": "v1"}
    if pred is None:
        verdict["error"] = "unparseable reply"
    return {"task": task, "split": split, "video_id": f"v{qid}", "question_id": str(qid),
            "question_type": qtype, "question": "q?", "answer": "a", "timestamp": visible_end,
            "visible": [0.0, visible_end], "prediction": "p", "model": model, "verdict": verdict}


# Hand-computed (failed items are left out):
#   model-a indoor: kitchen yes/5, no/1 -> 50.0 %, 3.00; shopping yes/4, failed -> 100.0 %, 4.00;
#                   overall 2 of 3 judged -> 66.7 %, (5+1+4)/3 = 3.33; n 4, judged 3, failed 1
#   model-b indoor (whole video): kitchen no/0, no/2 -> 0.0 %, 1.00; shopping yes/5, yes/3 -> 100.0 %,
#                   4.00; overall 2 of 4 -> 50.0 %, 10/4 = 2.50
#   model-a egotempo: counting objects yes/5, no/0 -> 50.0 %, 2.50
SMALL = [
    record("model-a", "indoor", "kitchen", 1, "yes", 5), record("model-a", "indoor", "kitchen", 2, "no", 1),
    record("model-a", "indoor", "shopping", 3, "yes", 4), record("model-a", "indoor", "shopping", 4, None, None),
    record("model-b", "indoor", "kitchen", 1, "no", 0, None), record("model-b", "indoor", "kitchen", 2, "no", 2, None),
    record("model-b", "indoor", "shopping", 3, "yes", 5, None),
    record("model-b", "indoor", "shopping", 4, "yes", 3, None),
    record("model-a", "egotempo", "counting objects", 5, "yes", 5, None),
    record("model-a", "egotempo", "counting objects", 6, "no", 0, None),
]


def write_records(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def small_runs(tmp_path):
    return collect_runs([write_records(tmp_path / "small.records.jsonl", SMALL)])


def test_markdown_of_hand_made_samples_matches_the_golden_file(small_runs):
    text = render_markdown(small_runs, opts=BootstrapOptions(n_resamples=500, seed=0),
                           plots={"indoor": "plots/indoor_accuracy_by_type.png"})
    if os.environ.get("EGOTASK_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_hand_computed_accuracy_score_and_best_marks_appear(small_runs):
    text = render_markdown(small_runs)
    assert "| model-a | egotextvqa_indoor | indoor | 66.7 |" in text
    assert "| 3.33 |" in text and "| 4 | 3 | 1 |" in text
    assert "| model-b | egotextvqa_indoor | indoor | 50.0 |" in text and "| 2.50 |" in text
    assert "| model-a | egotempo_openqa | egotempo | 50.0 |" in text
    # best per row in bold; a row where everyone ties, or a single model, gets no bold
    assert "| kitchen | **50.0** | **3.00** | 0.0 | 1.00 |" in text
    assert "| shopping | 100.0 | 4.00 | 100.0 | 4.00 |" in text
    assert "| counting objects | 50.0 | 2.50 |" in text
    assert "gemini (model gemini-2.5-flash), prompt version v1" in text
    assert "real time, only the video before each question's timestamp for model-a" in text
    assert "the whole video for model-b" in text


def test_confidence_intervals_are_seeded_and_sensible():
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0)
    assert bootstrap_ci([]) is None
    values = [1.0] * 200 + [0.0] * 200
    low, high = bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) == (low, high)
    # normal approximation: 0.5 +- 1.96 * sqrt(0.25 / 400) = 0.5 +- 0.049
    assert low == pytest.approx(0.451, abs=0.01) and high == pytest.approx(0.549, abs=0.01)


def test_console_format_prints_tabulate_tables_with_cis_and_best_marks(tmp_path, capsys):
    path = write_records(tmp_path / "small.records.jsonl", SMALL)
    assert main(["report", str(path), "--format", "console"]) == 0
    out = capsys.readouterr().out
    assert "acc 95% CI" in out and "EgoTextVQA indoor by question type (* best)" in out
    assert "50.0*" in out and "judge: gemini (gemini-2.5-flash), prompt v1" in out


def test_readme_block_replacement_is_idempotent_and_keeps_the_rest():
    text = f"# Title\n\nintro\n\n{START}\nold table\n{END}\n\n## Next\n"
    once = replace_block(text, "| new |\n")
    assert once == f"# Title\n\nintro\n\n{START}\n| new |\n{END}\n\n## Next\n"
    assert replace_block(once, "| new |\n") == once


def test_markers_quoted_in_prose_are_not_markers():
    text = f"Use `{START}` and `{END}`.\n\n{START}\nold\n{END}\n"
    assert replace_block(text, "new") == f"Use `{START}` and `{END}`.\n\n{START}\nnew\n{END}\n"
    with pytest.raises(ReadmeMarkerError, match="must appear once each"):
        replace_block(text + f"{START}\n", "new")


def test_readme_without_markers_is_refused_clearly_and_left_untouched(tmp_path, small_runs, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nno markers here\n")
    with pytest.raises(ReadmeMarkerError, match=r"README.md: no <!-- egotask:results:start -->"):
        update_readme(readme, "x")
    path = write_records(tmp_path / "small.records.jsonl", SMALL)
    assert main(["report", str(path), "--readme", str(readme)]) == 2
    err = capsys.readouterr().err
    assert "no <!-- egotask:results:start --> and <!-- egotask:results:end --> marker" in err
    assert readme.read_text() == "# Title\n\nno markers here\n"
    assert not (tmp_path / "report_plots").exists()  # nothing written before the refusal


def test_readme_option_writes_the_block_and_plots_and_a_rerun_changes_nothing(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START}\n{END}\n\ntail\n")
    path = write_records(tmp_path / "small.records.jsonl", SMALL)
    args = ["report", str(path), "--readme", str(readme), "--plots", str(tmp_path / "docs" / "results")]
    assert main(args) == 0
    first = readme.read_text()
    assert "| model-a | egotextvqa_indoor | indoor | 66.7 |" in first and first.endswith(f"{END}\n\ntail\n")
    assert "![EgoTextVQA indoor: accuracy by question type](docs/results/indoor_accuracy_by_type.png)" in first
    png = (tmp_path / "docs" / "results" / "indoor_accuracy_by_type.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args) == 0
    assert "already up to date" in capsys.readouterr().err
    assert readme.read_text() == first
    assert (tmp_path / "docs" / "results" / "indoor_accuracy_by_type.png").read_bytes() == png


def test_template_option_renders_a_user_template_that_includes_built_in_parts(tmp_path, capsys):
    template = tmp_path / "mine.md.j2"
    template.write_text("# My results\n{% include 'overall.md.j2' %}\n{{ overall | length }} runs\n")
    path = write_records(tmp_path / "small.records.jsonl", SMALL)
    assert main(["report", str(path), "--template", str(template)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# My results\n### Overall") and "3 runs" in out
    assert main(["report", str(path), "--template", str(tmp_path / "missing.j2")]) == 2
    assert "missing.j2: no such file" in capsys.readouterr().err


def test_runs_sharing_model_and_split_get_distinct_labels(tmp_path):
    a = write_records(tmp_path / "first.records.jsonl", SMALL[:4])
    b = write_records(tmp_path / "second.records.jsonl", SMALL[:4])
    labels = sorted(r.label for r in collect_runs([a, b]))
    assert labels == ["model-a (first)", "model-a (second)"]


@pytest.mark.slow
def test_report_over_a_real_lmms_eval_output_folder(sample_env, tiny_qwen, tmp_path, lmms_eval, capsys):
    out = tmp_path / "out"
    run = lmms_eval(["--tasks", "egotextvqa_indoor,egotempo_openqa", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen},max_frames=2", "--limit", "2"], sample_env, out)
    assert run.returncode == 0, run.output
    report = tmp_path / "report" / "results.md"
    assert main(["report", str(out), "--output", str(report)]) == 0
    text = report.read_text()
    model = tiny_qwen.name
    for task, split in (("egotextvqa_indoor", "indoor"), ("egotempo_openqa", "egotempo")):
        row = next(line for line in text.splitlines() if line.startswith(f"| {model} | {task} | {split} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] != "–" and cells[4].startswith("[") and cells[7:] == ["2", "2", "0"], row
    assert "Judge: heuristic" in text
    assert "EgoTextVQA indoor: the models saw real time, only the video before each question's timestamp" in text
    for split in ("indoor", "egotempo"):
        assert f"](report_plots/{split}_accuracy_by_type.png)" in text
        assert (report.parent / "report_plots" / f"{split}_accuracy_by_type.png").is_file()
    # Without --log_samples' files the report still has the tables, and says why there are no CIs.
    for samples in out.rglob("*_samples_*.jsonl"):
        samples.unlink()
    assert main(["report", str(out), "--no-plots"]) == 0
    captured = capsys.readouterr()
    assert "rerun lmms_eval with --log_samples" in captured.err
    assert f"No samples were logged for {model} (indoor), {model} (egotempo)" in captured.out
