"""The benchmark owns the protocol: on a real-time task no lmms-eval model, egotask's or lmms-eval's own,
is shown video at or after the question's timestamp, and every record says what the model saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from time_coded import time_code_of, write_time_coded_clip

from egotask.fixtures import write_egotextvqa_annotations
from egotask.paths import tasks_path
from egotask.testing.vendor import FakeVLMServer

VIDEO = "0a1b2c3d-0000-4000-8000-00000000000a"
ASKED_AT = 3.0  # seconds into a 6 s, 10 fps time-coded clip: frames 0-29 are before it


@pytest.fixture
def time_coded(tmp_path) -> dict[str, str]:
    videos = tmp_path / "videos"
    write_time_coded_clip(videos / "EgoTextVQA-Indoor" / f"{VIDEO}.mp4")
    row = {"video_id": VIDEO, "question_id": "1", "question_type": "others", "question": "what is shown?",
           "correct_answer": "grey", "timestamp": ASKED_AT, "video_url": ""}
    write_egotextvqa_annotations(tmp_path / "ann", [row, {**row, "question_id": "2", "timestamp": 1.5}], [])
    return {"EGOTEXTVQA_ANNOTATIONS": str(tmp_path / "ann"), "EGOTEXTVQA_VIDEO_DIR": str(videos)}


@pytest.fixture
def openai_server(monkeypatch):
    server = FakeVLMServer().start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    yield server
    server.stop()


def frame_times(server: FakeVLMServer) -> list[list[float]]:
    """For each request the server got, the source time of every frame it was shown."""
    return [sorted(time_code_of(image) for image in server.images(body)) for body in server.bodies]


def lmms_eval_own_openai_model(entry: list[str], task: str, server: FakeVLMServer, env: dict[str, str],
                               out: Path) -> subprocess.CompletedProcess:
    """lmms-eval's built-in `openai` model: it opens the video file itself (decord) and sends frames."""
    cmd = [sys.executable, *entry, "--tasks", task, "--model", "openai", "--model_args",
           f"model=fake,base_url={server.url}/v1,max_frames_num=8,num_concurrent=1", "--output_path", str(out),
           "--log_samples", "--verbosity", "WARNING"]
    return subprocess.run(cmd, env={**os.environ, **env, "EGOTASK_JUDGE": "heuristic"}, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("entry", [["-m", "egotask.lmms_entry"], ["-m", "lmms_eval", "--include_path", "TASKS"]],
                         ids=["egotask-entry", "upstream-cli"])
def test_lmms_evals_own_video_model_sees_nothing_at_or_after_the_timestamp(entry, time_coded, openai_server,
                                                                          tmp_path):
    pytest.importorskip("decord", reason="lmms-eval's openai model reads videos with decord (dev extra)")
    entry = [str(tasks_path()) if a == "TASKS" else a for a in entry]
    proc = lmms_eval_own_openai_model(entry, "egotextvqa_indoor", openai_server, time_coded, tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = sorted(frame_times(openai_server), key=max)
    assert len(shown) == 2 and all(len(times) >= 8 for times in shown)
    # Decord seeks approximately, so which frames exactly varies; none is at or after the question.
    assert max(shown[0]) < 1.5 and max(shown[1]) < ASKED_AT
    samples = next((tmp_path / "out").rglob("*_samples_egotextvqa_indoor.jsonl")).read_text().splitlines()
    records = {r["question_id"]: r for r in (json.loads(line)["details"] for line in samples)}
    assert records["1"]["seen"] == [0.0, 2.9] and records["2"]["seen"] == [0.0, 1.4]
    assert records["1"]["visible"] == [0.0, ASKED_AT]


@pytest.mark.slow
def test_the_full_video_task_does_show_the_later_frames(time_coded, openai_server, tmp_path):
    """The control: the same model on the `_fullvideo` task is shown frames after the timestamp."""
    pytest.importorskip("decord", reason="lmms-eval's openai model reads videos with decord (dev extra)")
    proc = lmms_eval_own_openai_model(["-m", "egotask.lmms_entry"], "egotextvqa_indoor_fullvideo", openai_server,
                                      time_coded, tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(max(times) > ASKED_AT + 1 for times in frame_times(openai_server))


def test_cuts_hold_exactly_the_frames_before_the_end_and_are_made_once(tmp_path, monkeypatch):
    from egotask import settings
    from egotask.frames import index_frames
    from egotask.visible_clips import cut_visible

    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(tmp_path / "cache"))
    settings.reset()
    src = write_time_coded_clip(tmp_path / "v.mp4")
    (cut,) = cut_visible([(src, 0.0, ASKED_AT)]).values()
    assert cut.seen == (0.0, pytest.approx(2.9))
    index = index_frames(cut.path)
    assert len(index.times) == 30 and index.times[-1] == pytest.approx(2.9)
    import av

    with av.open(str(cut.path)) as container:
        levels = [time_code_of(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    assert levels == pytest.approx([i / 10 for i in range(30)])
    made = cut.path.stat().st_mtime_ns
    (again,) = cut_visible([(src, 0.0, ASKED_AT)]).values()
    assert again.path == cut.path and again.path.stat().st_mtime_ns == made


def test_egotask_adapters_read_the_original_with_the_interval_and_no_cut_is_made(time_coded, monkeypatch,
                                                                                   tmp_path):
    from egotask import settings
    from egotask.frames import sample_visual
    from egotask.tasklib import doc_to_visual, make_process_docs
    from egotask.visible_clips import declare_model_reads_intervals

    for key, value in time_coded.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(tmp_path / "cache"))
    settings.reset()
    declare_model_reads_intervals(True)
    try:
        docs = make_process_docs("egotextvqa_indoor")(None)
    finally:
        declare_model_reads_intervals(False)
    (visual,) = doc_to_visual(docs[0])
    assert str(visual) == visual.source and visual.source.endswith(f"{VIDEO}.mp4")
    assert not (tmp_path / "cache" / "visible_clips").exists()
    frames = sample_visual(visual, max_frames=8)
    assert max(frames.timestamps) < ASKED_AT
    assert [time_code_of(f) for f in frames.frames] == pytest.approx(frames.timestamps, abs=0.051)


CUTS_SCRIPT = """
import sys
from pathlib import Path
from egotask.visible_clips import cut_visible
src = Path(sys.argv[1])
cut_visible([(src, 0.0, 20.0 + 0.1 * i) for i in range(40)], workers=2)
"""


def test_ctrl_c_during_the_interval_cuts_stops_them_promptly_and_leaves_no_temporary_file(tmp_path):
    import signal
    import time

    src = write_time_coded_clip(tmp_path / "long.mp4", seconds=25.0, fps=10, size=(320, 240))
    cache = tmp_path / "cache"
    clips = cache / "visible_clips"
    proc = subprocess.Popen([sys.executable, "-c", CUTS_SCRIPT, str(src)], start_new_session=True,
                            env={**os.environ, "EGOTASK_CACHE_DIR": str(cache)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def made() -> list[Path]:
        return [p for p in clips.glob("*.mp4") if not p.name.startswith(".")] if clips.is_dir() else []

    deadline = time.monotonic() + 120
    while not made() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
    pressed = time.monotonic()
    proc.wait(timeout=60)
    assert time.monotonic() - pressed < 2.0  # measured 0.3 s; before, the workers cut on through the queue
    assert "KeyboardInterrupt" in proc.stderr.read()
    assert len(made()) < 10  # of 40: the queue was dropped
    assert not [p.name for p in clips.iterdir() if ".tmp-" in p.name]


# --------------------------------------------------------------------------- copy+tail cuts (issue 26)

def _decoded(path: Path) -> list[tuple[float, np.ndarray]]:
    import av

    with av.open(str(path)) as container:
        return sorted(((float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)),
                      key=lambda pair: pair[0])


def _planned(src: Path, start: float, end: float) -> list[float]:
    """The source frames the cut must hold, at their times in the cut (the first at 0)."""
    from egotask.data.transcode import plan_frames
    from egotask.frames import index_frames

    plan = plan_frames(index_frames(src).times, start, end - start, None)
    return [plan[p] for p in sorted(plan)]


def _cut(src: Path, dst: Path, end: float):
    from egotask.data.splice import cut_interval
    from egotask.data.transcode import TranscodeSpec

    return cut_interval(src, dst, TranscodeSpec(start=0.0, end=end, crf=18))


@pytest.mark.parametrize("vfr", [False, True], ids=["cfr", "vfr"])
def test_copy_tail_cut_holds_the_planned_frames_and_copies_the_head_bit_for_bit(tmp_path, vfr):
    from egotask.fixtures import write_clip
    from egotask.frames import index_frames

    times = None
    if vfr:  # gaps of 80, 100 and 150 ms in turn
        times = np.cumsum([0.0] + [(0.08, 0.1, 0.15)[i % 3] for i in range(79)]).tolist()
    src = write_clip(tmp_path / "src.mp4", ["EXIT 9", "BAKERY", "ELM ST", "PARKING"], seconds=8.0, fps=10, gop=10,
                     frame_times=times)
    source = index_frames(src)
    end = 5.55
    result = _cut(src, tmp_path / "cut.mp4", end)
    assert (result.status, result.method, result.message) == ("done", "copy+tail", "")
    planned = _planned(src, 0.0, end)
    cut = index_frames(tmp_path / "cut.mp4")
    assert cut.times.tolist() == pytest.approx(planned, abs=1e-6)
    assert cut.times[-1] < end and len(cut.times) == int((source.times < end - 1e-6).sum())
    # The copy ends at the keyframe of the GOP holding the last frame; every frame before it is the
    # source's own decode, and the re-encoded tail is close to it.
    key = int(source.keyframe_of[len(planned) - 1])
    assert 0 < key < len(planned)
    ours, theirs = _decoded(tmp_path / "cut.mp4"), _decoded(src)
    assert [t for t, _ in ours] == pytest.approx(planned, abs=1e-6)
    assert all(np.array_equal(ours[i][1], theirs[i][1]) for i in range(key))
    tail_gap = max(float(np.abs(ours[i][1].astype(int) - theirs[i][1]).mean()) for i in range(key, len(planned)))
    assert tail_gap < 3.0


def test_a_cut_the_fast_path_cannot_make_is_re_encoded_whole_and_says_why(tmp_path):
    from egotask.fixtures import write_clip
    from egotask.frames import index_frames

    one_gop = write_clip(tmp_path / "one_gop.mp4", ["A", "B"], seconds=4.0, fps=10)  # the next keyframe at 2 s
    mpeg4 = write_clip(tmp_path / "mpeg4.mp4", ["A", "B"], seconds=4.0, fps=10, codec="mpeg4", gop=10)
    for src, end, why in ((one_gop, 1.55, "in one GOP"), (mpeg4, 2.55, "the codec is mpeg4, not H.264")):
        dst = tmp_path / f"cut_{src.stem}.mp4"
        result = _cut(src, dst, end)
        assert (result.status, result.method) == ("done", "reencode") and why in result.message
        assert index_frames(dst).times.tolist() == pytest.approx(_planned(src, 0.0, end), abs=1e-6)
        assert index_frames(dst).times[-1] < end


def test_cut_visible_records_how_each_cut_was_made_and_reuses_cuts_made_before_copy_tail(tmp_path, monkeypatch):
    from egotask import settings
    from egotask.fixtures import write_clip
    from egotask.visible_clips import cut_visible

    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(tmp_path / "cache"))
    settings.reset()
    src = write_clip(tmp_path / "v.mp4", ["A", "B", "C"], seconds=6.0, fps=10, gop=10)
    cuts = cut_visible([(src, 0.0, 4.0), (src, 0.0, 0.55)], workers=1)
    fast, short = cuts[(str(src), 0.0, 4.0)], cuts[(str(src), 0.0, 0.55)]
    assert (fast.method, fast.seen) == ("copy+tail", (0.0, pytest.approx(3.9)))
    assert (short.method, short.seen) == ("reencode", (0.0, pytest.approx(0.5)))
    sidecar = json.loads(fast.path.with_suffix(".json").read_text())
    assert (sidecar["method"], sidecar["why"]) == ("copy+tail", "")
    assert "in one GOP" in json.loads(short.path.with_suffix(".json").read_text())["why"]
    # A sidecar written before copy+tail (no method) still stands for its cut: same frames, same times.
    old = {k: v for k, v in sidecar.items() if k not in ("method", "why")}
    fast.path.with_suffix(".json").write_text(json.dumps(old))
    made = fast.path.stat().st_mtime_ns
    again = cut_visible([(src, 0.0, 4.0)])[(str(src), 0.0, 4.0)]
    assert (again.method, again.path.stat().st_mtime_ns) == ("reencode", made)


def test_a_cut_that_starts_later_copies_from_a_keyframe_there_and_re_encodes_when_it_starts_between(tmp_path):
    from egotask.data.splice import cut_interval
    from egotask.data.transcode import TranscodeSpec
    from egotask.fixtures import write_clip
    from egotask.frames import index_frames

    src = write_clip(tmp_path / "src.mp4", ["A", "B", "C", "D"], seconds=8.0, fps=10, gop=10)
    theirs = _decoded(src)
    for start, method in ((2.0, "copy+tail"), (2.5, "reencode")):
        dst = tmp_path / f"cut_{start}.mp4"
        result = cut_interval(src, dst, TranscodeSpec(start=start, end=6.55, crf=18))
        assert result.method == method
        assert index_frames(dst).times.tolist() == pytest.approx(_planned(src, start, 6.55), abs=1e-6)
        if method == "copy+tail":  # frames 20-59 copied, bit for bit; 60-65 re-encoded
            ours = _decoded(dst)
            assert len(ours) == 46 and all(np.array_equal(ours[i][1], theirs[20 + i][1]) for i in range(40))
        else:
            assert result.message == "the interval starts between keyframes"
