"""Served models under test (`openai_vlm`, `gemini_vlm`) against local servers that speak the OpenAI chat
and Gemini REST APIs, reached by the real openai and google-genai clients: which frames they are shown
(time-coded clips: each frame shows its own frame number), concurrency, retries, failures and resume."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_lmms_eval
from time_coded import time_code_of, write_time_coded_clip

from egotask.fixtures import write_egotextvqa_annotations
from egotask.frames import VisibleVideo
from egotask.testing.vendor import FakeVLMServer, image_urls, texts

VIDEOS = [f"0a1b2c3d-0000-4000-8000-0000000000b{i}" for i in range(4)]
ASKED_AT = [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]  # seconds into 6 s, 10 fps time-coded clips
FRAMES = 4
REPLY = f"I was shown {FRAMES} images."  # the fake servers' answer


def question(i: int) -> str:
    return f"what does scene {i} show?"


@pytest.fixture(scope="module")
def timed_data(tmp_path_factory) -> dict[str, str]:
    """Eight indoor questions on four time-coded clips, asked at 1.5 s to 5.0 s."""
    root = tmp_path_factory.mktemp("served-data")
    for video in VIDEOS:
        write_time_coded_clip(root / "videos" / "EgoTextVQA-Indoor" / f"{video}.mp4")
    rows = [{"video_id": VIDEOS[i % len(VIDEOS)], "question_id": str(i), "question_type": "others",
             "question": question(i), "correct_answer": "grey", "timestamp": t, "video_url": ""}
            for i, t in enumerate(ASKED_AT)]
    write_egotextvqa_annotations(root / "annotations", rows, [])
    return {"EGOTEXTVQA_ANNOTATIONS": str(root / "annotations"), "EGOTEXTVQA_VIDEO_DIR": str(root / "videos")}


@pytest.fixture
def server():
    started = FakeVLMServer().start()
    yield started
    started.stop()


def asked(body: dict) -> int:
    """Which question a request is about."""
    found = {i for i in range(len(ASKED_AT)) for text in texts(body) if question(i) in text}
    assert len(found) == 1, texts(body)
    return found.pop()


def shown_times(server: FakeVLMServer, body: dict) -> list[float]:
    return [time_code_of(image) for image in server.images(body)]


def check_frames_before_timestamps(server: FakeVLMServer, bodies: list[dict]) -> dict[int, list[float]]:
    """Every request carries FRAMES frames, all from before its question's timestamp; returns them."""
    out = {}
    for body in bodies:
        i, times = asked(body), shown_times(server, body)
        assert len(times) == FRAMES and times == sorted(times)
        assert max(times) < ASKED_AT[i], (i, times)
        out[i] = times
    return out


def indoor_run(env: dict[str, str], out: Path, model: str, model_args: str, limit: int = 8, exit_status: int = 0):
    run = run_lmms_eval(["--tasks", "egotextvqa_indoor", "--model", model, "--model_args", model_args,
                         "--limit", str(limit)], env, out)
    assert run.returncode == exit_status, run.output
    return run, {int(s["details"]["question_id"]): s["details"] for s in run.samples["egotextvqa_indoor"]}


def check_records(records: dict[int, dict], shown: dict[int, list[float]], model: str) -> None:
    assert sorted(records) == list(range(len(ASKED_AT)))
    for i, record in records.items():
        assert record["prediction"] == REPLY and record["generation_error"] is None
        assert record["model"] == model and record["frames"]["n_frames"] == FRAMES
        assert record["seen"] == [shown[i][0], shown[i][-1]] and record["seen"][1] < record["timestamp"]


# --------------------------------------------------------------------------- through lmms_eval

@pytest.mark.slow
def test_openai_vlm_requests_carry_one_video_of_frames_before_each_timestamp(timed_data, server, tmp_path):
    run, records = indoor_run(timed_data, tmp_path / "out", "openai_vlm",
                              f"base_url={server.url}/v1,model=m,max_frames={FRAMES},concurrency=4")
    assert len(server.bodies) == len(ASKED_AT)
    shown = check_frames_before_timestamps(server, server.bodies)
    for body in server.bodies:
        (url,) = image_urls(body)  # one video part: a video/jpeg data URL of FRAMES base64 JPEGs
        assert url.startswith("data:video/jpeg;base64,") and url.count(",") == FRAMES
        assert body["model"] == "m" and body["temperature"] == 0
        # the frames' real times, as vLLM's video/jpeg loader takes them: time = index / fps
        meta = body["media_io_kwargs"]["video"]
        assert [round(n / meta["fps"], 6) for n in meta["frames_indices"]] == shown[asked(body)]
        assert meta["duration"] == ASKED_AT[asked(body)]
    check_records(records, shown, "m")
    details = run.results["results"]["egotextvqa_indoor"]["details,none"]
    assert (details["n"], details["n_judged"], details["n_generation_failed"]) == (8, 8, 0)


@pytest.mark.slow
def test_gemini_vlm_requests_carry_timestamped_frames_before_each_timestamp(timed_data, server, tmp_path):
    env = {**timed_data, "GOOGLE_GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": "test-gemini-key"}
    _, records = indoor_run(env, tmp_path / "out", "gemini_vlm", f"model=gemini-test,max_frames={FRAMES}")
    assert len(server.bodies) == len(ASKED_AT)
    assert all(path.endswith("/models/gemini-test:generateContent") for path in server.paths)
    assert server.api_keys == {"test-gemini-key"}
    shown = check_frames_before_timestamps(server, server.bodies)
    for body in server.bodies:  # "Frame at t s:" before each frame, with that frame's own time
        labels = [float(m.group(1)) for t in texts(body) if (m := re.fullmatch(r"Frame at ([\d.]+) s:", t))]
        assert labels == pytest.approx(shown[asked(body)], abs=0.006)
    check_records(records, shown, "gemini-test")


@pytest.mark.slow
def test_a_request_that_keeps_failing_is_a_generation_failure_of_that_item_only(timed_data, tmp_path):
    failing = 3
    with FakeVLMServer(item_faults=lambda body: "500" if question(failing) in " ".join(texts(body)) else None) as srv:
        run, records = indoor_run(timed_data, tmp_path / "out", "openai_vlm",
                                  f"base_url={srv.url}/v1,model=m,max_frames={FRAMES},frames_as=images,"
                                  "max_attempts=3,backoff=0.01", exit_status=3)  # 3: everything written, an item failed
        attempts = [asked(body) for body in srv.bodies]
    assert attempts.count(failing) == 3 and all(attempts.count(i) == 1 for i in range(8) if i != failing)
    metrics = run.results["results"]["egotextvqa_indoor"]
    details = metrics["details,none"]
    assert metrics["n_generation_failed,none"] == 1 and details["n_generation_failed"] == 1
    assert (details["n_judged"], details["n_failed"]) == (7, 0)  # the others are judged; none is a judge failure
    (listed,) = details["generation_failed"]
    assert listed.startswith(f"{VIDEOS[failing % 4]}/{failing}:") and "HTTP 500" in listed and "3 attempts" in listed
    assert records[failing]["generation_error"] and records[failing]["verdict"]["pred"] is None
    assert all(records[i]["prediction"] == REPLY for i in records if i != failing)
    # frames_as=images: each image after a "Frame at t s:" label with its own time
    body = srv.bodies[0]
    labels = [float(t.split()[2]) for t in texts(body) if t.startswith("Frame at ")]
    assert labels == pytest.approx(shown_times(srv, body), abs=0.006)


def stored_answers(cache: Path) -> int:
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(cache, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


@pytest.mark.slow
def test_a_killed_run_rerun_sends_requests_only_for_the_unanswered_items(timed_data, tmp_path):
    cache = Path(os.environ["EGOTASK_CACHE_DIR"]) / "answers.sqlite3"
    with FakeVLMServer(latency=0.5) as srv:
        args = ["--tasks", "egotextvqa_indoor", "--model", "openai_vlm", "--limit", "8", "--model_args",
                f"base_url={srv.url}/v1,model=m,max_frames={FRAMES},concurrency=2"]
        env = {**os.environ, **timed_data}
        with open(tmp_path / "killed.log", "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "egotask.lmms_entry", *args], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 300
            while stored_answers(cache) < 2 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.kill()  # SIGKILL: nothing is flushed, no handler runs
            proc.wait()
        time.sleep(0.3)  # let the server count a request that reached it as the process died
        kept, sent_before = stored_answers(cache), len(srv.bodies)
        assert 2 <= kept < 8, (tmp_path / "killed.log").read_text()[-3000:]
        run, records = indoor_run(timed_data, tmp_path / "out", "openai_vlm", args[-1])
        rerun = [asked(body) for body in srv.bodies[sent_before:]]
    assert len(rerun) == 8 - kept and len(set(rerun)) == len(rerun)
    assert all(r["prediction"] == REPLY for r in records.values()) and len(records) == 8
    assert run.results["results"]["egotextvqa_indoor"]["details,none"]["n_judged"] == 8


# --------------------------------------------------------------------------- in process

@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_time_coded_clip(tmp_path_factory.mktemp("served-clip") / "clip.mp4")


def build(kind: str, server_url: str, monkeypatch, **args):
    if kind == "gemini":
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server_url)
        monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")
        from egotask.model_adapters.gemini_vlm import GeminiVLM

        return GeminiVLM(model="gemini-test", max_frames=2, **args)
    from egotask.model_adapters.openai_vlm import OpenAIVLM

    return OpenAIVLM(model="m", base_url=f"{server_url}/v1", max_frames=2, **args)


def answer_all(model, clip: Path, n: int) -> dict[str, str | Exception]:
    """Run ``n`` items (question i asked at 1 + 0.5 i s) through the adapter's decode pool and requests."""
    from egotask.model_adapters.base import PendingItem

    items = [PendingItem(question(i), {}, {}, [VisibleVideo(str(clip), 0.0, 1.0 + 0.5 * i, source=str(clip))],
                         model.frame_settings(), f"key{i}") for i in range(n)]
    return {item.text: reply for item, reply in model.answer(model.prompts(items))}


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_requests_run_concurrently_up_to_the_limit(kind, clip, monkeypatch):
    with FakeVLMServer(latency=0.3) as srv:
        replies = answer_all(build(kind, srv.url, monkeypatch, concurrency=4), clip, 12)
    assert replies == {question(i): "I was shown 2 images." for i in range(12)}
    assert srv.max_in_flight == 4


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_a_429_is_retried_no_sooner_than_its_retry_after(kind, clip, monkeypatch):
    with FakeVLMServer(faults=lambda n: "429" if n == 1 else None, retry_after="0.6") as srv:
        model = build(kind, srv.url, monkeypatch, concurrency=1, backoff=0.001)
        replies = answer_all(model, clip, 1)
    assert replies == {question(0): "I was shown 2 images."}
    assert srv.requests == 2 and srv.started[1] - srv.started[0] >= 0.6
    assert model.stats["retries"] == 1


def test_a_request_past_its_timeout_is_retried_then_fails_only_its_item(clip, monkeypatch):
    from egotask.model_adapters.base import GenerationFailure

    with FakeVLMServer(faults=lambda n: "hang" if n <= 2 else None, hang=3.0) as srv:
        replies = answer_all(build("openai", srv.url, monkeypatch, concurrency=1, timeout=0.3, max_attempts=2,
                                   backoff=0.001), clip, 2)
    failure = replies[question(0)]
    assert isinstance(failure, GenerationFailure)
    assert "no reply within 0.3 s" in str(failure) and "after 2 attempts" in str(failure)
    assert replies[question(1)] == "I was shown 2 images."


@pytest.mark.parametrize("kind, hint", [("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")])
def test_a_refused_key_stops_the_run_naming_the_variable(kind, hint, clip, monkeypatch):
    from egotask.model_adapters.served import ServedModelError

    with FakeVLMServer(faults=lambda n: "401") as srv:
        model = build(kind, srv.url, monkeypatch, concurrency=2)
        with pytest.raises(ServedModelError, match=f"HTTP 401.*{hint}"):
            answer_all(model, clip, 6)
    assert srv.requests <= 2  # not retried, and nothing more is sent


def test_an_endpoint_that_answers_nothing_stops_the_run(clip, monkeypatch):
    from egotask.model_adapters.served import ServedModelError

    srv = FakeVLMServer().start()
    url = srv.url
    srv.stop()  # nothing listens there now
    model = build("openai", url, monkeypatch, concurrency=1, max_attempts=2, backoff=0.001)
    with pytest.raises(ServedModelError, match="answered none of the first 3 items.*connection error"):
        answer_all(model, clip, 6)


def _frames_by_question(srv: FakeVLMServer) -> dict[int, list[bytes]]:
    from egotask.testing.vendor import encoded_images

    return {int(re.search(r"scene (\d+)", " ".join(texts(b))).group(1)): encoded_images(b) for b in srv.bodies}


def test_frames_decoded_in_worker_processes_are_the_ones_this_process_would_send(clip, monkeypatch):
    from egotask import frames

    sent = {}
    for workers in (0, 2):
        frames.close_open_videos()
        with FakeVLMServer() as srv:
            replies = answer_all(build("openai", srv.url, monkeypatch, concurrency=4, frame_workers=workers), clip, 6)
        assert set(replies.values()) == {"I was shown 2 images."}
        sent[workers] = _frames_by_question(srv)
        # Decoding in this process leaves its videos open here for the next item; in workers, nothing is.
        assert (len(frames._OPEN_VIDEOS) > 0) == (workers == 0)
    assert sent[2] == sent[0] and len(sent[0]) == 6  # byte for byte the same JPEGs


class CrashesItsWorker(str):
    """A video path whose unpickling ends the worker that receives it, as a decoder crash would."""

    def __reduce__(self):
        return (os._exit, (3,))


def test_a_video_that_crashes_its_frame_worker_fails_only_its_own_item(clip, monkeypatch):
    from egotask.model_adapters.base import GenerationFailure, PendingItem

    with FakeVLMServer() as srv:
        model = build("openai", srv.url, monkeypatch, concurrency=2, frame_workers=1)
        items = [PendingItem(question(i), {}, {}, [CrashesItsWorker(clip) if i == 2 else
                                                   VisibleVideo(str(clip), 0.0, 1.0 + 0.5 * i, source=str(clip))],
                             model.frame_settings(), f"key{i}") for i in range(5)]
        replies = {item.text: reply for item, reply in model.answer(model.prompts(items))}
    crashed = replies.pop(question(2))
    assert isinstance(crashed, GenerationFailure) and "frame worker died" in str(crashed)
    assert replies == {question(i): "I was shown 2 images." for i in (0, 1, 3, 4)}
    assert len(srv.bodies) == 4


def test_the_answer_cache_ignores_how_requests_are_scheduled(monkeypatch):
    from egotask.model_adapters.openai_vlm import OpenAIVLM

    def fingerprint(**args):
        return OpenAIVLM(model="m", base_url="http://127.0.0.1:9/v1", **args).model_fingerprint()

    assert fingerprint(concurrency=2) == fingerprint(concurrency=32, timeout=5, max_attempts=9, frame_workers=0)
    assert fingerprint() != fingerprint(frames_as="images")  # another prompt: another answer
    assert fingerprint() != OpenAIVLM(model="other", base_url="http://127.0.0.1:9/v1").model_fingerprint()


def test_gemini_vlm_without_a_key_names_the_variables(monkeypatch):
    from egotask.model_adapters.gemini_vlm import GeminiVLM

    with pytest.raises(ValueError, match="GEMINI_API_KEY.*GOOGLE_API_KEY"):
        GeminiVLM()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_frame_workers_of_a_killed_run_leave_with_it(tmp_path):
    script = tmp_path / "run.py"
    script.write_text("import time\nfrom egotask import frame_workers\nif __name__ == '__main__':\n"
                      "    frame_workers.shared(2).wait_ready()\n    print('ready', flush=True)\n    time.sleep(60)\n")
    run = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline().strip() == "ready"
        workers = [p for p in _children(run.pid) if "egotask.frame_workers" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2
    finally:
        run.kill()  # as kill -9 would: no exit handler runs
        run.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()], "frame workers outlived their killed parent"


def test_frame_workers_never_run_the_parents_main_script(clip, tmp_path):
    # multiprocessing's spawn would re-run this unguarded script in every worker (and under Streamlit,
    # whose script runs as __main__, that failed every item).
    runs = tmp_path / "runs.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from egotask import frame_workers\nfrom egotask.frames import VisibleVideo\n"
        f"open({str(runs)!r}, 'a').write('run\\n')\n"
        f"clip = {str(clip)!r}\n"
        "jobs = [frame_workers.shared(2).submit([VisibleVideo(clip, 0.0, 1.0 + i, source=clip)], "
        "{'max_frames': 3, 'fps': None, 'max_pixels': None}, 90) for i in range(4)]\n"
        "print([len(job.result()[0][0][1]) for job in jobs])\n")  # (encoded, seconds): the first video's JPEGs
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[3, 3, 3, 3]"
    assert runs.read_text() == "run\n"


# --------------------------------------------------------------------------- replies that hold no answer

@pytest.mark.parametrize("fault, kept", [
    ("html", "HTML page ('502 Bad Gateway')"),
    ("truncated", "not complete JSON"),
    ("error-body", "The engine is overloaded, try again (code 503)"),
])
def test_a_bad_200_reply_is_classified_keeps_the_servers_message_and_is_retried(fault, kept, clip, monkeypatch):
    from egotask.model_adapters.base import GenerationFailure

    # Transient: once, then an answer.
    with FakeVLMServer(faults=lambda n: fault if n == 1 else None) as srv:
        model = build("openai", srv.url, monkeypatch, concurrency=1, backoff=0.001)
        assert answer_all(model, clip, 1) == {question(0): "I was shown 2 images."}
    assert srv.requests == 2 and model.stats["retries"] == 1
    # Every time: a generation failure of the item that says what came back.
    with FakeVLMServer(faults=lambda n: fault) as srv:
        failure = answer_all(build("openai", srv.url, monkeypatch, concurrency=1, max_attempts=3, backoff=0.001),
                             clip, 1)[question(0)]
    assert isinstance(failure, GenerationFailure) and srv.requests == 3
    assert kept in str(failure) and "after 3 attempts" in str(failure) and "AttributeError" not in str(failure)


@pytest.mark.parametrize("fault, said", [("html", "not complete JSON (Expecting value"),
                                         ("truncated", "not complete JSON (Unterminated string"),
                                         ("error-body", "no candidate and no block reason")])
def test_gemini_vlm_classifies_a_bad_200_reply_and_retries_it(fault, said, clip, monkeypatch):
    from egotask.model_adapters.base import GenerationFailure

    with FakeVLMServer(faults=lambda n: fault if n == 1 else None) as srv:
        model = build("gemini", srv.url, monkeypatch, concurrency=1, backoff=0.001)
        assert answer_all(model, clip, 1) == {question(0): "I was shown 2 images."}
    assert srv.requests == 2 and model.stats["retries"] == 1
    with FakeVLMServer(faults=lambda n: fault) as srv:
        failure = answer_all(build("gemini", srv.url, monkeypatch, concurrency=1, max_attempts=2, backoff=0.001),
                             clip, 1)[question(0)]
    assert isinstance(failure, GenerationFailure) and said in str(failure) and "after 2 attempts" in str(failure)


@pytest.mark.slow
def test_a_null_or_refused_reply_is_a_generation_failure_never_cached(timed_data, tmp_path):
    """content: null and a refusal are no answer: counted apart, not judged, not cached; the rerun asks
    only for them."""
    faults = {1: "null-content", 2: "refusal"}

    def plan(body):
        return next((f for i, f in faults.items() if question(i) in " ".join(texts(body))), None)

    with FakeVLMServer(item_faults=plan) as srv:
        model_args = f"base_url={srv.url}/v1,model=m,max_frames={FRAMES},backoff=0.01"
        run, records = indoor_run(timed_data, tmp_path / "out1", "openai_vlm", model_args, exit_status=3)
        details = run.results["results"]["egotextvqa_indoor"]["details,none"]
        assert details["n_generation_failed"] == 2 and details["n_judged"] == 6
        assert "content is null" in records[1]["generation_error"] and records[1]["prediction"] == ""
        assert "refused (I can't help with that request.)" in records[2]["generation_error"]
        assert records[1]["verdict"]["pred"] is None and records[2]["verdict"]["pred"] is None
        assert stored_answers(Path(os.environ["EGOTASK_CACHE_DIR"]) / "answers.sqlite3") == 6
        sent = len(srv.bodies)
        faults.clear()  # the endpoint answers now
        run, records = indoor_run(timed_data, tmp_path / "out2", "openai_vlm", model_args)
        assert sorted(asked(b) for b in srv.bodies[sent:]) == [1, 2]
    assert all(r["prediction"] == REPLY for r in records.values())


def test_refusals_are_replies_and_do_not_stop_the_run_as_a_dead_endpoint(clip, monkeypatch):
    from egotask.model_adapters.base import GenerationFailure

    with FakeVLMServer(faults=lambda n: "refusal" if n <= 4 else None) as srv:
        replies = answer_all(build("openai", srv.url, monkeypatch, concurrency=1, give_up_after=3), clip, 6)
    assert all(isinstance(replies[question(i)], GenerationFailure) for i in range(4))
    assert "refused" in str(replies[question(0)]) and srv.requests == 6  # not retried, not stopped
    assert replies[question(5)] == "I was shown 2 images."


def test_a_gemini_reply_without_text_is_a_generation_failure(clip, monkeypatch):
    from egotask.model_adapters.base import GenerationFailure

    with FakeVLMServer(reply="") as srv:
        replies = answer_all(build("gemini", srv.url, monkeypatch, concurrency=1), clip, 2)
    assert all(isinstance(r, GenerationFailure) and "the reply holds no text" in str(r) for r in replies.values())
    assert srv.requests == 2  # a reply, so not retried
