"""`egotask report`: tables from hand-made records (golden file), CIs, README block, templates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from egotask import scoring, settings
from egotask.app.runs import load_paths
from egotask.cli import main
from egotask.records import RECORD_VERSION, RecordError, SampleRecord, Verdict
from egotask.reports.collect import collect_runs
from egotask.reports.readme import END, START, ReadmeMarkerError, replace_block, update_readme
from egotask.reports.render import render_markdown
from egotask.reports.stats import bootstrap_ci
from egotask.reports.tables import BootstrapOptions

GOLDEN = Path(__file__).parent / "golden" / "report_small.md"


def record(model, split, qtype, qid, pred, score, visible_end=3.0):
    """A record in version 1's shape (no version; ``task`` the benchmark, ``split`` the setting): the
    golden file is rendered from records as today's files hold them."""
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
    # 4 videos; 2 yes of 3 judged; failures as wrong: 2 yes of 4
    assert "| model-a | egotextvqa_indoor | indoor | 4 | 66.7 | [0.0, 100.0] | 50.0 |" in text
    assert "| 3.33 |" in text and "| 4 | 3 | 1 |" in text
    assert "| model-b | egotextvqa_indoor | indoor | 4 | 50.0 |" in text and "| 2.50 |" in text
    assert "| model-a | egotempo_openqa | egotempo | 2 | 50.0 |" in text
    # best per row in bold; a row where everyone ties, or a single model, gets no bold. Each cell has its
    # clustered CI: two videos answered yes and no resample to 0, 1/2 or 1; one video has no interval.
    assert "| kitchen | **50.0** [0.0, 100.0] | **3.00** [1.00, 5.00] | 0.0 [0.0, 0.0] | 1.00 [0.00, 2.00] |" in text
    assert "| shopping | 100.0 | 4.00 | 100.0 [100.0, 100.0] | 4.00 [3.00, 5.00] |" in text
    assert "| counting objects | 50.0 [0.0, 100.0] | 2.50 [0.00, 5.00] |" in text
    # model-a and model-b hold the same indoor questions: compared on the 3 both judged (yes/no, no/no,
    # yes/yes): model-a alone right once, McNemar p = 1; +33.3 pp; scores (5-0)+(1-2)+(4-5) = +3 over 3.
    row = overall_row(text, "| indoor | model-a | model-b |")
    assert row[3:8] == ["3", "3", "66.7", "33.3", "+33.3"] and row[9] == "+1.00"
    assert row[11:] == ["1.000", "1", "0"]
    assert "| kitchen | +50.0 | +2.00 |" in text and "| shopping | +0.0 | -1.00 |" in text
    assert "gemini (model gemini-2.5-flash), prompt version v1" in text
    # version-1 records carry no `seen`: the footer says what the task allowed, and that it was not measured
    assert ("real time, only the video before each question's timestamp (allowed by the task; what the model "
            "saw was not recorded) for model-a") in text
    assert "the whole video (allowed by the task; what the model saw was not recorded) for model-b" in text


def test_the_protocol_line_comes_from_what_the_model_was_shown(tmp_path):
    from egotask.records import read_record
    from egotask.reports.collect import TaskResult
    from egotask.reports.tables import REAL_TIME, WHOLE_VIDEO, protocol

    def run_of(seen_end):
        data = {**record("m", "indoor", "kitchen", 1, "yes", 5), "seen": [0.0, seen_end]}
        return TaskResult("m", "egotextvqa_indoor", "indoor", {}, tmp_path, records=[read_record(data, "test")])

    assert protocol(run_of(2.9)) == REAL_TIME  # last frame shown before the 3.0 s question
    # The task allowed only [0, 3.0), but the model was shown a frame at 3.2 s: the report says so.
    assert protocol(run_of(3.2)) == WHOLE_VIDEO


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
    assert "| model-a | egotextvqa_indoor | indoor | 4 | 66.7 |" in first and first.endswith(f"{END}\n\ntail\n")
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


def test_a_record_that_cannot_be_read_is_an_error_naming_file_and_line(tmp_path, capsys):
    bad = {**SMALL[0], "split": "kitchen", "task": "not_a_benchmark", "video_id": "v-odd"}
    path = write_records(tmp_path / "bad.records.jsonl", [SMALL[1], bad])
    with pytest.raises(RecordError, match=r"bad.records.jsonl:2: no setting"):
        collect_runs([path])
    assert main(["report", str(path)]) == 2
    assert "bad.records.jsonl:2: no setting" in capsys.readouterr().err


# --------------------------------------------------------------------------- the run's own choices

STAMP = "20260101_120000"


def v2_record(qid, pred, score, *, task="egotextvqa_indoor_fullvideo", generation_error=None):
    verdict = Verdict(pred, score, "heuristic", "heuristic-v1", "heuristic-v1") if pred else \
        Verdict.failure(judge="heuristic", judge_model="heuristic-v1", prompt_version="heuristic-v1",
                        error="not judged" if generation_error else "unparseable reply")
    return SampleRecord(task=task, benchmark="egotextvqa_indoor", setting="indoor", video_id=f"v{qid}",
                        question_id=str(qid), question_type="kitchen", question="q?", answer="a",
                        prediction="" if generation_error else "p", verdict=verdict, timestamp=2.0,
                        visible=(0.0, None), generation_error=generation_error)


# 4 judged (yes/5, yes/3, no/1, no/0), 1 judge failure, 1 without an answer.
CHOICE_RECORDS = [v2_record(1, "yes", 5), v2_record(2, "yes", 3), v2_record(3, "no", 1), v2_record(4, "no", 0),
                  v2_record(5, None, None), v2_record(6, None, None, generation_error="video could not be decoded")]


def write_lmms_run(folder: Path, records: list[SampleRecord], count_failed_as_wrong: bool,
                   summary_drop: tuple[str, ...] = (), model: str = "/ckpt/base-qwen") -> Path:
    """What `lmms_eval --log_samples` writes for one egotask task, scored with the run's choice."""
    task = records[0].task
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{STAMP}_samples_{task}.jsonl", "w") as fh:
        for i, r in enumerate(records):
            fh.write(json.dumps({"doc_id": i, "target": r.answer, "details": r.to_dict()}) + "\n")
    summary = scoring.summarize(records, count_failed_as_wrong)
    for key in summary_drop:
        summary.pop(key)
    results = {"model_name": model, "config": {"model": "qwen3vl", "limit": None},
               "results": {task: {"details,none": summary}}}
    (folder / f"{STAMP}_results.json").write_text(json.dumps(results))
    return folder


def report_text(paths) -> str:
    return render_markdown(collect_runs(paths), opts=BootstrapOptions(n_resamples=200, seed=0))


def overall_row(text: str, start: str) -> list[str]:
    row = next(line for line in text.splitlines() if line.startswith(start))
    return [c.strip() for c in row.strip("|").split("|")]


def test_the_same_records_give_the_same_report_whatever_egotask_variables_the_reader_has_set(
        tmp_path, monkeypatch, capsys):
    records_file = write_records(tmp_path / "small.records.jsonl", SMALL)
    # A run that chose to count failures as wrong, and one that did not: their own recorded choices.
    write_lmms_run(tmp_path / "out" / "counted", CHOICE_RECORDS, True, model="/ckpt/counted")
    write_lmms_run(tmp_path / "out" / "left", CHOICE_RECORDS, False, model="/ckpt/left")
    inputs = [records_file, tmp_path / "out"]

    def outputs() -> tuple[str, str, str]:
        assert main(["report", *map(str, inputs), "--no-plots"]) == 0
        markdown = capsys.readouterr().out
        assert main(["report", *map(str, inputs), "--format", "console"]) == 0
        console = capsys.readouterr().out
        return report_text(inputs), markdown, console

    plain = outputs()
    for var, value in (("EGOTASK_COUNT_FAILED_AS_WRONG", "1"), ("EGOTASK_JUDGE", "gemini"),
                       ("EGOTASK_JUDGE_MODEL", "other-model"), ("EGOTASK_MISSING_VIDEOS", "skip")):
        monkeypatch.setenv(var, value)
    settings.reset()  # settings are read once per process: read the new variables
    assert settings.get_settings().count_failed_as_wrong
    assert outputs() == plain
    monkeypatch.setenv("EGOTASK_COUNT_FAILED_AS_WRONG", "0")
    settings.reset()
    assert outputs() == plain

    text = plain[0]
    assert overall_row(text, "| model-a | egotextvqa_indoor |")[4:7:2] == ["66.7", "50.0"]
    # Both conventions side by side, whatever each run chose: 2 yes of 4 judged; 2 yes of 6 with the judge
    # failure and the item without an answer counted as no.
    counted = overall_row(text, "| counted |")
    left = overall_row(text, "| left |")
    assert counted[4] == left[4] == "50.0" and counted[6] == left[6] == "33.3"
    assert counted[10:] == left[10:] == ["6", "4", "1", "1"]
    assert "| Accuracy (%) | 95% CI | Accuracy, failures as wrong (%) | 95% CI |" in text
    assert ("counted (indoor) chose to count failures as wrong when scored (EGOTASK_COUNT_FAILED_AS_WRONG): "
            'the accuracy in its own results is the "failures as wrong" one.') in text
    assert "counted (indoor) chose to count failures as wrong when scored" in plain[2]
    assert "acc % (failures wrong)" in plain[2]


def test_generation_failures_show_next_to_judge_failures(tmp_path):
    text = report_text([write_lmms_run(tmp_path / "out", CHOICE_RECORDS, False)])
    assert "| n | Judged | Failed | No answer |" in text
    row = overall_row(text, "| base-qwen |")
    assert row[1:4] == ["egotextvqa_indoor_fullvideo", "indoor", "6"]
    assert row[10:] == ["6", "4", "1", "1"]
    assert ("items that failed to be judged or got no answer from the model are left out of both and counted "
            "under Failed and No answer") in text
    assert "No answer counts the items the model gave no answer for" in text
    # Results written before egotask counted generation failures: no such key, so none, and no column.
    older = report_text([write_lmms_run(tmp_path / "old", CHOICE_RECORDS[:5], False,
                                        summary_drop=("n_generation_failed", "generation_failed"))])
    assert "No answer" not in older and overall_row(older, "| base-qwen |")[10:] == ["5", "4", "1"]


@pytest.mark.parametrize("counted", [False, True])
def test_both_conventions_follow_from_summaries_written_before_egotask_kept_both(tmp_path, counted):
    """Older results hold only the convention the run chose; the other follows from the counts."""
    older = ("accuracy_judged", "score_judged", "accuracy_failed_as_wrong", "score_failed_as_wrong")
    folder = write_lmms_run(tmp_path / "out", CHOICE_RECORDS, counted, summary_drop=older)
    summary = json.loads(next(folder.glob("*_results.json")).read_text())["results"]
    assert not set(older) & set(summary["egotextvqa_indoor_fullvideo"]["details,none"])
    row = overall_row(report_text([folder]), "| base-qwen |")
    assert (row[4], row[6], row[8]) == ("50.0", "33.3", "2.25")  # 2 of 4 yes; 2 of 6; (5+3+1+0)/4
    by_type = next(line for line in report_text([folder]).splitlines() if line.startswith("| kitchen |"))
    assert by_type.startswith("| kitchen | 50.0 [") and "| 2.25 [" in by_type


# --------------------------------------------------------------------------- files from today's main

def v1_task_record(benchmark, setting, video_id, qid, pred, score, timestamp):
    """Exactly what tasklib's build_record wrote before records were versioned (version 1)."""
    verdict = {"pred": pred, "score": score, "judge": "heuristic", "judge_model": "heuristic-v1",
               "prompt_version": "heuristic-v1", "reason": "hand-made"}
    return {"task": benchmark, "split": setting, "video_id": video_id, "question_id": qid,
            "question_type": "kitchen", "question": "what is on the shelf?", "answer": "cereal",
            "timestamp": timestamp, "visible": [0.0, timestamp], "prediction": "cereal",
            "missing_videos_skipped": 0, "verdict": verdict}


INDOOR_VIDEO = "0479bea8-d221-4c6a-8c91-60108e43fe56"


def write_v1_output(folder: Path) -> Path:
    """An lmms-eval output folder written by today's main: v1 details, a summary without
    n_generation_failed."""
    by_task = {
        "egotextvqa_indoor": [v1_task_record("egotextvqa_indoor", "indoor", INDOOR_VIDEO, "1", "yes", 5, 3.0),
                              v1_task_record("egotextvqa_indoor", "indoor", INDOOR_VIDEO, "2", "no", 1, 7.5)],
        # A variant task: v1 stored only the benchmark, the samples file's name says the task.
        "egotextvqa_outdoor_fullvideo": [v1_task_record("egotextvqa_outdoor", "outdoor", "101", "1", "yes", 4,
                                                        None)],
    }
    run_dir = folder / "models__base-qwen"
    run_dir.mkdir(parents=True)
    results = {}
    for task, recs in by_task.items():
        with open(run_dir / f"{STAMP}_samples_{task}.jsonl", "w") as fh:
            for i, r in enumerate(recs):
                fh.write(json.dumps({"doc_id": i, "target": r["answer"], "details": r, "input": r["question"],
                                     "resps": [[r["prediction"]]], "filtered_resps": [r["prediction"]]}) + "\n")
        judged = [r["verdict"] for r in recs]
        yes = [v["pred"] == "yes" for v in judged]
        results[task] = {"details,none": {
            "n": len(recs), "n_judged": len(recs), "n_failed": 0, "accuracy": sum(yes) / len(yes),
            "score": sum(v["score"] for v in judged) / len(judged), "judge": "heuristic",
            "judge_model": "heuristic-v1", "prompt_version": "heuristic-v1", "failed_counted_as_wrong": False,
            "by_type": {"kitchen": {"n": len(recs), "n_judged": len(recs), "n_failed": 0,
                                    "accuracy": sum(yes) / len(yes),
                                    "score": sum(v["score"] for v in judged) / len(judged)}},
            "failed": []}}
    (run_dir / f"{STAMP}_results.json").write_text(json.dumps(
        {"model_name": "/models/base-qwen", "config": {"model": "qwen3vl", "model_args": "max_frames=4"},
         "results": results}))
    return folder


def write_v1_imported(path: Path) -> Path:
    """A `*.records.jsonl` written by today's `egotask import-legacy` (v1, with model, source, reasoning)."""
    verdict = {"pred": "no", "score": 0, "judge": "legacy-gemini", "judge_model": "legacy-unknown",
               "prompt_version": "legacy-unknown", "reason": ""}
    rows = [{"task": "egotextvqa_indoor", "split": "indoor", "video_id": INDOOR_VIDEO, "question_id": "1",
             "question_type": "kitchen", "question": "what is on the shelf?", "answer": "cereal",
             "timestamp": None, "visible": [0.0, None], "prediction": "milk", "reasoning": None,
             "model": "Qwen3-VL-2B", "source": "legacy:Qwen3-VL-2B_results.json", "verdict": verdict},
            {"task": "egotempo_openqa", "split": "egotempo", "video_id": f"{INDOOR_VIDEO}_0.0_60.0",
             "question_id": f"{INDOOR_VIDEO}_0.0_60.0_0", "question_type": "counting objects",
             "question": "how many cups?", "answer": "two", "timestamp": None, "visible": [0.0, None],
             "prediction": "two", "reasoning": None, "model": "Qwen3-VL-2B",
             "source": "legacy:Qwen3-VL-2B_egotempo_test_results.json", "verdict": {**verdict, "pred": "yes",
                                                                                   "score": 5}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_files_written_by_todays_main_load_in_the_report_and_the_app(tmp_path):
    output = write_v1_output(tmp_path / "output")
    imported = write_v1_imported(tmp_path / "Qwen3-VL-2B_results.records.jsonl")
    runs = {(r.model, r.task): r for r in collect_runs([output, imported])}
    expected = {("base-qwen", "egotextvqa_indoor"): ("egotextvqa_indoor", "indoor", 2),
                ("base-qwen", "egotextvqa_outdoor_fullvideo"): ("egotextvqa_outdoor", "outdoor", 1),
                ("Qwen3-VL-2B", "egotextvqa_indoor"): ("egotextvqa_indoor", "indoor", 1),
                ("Qwen3-VL-2B", "egotempo_openqa"): ("egotempo_openqa", "egotempo", 1)}
    assert set(runs) == set(expected)
    for key, (benchmark, setting, n) in expected.items():
        run = runs[key]
        assert run.setting == setting and len(run.records) == n and not run.failed_counted_as_wrong, key
        assert {(r.task, r.benchmark, r.setting) for r in run.records} == {(key[1], benchmark, setting)}, key
    indoor = runs[("base-qwen", "egotextvqa_indoor")].records
    assert [(r.visible, r.timestamp, r.verdict.pred) for r in indoor] == [((0.0, 3.0), 3.0, "yes"),
                                                                         ((0.0, 7.5), 7.5, "no")]
    legacy = runs[("Qwen3-VL-2B", "egotextvqa_indoor")].records[0]
    assert (legacy.source, legacy.prediction, legacy.visible) == ("legacy:Qwen3-VL-2B_results.json", "milk",
                                                                  (0.0, None))
    text = render_markdown(list(runs.values()), opts=BootstrapOptions(n_resamples=100))
    assert "No answer" not in text and "| base-qwen (egotextvqa_outdoor_fullvideo) |" not in text
    assert overall_row(text, "| base-qwen | egotextvqa_outdoor_fullvideo | outdoor |")[3:5] == ["1", "100.0"]

    loaded = load_paths([output, imported])
    assert loaded.problems == []
    lmms, legacy_run = loaded.runs
    assert lmms.label == f"base-qwen · {STAMP}"
    assert legacy_run.label == "Qwen3-VL-2B (Qwen3-VL-2B_results.records.jsonl)"
    assert sorted((r.task, r.benchmark, r.setting) for r in lmms.records) == [
        ("egotextvqa_indoor", "egotextvqa_indoor", "indoor"), ("egotextvqa_indoor", "egotextvqa_indoor", "indoor"),
        ("egotextvqa_outdoor_fullvideo", "egotextvqa_outdoor", "outdoor")]
    assert sorted((r.task, r.benchmark, r.setting) for r in legacy_run.records) == [
        ("egotempo_openqa", "egotempo_openqa", "egotempo"), ("egotextvqa_indoor", "egotextvqa_indoor", "indoor")]
    assert all(r.version == RECORD_VERSION for r in lmms.records)  # read into the current record


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
        assert cells[4] != "–" and cells[5].startswith("[") and cells[10:] == ["2", "2", "0"], row
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


def test_a_newline_or_pipe_in_a_model_name_stays_inside_its_table_cell(tmp_path):
    evil = "model-a\n# Injected heading\n| x | y"
    rows = [{**r, "model": evil} for r in SMALL if r["model"] == "model-a"]
    markdown = render_markdown(collect_runs([write_records(tmp_path / "evil.records.jsonl", rows)]))
    lines = markdown.splitlines()
    assert "# Injected heading" not in lines and not any(line.startswith("| x") for line in lines)
    row = next(line for line in lines if "Injected" in line and "egotextvqa_indoor" in line)
    assert row.startswith("| model-a # Injected heading \\| x \\| y | egotextvqa_indoor | indoor |")
    header = next(line for line in lines if line.startswith("| Model | Task |"))
    # as many cell separators as the header (escaped pipes do not count)
    assert row.replace("\\|", "").count("|") == header.count("|")


def test_the_readme_template_writes_only_the_short_overall_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{START}\n{END}\n")
    path = write_records(tmp_path / "small.records.jsonl", SMALL)
    assert main(["report", str(path), "--readme", str(readme), "--template", "readme.md.j2", "--no-plots"]) == 0
    block = readme.read_text().split(START)[1].split(END)[0]
    assert "| model-a | egotextvqa_indoor | 66.7 | [" in block
    assert "Judge: gemini (model gemini-2.5-flash), prompt version v1." in block
    assert "by question type" not in block and "Paired" not in block and "Videos" not in block
    assert len(block.strip().splitlines()) == 2 + 3 + 2  # header, 3 runs, a blank line and the judge
