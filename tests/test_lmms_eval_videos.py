"""Which video the model gets, through the real `lmms_eval` entry: a missing video file (an error
before the model loads, or `EGOTASK_MISSING_VIDEOS=skip`), and the `_fullvideo` protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egotask.fixtures import INDOOR_SAMPLE, write_clip, write_egotextvqa_annotations

pytestmark = pytest.mark.slow  # each test runs lmms_eval in a subprocess

GONE = INDOOR_SAMPLE[1]  # the video that is missing


def data_without_one_video(sample_env: dict[str, str], root: Path) -> dict[str, str]:
    """The sample indoor data, with a second question on GONE's video and GONE's file left out:
    two questions lose their video."""
    annotations = root / "annotations"
    annotations.mkdir(parents=True)
    src = Path(sample_env["EGOTEXTVQA_ANNOTATIONS"])
    for path in src.iterdir():
        (annotations / path.name).write_text(path.read_text())
    indoor = annotations / "egotextvqa_indoor_annotation.jsonl"
    rows = [json.loads(line) for line in indoor.read_text().splitlines()]
    second = {**next(r for r in rows if r["video_id"] == GONE.video_id), "question_id": "2",
              "question": "what colour is the jar?", "correct_answer": "RED"}
    indoor.write_text("".join(json.dumps(r) + "\n" for r in [*rows, second]))
    videos = root / "videos" / "EgoTextVQA-Indoor"
    videos.mkdir(parents=True)
    for clip in (Path(sample_env["EGOTEXTVQA_VIDEO_DIR"]) / "EgoTextVQA-Indoor").iterdir():
        if clip.stem != GONE.video_id:
            (videos / clip.name).symlink_to(clip)
    return {**sample_env, "EGOTEXTVQA_ANNOTATIONS": str(annotations), "EGOTEXTVQA_VIDEO_DIR": str(root / "videos")}


def test_skip_evaluates_the_other_questions_and_reports_how_many_were_left_out(sample_env, tiny_qwen, tmp_path,
                                                                                 lmms_eval):
    env = {**data_without_one_video(sample_env, tmp_path / "data"), "EGOTASK_MISSING_VIDEOS": "skip"}
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen},max_frames=2", "--gen_kwargs", "max_new_tokens=4"], env, tmp_path / "out")
    assert run.returncode == 0, run.output
    details = run.results["results"]["egotextvqa_indoor"]["details,none"]
    assert (details["n"], details["n_judged"], details["n_failed"]) == (3, 3, 0)
    assert details["missing_videos_skipped"] == 2  # questions, not videos: GONE's video had two
    samples = run.samples["egotextvqa_indoor"]
    assert sorted(s["details"]["video_id"] for s in samples) == sorted(
        qa.video_id for qa in INDOOR_SAMPLE if qa is not GONE)


def test_missing_video_without_skip_fails_before_the_model_loads_naming_the_file(sample_env, tmp_path, lmms_eval):
    env = data_without_one_video(sample_env, tmp_path / "data")
    checkpoint = tmp_path / "never-loaded-checkpoint"  # does not exist: loading it would fail differently
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={checkpoint}"], env, tmp_path / "out")
    assert run.returncode != 0
    missing = Path(env["EGOTEXTVQA_VIDEO_DIR"]) / "EgoTextVQA-Indoor" / f"{GONE.video_id}.mp4"
    assert str(missing) in run.output and "EGOTASK_MISSING_VIDEOS=skip" in run.output
    assert "1 video file(s) missing" in run.output
    assert checkpoint.name not in run.output, run.output  # the model was never asked for
    assert run.results is None


def test_fullvideo_task_shows_the_model_the_video_after_the_question(tmp_path, lmms_eval):
    """One clip shows BOWL for 2.5 s, then SPOON; the question is asked at 2 s. The OCR baseline
    answers with the text it saw last, so its answer says which frames it was given."""
    video_id = INDOOR_SAMPLE[0].video_id
    write_clip(tmp_path / "videos" / "EgoTextVQA-Indoor" / f"{video_id}.mp4", ("BOWL", "SPOON"), seconds=5.0)
    row = {"video_id": video_id, "question_id": "1", "question_type": "shopping", "question": "what is written?",
           "correct_answer": "SPOON", "timestamp": 2.0, "video_url": ""}
    write_egotextvqa_annotations(tmp_path / "annotations", [row], [])
    env = {"EGOTEXTVQA_ANNOTATIONS": str(tmp_path / "annotations"), "EGOTEXTVQA_VIDEO_DIR": str(tmp_path / "videos")}
    run = lmms_eval(["--tasks", "egotextvqa_indoor,egotextvqa_indoor_fullvideo", "--model", "ocr_baseline",
                     "--model_args", "max_frames=4,min_side=320"], env, tmp_path / "out")
    assert run.returncode == 0, run.output
    (full,) = [s["details"] for s in run.samples["egotextvqa_indoor_fullvideo"]]
    (realtime,) = [s["details"] for s in run.samples["egotextvqa_indoor"]]
    assert full["visible"] == [0.0, None] and full["timestamp"] == 2.0
    assert full["prediction"] == "SPOON" and full["verdict"]["pred"] == "yes"  # shown only after 2.5 s
    assert realtime["visible"] == [0.0, 2.0]
    assert realtime["prediction"] == "BOWL" and realtime["verdict"]["pred"] == "no"
    results = run.results["results"]
    assert results["egotextvqa_indoor_fullvideo"]["accuracy,none"] == 1.0
    assert results["egotextvqa_indoor"]["accuracy,none"] == 0.0
