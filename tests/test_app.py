"""The error-analysis app: loading runs, filtering, per-video views and comparing runs, driven
headless with Streamlit's AppTest on hand-made outputs over generated clips, plus `egotask app`
served over HTTP."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest  # streamlit is in the dev extra: these tests must run in CI

from egotask import settings
from egotask.app import media
from egotask.app.runs import load_paths
from egotask.app.selection import (
    GENERATION_NOT_MEASURED,
    compare_runs,
    filter_records,
    generation_text,
    question_rows,
    verdict_label,
    videos_of,
    webvtt,
)
from egotask.cli import build_parser
from egotask.commands.app import PAGE, streamlit_command
from egotask.fixtures import EGOTEMPO_SAMPLE, INDOOR_SAMPLE, OUTDOOR_SAMPLE, write_clip
from egotask.records import Generation, SampleRecord, Verdict
from egotask.reports.paired import compare_records
from egotask.reports.render import signed_ci
from egotask.scoring import summarize
from egotask.testing.app_server import app_server, free_port

APP_TIMEOUT = 180  # the first Video tab imports torch for the adapters' sampler; the machine is shared
STAMP = "20260101_120000"


def verdict(pred, score, reason=""):
    return Verdict(pred=pred, score=score, judge="heuristic", judge_model="heuristic-v1",
                   prompt_version="heuristic-v1", reason=reason,
                   error="judge reply could not be parsed" if pred is None else None)


def record(qa, task, setting, qid, ts, prediction, pred, score, question=None, answer=None):
    return SampleRecord(task=task, benchmark=task, setting=setting, video_id=qa.video_id, question_id=qid,
                        question_type=qa.question_type, question=question or qa.question,
                        answer=answer or qa.answer, timestamp=ts, visible=(0.0, ts), prediction=prediction,
                        verdict=verdict(pred, score, "hand-made"))


IN, OUT, TEMPO = "egotextvqa_indoor", "egotextvqa_outdoor", "egotempo_openqa"
COLOUR_Q = "what colour is the box?"


def base_records():
    """Run A: two questions on the first indoor video, one failed verdict, three tasks."""
    return {
        IN: [record(INDOOR_SAMPLE[0], IN, "indoor", "1", 1.0, "KORNFLAKE", "yes", 5),
             record(INDOOR_SAMPLE[0], IN, "indoor", "2", 3.5, "blue", "no", 0, COLOUR_Q, "red"),
             record(INDOOR_SAMPLE[1], IN, "indoor", "1", 3.5, "cumin", "no", 1),
             record(INDOOR_SAMPLE[2], IN, "indoor", "1", 3.5, "ODYSSEY", None, None)],
        OUT: [record(OUTDOOR_SAMPLE[0], OUT, "outdoor", "1", 2.0, "ELM ST", "yes", 5)],
        TEMPO: [record(EGOTEMPO_SAMPLE[0], TEMPO, "egotempo", f"{EGOTEMPO_SAMPLE[0].video_id}_0", None,
                       "SPOON", "yes", 4)],
    }


def finetuned_records():
    """Run B (an import-legacy style file): differs from A on four of the five shared questions."""
    recs = [record(INDOOR_SAMPLE[0], IN, "indoor", "1", 1.0, "KORNFLAKE", "yes", 5),
            record(INDOOR_SAMPLE[0], IN, "indoor", "2", 3.5, "red", "yes", 5, COLOUR_Q, "red"),
            record(INDOOR_SAMPLE[1], IN, "indoor", "1", 3.5, "PAPRIKA", "yes", 5),
            record(INDOOR_SAMPLE[2], IN, "indoor", "1", 3.5, "ODYSSEY", "yes", 5),
            record(OUTDOOR_SAMPLE[0], OUT, "outdoor", "1", 2.0, "MAIN ST", "no", 0)]
    return [dataclasses.replace(r, model="finetuned-qwen") for r in recs]


def write_lmms_output(folder: Path, by_task: dict[str, list[SampleRecord]], count_failed_as_wrong=False) -> Path:
    """What `lmms_eval --output_path folder --log_samples` writes for egotask tasks."""
    run_dir = folder / "models__base-qwen"
    run_dir.mkdir(parents=True)
    for task, recs in by_task.items():
        with open(run_dir / f"{STAMP}_samples_{task}.jsonl", "w") as fh:
            for i, r in enumerate(recs):
                fh.write(json.dumps({"doc_id": i, "target": r.answer, "details": r.to_dict(),
                                     "input": r.question}) + "\n")
    results = {"model_name": "/models/base-qwen",
               "config": {"model": "qwen3vl", "model_args": "pretrained=/models/base-qwen,max_frames=4"},
               "results": {task: {"details,none": summarize(recs, count_failed_as_wrong)}
                           for task, recs in by_task.items()}}
    (run_dir / f"{STAMP}_results.json").write_text(json.dumps(results))
    return folder


def write_records(path: Path, recs: list[SampleRecord | dict]) -> Path:
    path.write_text("".join(json.dumps(r if isinstance(r, dict) else r.to_dict()) + "\n" for r in recs))
    return path


@pytest.fixture
def outputs(tmp_path, sample_env):
    base = write_lmms_output(tmp_path / "base_output", base_records())
    finetuned = write_records(tmp_path / "finetuned.jsonl", finetuned_records())
    return base, finetuned


def app_script(paths):
    from egotask.app.page import render

    render(paths)


def start_app(paths, **query: str) -> AppTest:
    """The app on ``paths``, opened at a URL with ``query`` (``view=Video``: that tab; the first by default)."""
    at = AppTest.from_function(app_script, args=([str(p) for p in paths],), default_timeout=APP_TIMEOUT)
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# --------------------------------------------------------------------------- loading and logic


def test_loads_lmms_output_folder_and_record_file_as_two_runs(outputs):
    base, finetuned = outputs
    loaded = load_paths([base, finetuned])
    assert loaded.problems == []
    a, b = loaded.runs
    assert a.label == f"base-qwen · {STAMP}" and len(a.records) == 6
    assert {r.task for r in a.records} == {IN, OUT, TEMPO}
    assert a.frame_settings() == (4, None)  # from the results' --model_args
    assert b.label == "finetuned-qwen (finetuned.jsonl)" and len(b.records) == 5
    assert b.frame_settings() == (8, None)  # the adapters' default


def test_a_record_file_with_two_models_is_two_runs(tmp_path):
    other = [dataclasses.replace(r, model="/ckpt/other-model") for r in finetuned_records()[:2]]
    loaded = load_paths([write_records(tmp_path / "both.jsonl", finetuned_records() + other)])
    assert [(r.label, len(r.records)) for r in loaded.runs] == [("finetuned-qwen (both.jsonl)", 5),
                                                               ("other-model (both.jsonl)", 2)]


def test_unreadable_missing_and_foreign_files_become_messages(tmp_path):
    (tmp_path / "broken.jsonl").write_text('{"details": {"verdict": {}}}\nnot json\n')
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "other_task.jsonl").write_text(json.dumps({"doc_id": 0, "exact_match": 1}) + "\n")
    (tmp_path / "no_video.jsonl").write_text(json.dumps({"question_id": "1", "verdict": {"pred": "yes"}}) + "\n")
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    loaded = load_paths([tmp_path, tmp_path / "missing_dir"])
    assert loaded.runs == []
    problems = "\n".join(loaded.problems)
    assert "broken.jsonl:2: not valid JSON" in problems
    assert "empty.jsonl: no records" in problems
    assert "other_task.jsonl: not egotask sample records" in problems
    assert "no_video.jsonl: 1 of 1 records left out" in problems and "missing field video_id" in problems
    assert "binary.jsonl: not a text file" in problems
    assert "missing_dir: no such file or folder" in problems


def test_failed_to_judge_is_its_own_verdict_not_wrong():
    recs = base_records()[IN]
    assert [verdict_label(r) for r in recs] == ["correct", "wrong", "wrong", "failed to judge"]
    assert filter_records(recs, verdicts={"wrong"}) == recs[1:3]
    assert filter_records(recs, verdicts={"failed to judge"}) == recs[3:]
    # A model that gave no answer is neither wrong nor a judge failure.
    unanswered = dataclasses.replace(recs[0], prediction="", generation_error="video could not be decoded",
                                     verdict=verdict(None, None))
    assert verdict_label(unanswered) == "no answer"
    assert filter_records([*recs, unanswered], verdicts={"no answer"}) == [unanswered]
    stats = summarize([*recs, unanswered])
    assert (stats["n_judged"], stats["n_failed"], stats["n_generation_failed"]) == (3, 1, 1)


def test_filters_by_task_type_score_and_text():
    recs = [r for rs in base_records().values() for r in rs]
    assert len(filter_records(recs, tasks={OUT, TEMPO})) == 2
    assert len(filter_records(recs, tasks={"indoor"})) == 4  # a setting names its tasks too
    assert [r.question_type for r in filter_records(recs, types={"kitchen"})] == ["kitchen"]
    # The score range keeps unjudged items (no score); the verdict filter decides about those.
    assert {r.prediction for r in filter_records(recs, score_range=(4, 5))} == {"KORNFLAKE", "ELM ST", "SPOON",
                                                                               "ODYSSEY"}
    assert [r.answer for r in filter_records(recs, text="COLOUR red")] == ["red"]  # question + reference
    assert [r.prediction for r in filter_records(recs, text="cumin")] == ["cumin"]  # prediction
    assert filter_records(recs, text="no such words") == []


def test_compare_pairs_questions_by_setting_video_and_question_id():
    a = [r for rs in base_records().values() for r in rs]
    comparison = compare_runs(a, finetuned_records())
    assert len(comparison.rows) == 5 and len(comparison.missing_in_b) == 1  # the EgoTempo question
    differ = {(row["video"], row["question_id"]): (row["verdict A"], row["verdict B"])
              for row in comparison.disagreements}
    assert differ == {
        (INDOOR_SAMPLE[0].video_id, "2"): ("wrong", "correct"),
        (INDOOR_SAMPLE[1].video_id, "1"): ("wrong", "correct"),
        (INDOOR_SAMPLE[2].video_id, "1"): ("failed to judge", "correct"),
        (OUTDOOR_SAMPLE[0].video_id, "1"): ("correct", "wrong"),
    }
    twice = compare_runs(a + a[:1], finetuned_records())
    assert twice.duplicates and "twice" in twice.duplicates[0]


def test_caption_track_shows_each_question_from_its_timestamp():
    video = videos_of(base_records()[IN])[0]
    assert [r.question_id for r in video.records] == ["1", "2"]
    vtt = webvtt(video.records, duration=5.0)
    assert vtt.startswith("WEBVTT")
    assert "00:00:01.000 --> 00:00:05.000\nQ1: what brand of cereal" in vtt  # to the next question, >= 4 s
    assert "00:00:03.500 --> 00:00:07.500\nQ2: what colour is the box?\n✗ blue · ref: red · 0/5" in vtt
    whole = webvtt(base_records()[TEMPO], duration=4.0)
    assert "00:00:00.000 --> 00:00:04.000" in whole  # no timestamp: the whole clip


def test_frames_are_the_adapters_sample_of_the_visible_interval(sample_env):
    rec = base_records()[IN][1]  # asked at 3.5 s: the model saw [0, 3.5)
    location = media.locate_video(rec)
    assert location.problem is None and location.path.is_file()
    frames = media.frames_seen(location.path, rec.visible, max_frames=4)
    assert len(frames.timestamps) == 4 and all(0 <= t < 3.5 for t in frames.timestamps)
    from egotask.frames import VisibleVideo, sample_visual

    direct = sample_visual(VisibleVideo(str(location.path), 0.0, 3.5), max_frames=4)
    assert direct.timestamps == frames.timestamps


def test_missing_video_folder_or_file_is_explained(monkeypatch, tmp_path):
    rec = base_records()[IN][0]
    unset = media.locate_video(rec)
    assert unset.path is None and "EGOTEXTVQA_VIDEO_DIR is not set" in unset.problem and unset.downloadable
    tempo = media.locate_video(base_records()[TEMPO][0])
    assert "EGOTEMPO_VIDEO_DIR is not set" in tempo.problem and not tempo.downloadable
    monkeypatch.setenv("EGOTEXTVQA_VIDEO_DIR", str(tmp_path))
    settings.reset()  # settings are read once per process
    gone = media.locate_video(rec)
    assert gone.problem == (f"video not found: {tmp_path}/EgoTextVQA-Indoor/{rec.video_id}.mp4 "
                            "(folder from EGOTEXTVQA_VIDEO_DIR)")


# --------------------------------------------------------------------------- the page, headless


def test_app_loads_runs_and_summarises_the_selection(outputs):
    at = start_app(outputs)
    assert [s.label for s in at.sidebar.selectbox] == ["Run"]
    assert at.sidebar.selectbox(key="run").options == [f"base-qwen · {STAMP}", "finetuned-qwen (finetuned.jsonl)"]
    m = metrics(at)
    assert (m["questions"], m["judged"], m["failed to judge"]) == ("6", "5", "1")
    assert m["accuracy"] == "60.0 %" and m["score (0-5)"] == "3.00"  # 3 of 5 judged; (5+0+1+5+4)/5
    by_type = at.dataframe[0].value
    assert list(by_type["question type"])[:2] == ["all", "book-related"]
    assert not at.warning and not at.error
    assert not at.get("video")  # only the open tab runs: no player, no frame sampling behind it


def test_summaries_follow_each_runs_recorded_choice_not_the_apps_environment(tmp_path, sample_env, monkeypatch):
    counted = write_lmms_output(tmp_path / "counted", base_records(), count_failed_as_wrong=True)
    records = [dataclasses.replace(r, model="records-run") for rs in base_records().values() for r in rs]
    plain = write_records(tmp_path / "plain.jsonl", records)
    monkeypatch.setenv("EGOTASK_COUNT_FAILED_AS_WRONG", "1")  # the app's own environment changes nothing
    settings.reset()
    a, b = load_paths([counted, plain]).runs
    assert a.count_failed_as_wrong and not b.count_failed_as_wrong  # a record file records no such choice
    at = start_app([counted, plain])
    assert metrics(at)["accuracy"] == "50.0 %"  # 3 yes of 6: the failed verdict counted as no, as the run chose
    assert any("count as wrong: the run chose so" in c.value for c in at.caption)
    at.sidebar.selectbox(key="run").set_value("records-run (plain.jsonl)").run()
    assert metrics(at)["accuracy"] == "60.0 %"  # 3 yes of 5 judged
    assert any("left out of accuracy and score" in c.value for c in at.caption)


def test_app_shows_each_items_tokens_latency_and_decode_time_and_not_measured_for_older_records(tmp_path,
                                                                                             sample_env):
    timings = [Generation(prompt_tokens=812, completion_tokens=9, latency_s=0.25, decode_s=0.052, started=100.0),
               Generation(prompt_tokens=790, completion_tokens=3, latency_s=0.75, decode_s=0.048, started=100.25)]
    measured = [dataclasses.replace(r, model="served", generation=g) for r, g in
                zip(base_records()[IN][:2], timings, strict=True)]
    cached = dataclasses.replace(measured[0], question_id="9", generation=dataclasses.replace(timings[0], cached=True))
    old = []
    for r in base_records()[IN][:2]:
        data = dataclasses.replace(r, model="older").to_dict()
        data["version"] = 3
        del data["generation"]
        old.append(data)
    assert generation_text(measured[0]) == ("812 prompt + 9 completion tokens; latency 0.250 s; "
                                            "frames decoded in 0.052 s")
    assert generation_text(cached).endswith("; from the answer cache: timed by the run that made it")
    assert [row["model side"] for row in question_rows(load_paths([write_records(tmp_path / "old.jsonl", old)])
                                                       .runs[0].records)] == [GENERATION_NOT_MEASURED] * 2

    at = start_app([write_records(tmp_path / "served.jsonl", measured), tmp_path / "old.jsonl"])
    captions = [c.value.replace("\\", "") for c in at.caption]
    # Two answers in 100.0 to 101.0 s: 2 items/s; latency median 0.5 s and p95 0.725 s (interpolated).
    assert ("Model side: 2.00 items/s (2 answers in 1.000 s); latency median 0.500 s, p95 0.725 s; 801.0 prompt "
            "+ 6.0 completion tokens per item; frames decoded in 0.050 s per item.") in captions
    at.sidebar.selectbox(key="run").set_value("older (old.jsonl)").run()
    older = [c.value.replace("\\", "") for c in at.caption]
    assert any(c.startswith("Model side: not measured (no record of the run carries tokens") for c in older)


def test_app_filters_by_verdict_text_and_reports_an_empty_selection(outputs):
    at = start_app(outputs)
    at.multiselect(key="f_verdicts").select("wrong").run()
    assert metrics(at)["questions"] == "2" and "2 of 6 questions selected" in at.caption[0].value
    at.multiselect(key="f_verdicts").unselect("wrong").run()
    at.multiselect(key="f_tasks").select(OUT).run()
    assert metrics(at)["questions"] == "1"
    at.text_input(key="f_text").input("nothing like this").run()
    assert not at.exception
    assert any("No question matches the filters" in w.value for w in at.warning)


def test_app_video_tab_plays_the_video_with_captions_timeline_and_frames(outputs):
    at = start_app(outputs, view="Video")
    assert at.selectbox(key="video").value.endswith("[egotempo]")  # the first video
    at.selectbox(key="video").set_value(f"{INDOOR_SAMPLE[0].video_id} [indoor]").run()
    assert "2 question(s) in the selection: 1 correct, 1 wrong" in [c.value for c in at.caption]
    at.selectbox(key="question").set_value("2").run()
    player = at.get("video")[0].proto  # starts at the question (3.5 s, rounded up), captions on
    assert player.url and player.start_time == 4 and player.subtitles[0].label == "questions"
    timeline = [d.value for d in at.dataframe if "judge's reason" in d.value and "video" not in d.value][0]
    assert list(timeline["question"]) == ["what brand of cereal is on the shelf?", COLOUR_Q]
    assert list(timeline["verdict"]) == ["correct", "wrong"]
    images = at.get("image")[0].proto.imgs
    seen = media.frames_seen(media.locate_video(base_records()[IN][1]).path, [0.0, 3.5], max_frames=4)
    assert [i.caption for i in images] == [f"{t:.2f} s" for t in seen.timestamps]  # max_frames=4 over [0, 3.5)
    at.number_input(key="max_frames").set_value(2).run()
    assert len(at.get("image")[0].proto.imgs) == 2
    assert not at.exception and not at.error


def test_app_says_which_video_is_missing(outputs, monkeypatch, tmp_path):
    monkeypatch.setenv("EGOTEXTVQA_VIDEO_DIR", str(tmp_path / "no_videos"))
    at = start_app(outputs, view="Video", video=f"{INDOOR_SAMPLE[1].video_id} [indoor]")  # a deep link
    assert at.selectbox(key="video").value == f"{INDOOR_SAMPLE[1].video_id} [indoor]"
    assert any("video not found" in w.value and "EGOTEXTVQA_VIDEO_DIR" in w.value for w in at.warning)
    assert any("No video file" in i.value for i in at.info)
    assert not at.exception and not at.error


def test_app_compares_two_runs_on_the_same_questions(outputs):
    at = start_app(outputs, view="Compare runs")
    assert at.selectbox(key="compare_run").value == "finetuned-qwen (finetuned.jsonl)"
    m = metrics(at)
    assert (m["in both"], m["verdicts differ"], m["A correct, B wrong"], m["A wrong, B correct"],
            m["not in B"]) == ("5", "4", "1", "2", "1")
    # The report's paired numbers, from the same function: on the 4 questions both judged, accuracy 2/4
    # against 3/4 and scores (5-5) + (0-5) + (1-5) + (5-0) = -4 over 4; McNemar on 1 against 2.
    paired = compare_records(base_records()[IN] + base_records()[OUT], finetuned_records())
    assert (m["Δ accuracy A − B (pp)"], m["Δ score A − B"], m["McNemar p"]) == ("-25.0", "-1.00", "1.000")
    assert (paired.overall.accuracy_diff, paired.overall.score_diff) == (-0.25, -1.0)
    # The CIs are whole, in captions under their tiles, never cut off inside a tile.
    captions = [c.value for c in at.caption]
    assert f"95% CI {signed_ci(paired.overall.accuracy_diff_ci, 1, 100)}" in captions
    assert f"95% CI {signed_ci(paired.overall.score_diff_ci)}" in captions
    assert not any("CI" in label for label in m)
    per_type = [d.value for d in at.dataframe if "McNemar p" in d.value][0]
    assert list(per_type["question type"])[0] == "all" and list(per_type["only B right"])[0] == 2
    shown = [d.value for d in at.dataframe if "prediction B" in d.value][0]
    assert len(shown) == 4 and set(shown["prediction B"]) == {"red", "PAPRIKA", "ODYSSEY", "MAIN ST"}
    at.checkbox(key="only_disagree").uncheck().run()
    shown = [d.value for d in at.dataframe if "prediction B" in d.value][0]
    assert len(shown) == 5
    # The other way round: B as the run, A to compare with.
    at.sidebar.selectbox(key="run").set_value("finetuned-qwen (finetuned.jsonl)").run()
    assert metrics(at)["not in B"] == "0" and metrics(at)["in both"] == "5"


def test_pending_verdicts_are_their_own_label_and_the_app_says_how_to_judge_them(tmp_path, sample_env):
    deferred = Verdict.deferred(judge="gemini", judge_model="gemini-2.5-flash", prompt_version="egotask-judge-v1")
    recs = [dataclasses.replace(r, model="deferred", verdict=deferred) for r in finetuned_records()]
    assert {verdict_label(r) for r in recs} == {"pending"}
    at = start_app([write_records(tmp_path / "deferred.jsonl", recs)])
    assert any("5 verdict(s) are pending" in w.value and "egotask judge" in w.value for w in at.warning)
    m = metrics(at)
    assert (m["questions"], m["judged"], m["failed to judge"], m["accuracy"]) == ("5", "0", "0", "–")
    at.multiselect(key="f_verdicts").select("pending").run()
    assert metrics(at)["questions"] == "5" and not at.exception


def test_app_survives_a_filter_value_the_next_run_lacks(outputs):
    at = start_app(outputs)
    at.multiselect(key="f_tasks").select(TEMPO).run()
    assert metrics(at)["questions"] == "1"
    at.sidebar.selectbox(key="run").set_value("finetuned-qwen (finetuned.jsonl)").run()  # no EgoTempo in B
    assert not at.exception and not at.error
    assert at.multiselect(key="f_tasks").value == [] and metrics(at)["questions"] == "5"  # the filter resets


def test_app_loads_uploads_and_tells_about_bad_paths(tmp_path, sample_env):
    at = start_app([tmp_path / "missing"])
    assert any("missing: no such file or folder" in w.value for w in at.warning)
    assert any("No runs loaded yet" in i.value for i in at.info)
    body = "".join(json.dumps(r.to_dict()) + "\n" for r in finetuned_records()).encode()
    at.sidebar.file_uploader[0].upload("finetuned.jsonl", body, "application/jsonl").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="run").options == ["uploaded: finetuned-qwen (finetuned.jsonl)"]
    assert metrics(at)["questions"] == "5"
    at.sidebar.file_uploader[0].upload("junk.jsonl", b"{not json\n", "application/jsonl").run()
    assert any("junk.jsonl:1: not valid JSON" in w.value for w in at.warning)
    at.sidebar.text_input(key="add_path").input(str(tmp_path / "missing_too")).run()
    assert any("missing_too: no such file or folder" in w.value for w in at.warning)


# --------------------------------------------------------------------------- the command


def test_command_runs_streamlit_on_the_page_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["app", "out", "--port", "9999"])
    cmd = streamlit_command(args)
    assert cmd[1:5] == ["-m", "egotask.app.serve", "run", str(PAGE)] and PAGE.is_file()
    assert cmd[cmd.index("--server.port") + 1] == "9999"
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--") + 1:] == [str(tmp_path / "out")]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local test server
        return response.read().decode()


def test_the_page_egotask_app_serves_renders_the_runs_named_on_its_command_line(outputs, monkeypatch):
    """The script `egotask app` hands to `streamlit run` (PAGE), run as Streamlit runs it: its arguments
    (after `--`) arrive in sys.argv, and the page shows those runs."""
    base, finetuned = outputs
    monkeypatch.setattr(sys, "argv", [str(PAGE), *streamlit_command(
        build_parser().parse_args(["app", str(base), str(finetuned)]))[-2:]])
    at = AppTest.from_file(str(PAGE), default_timeout=APP_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.selectbox(key="run").options == [f"base-qwen · {STAMP}", "finetuned-qwen (finetuned.jsonl)"]
    assert [h.value for h in at.main.header] == [f"base-qwen · {STAMP}"]
    assert "6 of 6 questions selected" in at.caption[0].value
    m = metrics(at)
    assert (m["questions"], m["judged"], m["failed to judge"], m["accuracy"]) == ("6", "5", "1", "60.0 %")
    assert not at.warning and not at.error


def test_egotask_app_starts_a_streamlit_server_on_the_given_port(outputs, tmp_path):
    """Only that the server comes up: what it renders is the test above (the HTTP page is Streamlit's shell)."""
    port = free_port()
    with app_server([outputs[0]], os.environ.copy(), port, output=subprocess.PIPE) as (url, proc):
        assert url == f"http://127.0.0.1:{port}"
        assert fetch(f"{url}/_stcore/health") == "ok"
        page = fetch(f"{url}/")
        assert "<title>Streamlit</title>" in page and 'id="root"' in page
    output = proc.stdout.read()
    assert "serving on http://127.0.0.1" in output, output


# --------------------------------------------------------------------------- bad input: #17


def test_a_record_whose_id_points_outside_the_video_folder_gets_no_video(tmp_path, monkeypatch):
    clips = tmp_path / "clips"
    clips.mkdir()
    secret = write_clip(tmp_path / "secret.mp4", ["S"], seconds=1.0, fps=4, size=(64, 48))
    monkeypatch.setenv("EGOTEMPO_VIDEO_DIR", str(clips))
    escaping = dataclasses.replace(base_records()[TEMPO][0], video_id="../secret", question_id="../secret_0")
    for video_id in ("../secret", str(secret.with_suffix(""))):
        location = media.locate_video(dataclasses.replace(escaping, video_id=video_id))
        assert location.path is None and not location.downloadable
        assert "is not a file name" in location.problem and "EGOTEMPO_VIDEO_DIR" in location.problem
    # The page: a warning, no player, and the file outside the folder is never opened.
    records = write_records(tmp_path / "escaping.jsonl", [escaping])
    at = start_app([records], view="Video")
    assert any("is not a file name" in w.value for w in at.warning)
    assert not at.get("video") and not at.error


MARKUP = {"prediction": ":red[x] **bold** `code` :smile: <b>tag</b> $x^2$",
          "question": "what does :blue[this] say? # not a heading",
          "answer": "[link](http://example.com) _under_ ~strike~"}


def test_record_text_that_looks_like_markup_is_shown_literally(tmp_path, sample_env):
    rec = dataclasses.replace(base_records()[IN][0], **MARKUP)
    at = start_app([write_records(tmp_path / "markup.jsonl", [rec])], view="Video")
    shown = "\n".join(t.value for t in at.text)
    for text in MARKUP.values():
        assert text in shown  # as written, in plain text elements
    for element in at.markdown:  # and nowhere parsed as markdown
        assert ":red[" not in element.value and ":blue[" not in element.value and "**bold**" not in element.value
    assert not at.exception and not at.error


def test_markdown_escaping_covers_streamlit_directives_and_emoji():
    from egotask.app.page import md

    assert md(":red[x]") == r"\:red\[x\]"
    assert md("a :smile: b") == r"a \:smile\: b"
