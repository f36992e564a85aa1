"""One bad item costs one item: a video that cannot be decoded is a generation failure of its questions,
counted and listed apart from judge failures, and the rest of the run is written. Answers are kept as
they are made, so a rerun generates only what it does not have."""

from __future__ import annotations

import sqlite3

import pytest

from egotask.fixtures import write_clip, write_egotextvqa_annotations

pytestmark = pytest.mark.slow
UUID = "00000000-0000-4000-8000-{:012d}"


@pytest.fixture
def eleven_items(tmp_path) -> dict[str, str]:
    """11 indoor questions on 11 clips; the clip of question 7 is not a video."""
    videos = tmp_path / "videos" / "EgoTextVQA-Indoor"
    rows = []
    for i in range(11):
        vid = UUID.format(i)
        write_clip(videos / f"{vid}.mp4", [f"SIGN {i}"], seconds=2.0, fps=4, size=(96, 64))
        rows.append({"video_id": vid, "question_id": "1", "question_type": "others", "question": "what sign?",
                     "correct_answer": f"sign {i}", "timestamp": 1.5, "video_url": ""})
    (videos / f"{UUID.format(7)}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 50)
    write_egotextvqa_annotations(tmp_path / "ann", rows, [])
    return {"EGOTEXTVQA_ANNOTATIONS": str(tmp_path / "ann"), "EGOTEXTVQA_VIDEO_DIR": str(tmp_path / "videos")}


def test_a_corrupt_video_costs_its_question_and_the_run_writes_the_other_ten(eleven_items, tiny_qwen, tmp_path,
                                                                             lmms_eval):
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={tiny_qwen},max_frames=2"], eleven_items, tmp_path / "out")
    assert run.results is not None, run.output
    details = run.results["results"]["egotextvqa_indoor"]["details,none"]
    assert (details["n"], details["n_judged"], details["n_failed"], details["n_generation_failed"]) == (11, 10, 0, 1)
    (failed,) = details["generation_failed"]
    assert failed.startswith(f"{UUID.format(7)}/1: frames could not be read") and f"{UUID.format(7)}.mp4" in failed
    records = [s["details"] for s in run.samples["egotextvqa_indoor"]]
    bad = [r for r in records if r["generation_error"]]
    assert [r["video_id"] for r in bad] == [UUID.format(7)] and bad[0]["verdict"]["pred"] is None
    assert all(r["seen"] and r["seen"][1] < 1.5 and r["frames"]["n_frames"] == 2 for r in records if r not in bad)
    assert run.returncode != 0 and "1 item(s) got no answer" in run.output


def test_a_rerun_takes_the_answers_it_already_has_from_the_answer_cache(eleven_items, tiny_qwen, tmp_path,
                                                                        lmms_eval):
    args = ["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
            f"pretrained={tiny_qwen},max_frames=2", "--limit", "4"]
    env = {**eleven_items, "EGOTASK_CACHE_DIR": str(tmp_path / "cache")}
    first = lmms_eval(args, env, tmp_path / "first")
    assert first.returncode == 0, first.output
    with sqlite3.connect(tmp_path / "cache" / "answers.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4
    again = lmms_eval(args, env, tmp_path / "again")
    assert again.returncode == 0 and "(4 from the answer cache)" in again.output
    predictions = [[s["details"]["prediction"] for s in r.samples["egotextvqa_indoor"]] for r in (first, again)]
    assert predictions[0] == predictions[1]
    # Another frame setting is another question to the model: generated again, not reused.
    args[5] = f"pretrained={tiny_qwen},max_frames=3"
    third = lmms_eval(args, env, tmp_path / "third")
    assert third.returncode == 0 and "from the answer cache" not in third.output
