"""Model-side metrics (record version 4's ``generation``): the tokens each backend reports, generation
latency and frame decode time per item, and the run's throughput line in reports; runs made before
these were recorded show "not measured"."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import THINKING_REPLY, run_lmms_eval
from lmms_eval.api.instance import Instance

from egotask import answers
from egotask.frames import SampledFrames, VisibleVideo, sample_visual
from egotask.model_adapters.base import (
    GenerationFailure,
    PendingItem,
    Reply,
    VideoPrompt,
    generated_lengths,
    share_decode_time,
    video_inputs,
)
from egotask.records import Generation, RecordError, SampleRecord, Verdict, read_record
from egotask.reports.collect import collect_runs
from egotask.reports.render import render_console, render_markdown
from egotask.reports.tables import GENERATION_NOT_MEASURED, describe_generation
from egotask.scoring import generation_summary
from egotask.tasklib import doc_to_text, doc_to_visual, make_process_docs
from egotask.testing.vendor import IMAGE_TOKENS, FakeVLMServer, texts, usage

TASK, SPLIT = "egotextvqa_indoor", "test"
LATENCY = 0.2  # the fake server's delay before every reply, seconds


# --------------------------------------------------------------------------- records

def record(qid: int, generation: Generation | None, error: str | None = None) -> SampleRecord:
    verdict = Verdict(pred="yes", score=5, judge="heuristic", judge_model="heuristic", prompt_version="v")
    return SampleRecord(task="egotextvqa_indoor", benchmark="egotextvqa_indoor", setting="indoor",
                        video_id=f"v{qid}", question_id=str(qid), question_type="kitchen", question="q?",
                        answer="a", prediction="" if error else "a", verdict=verdict, model="m",
                        generation_error=error, generation=generation)


def test_a_version_4_record_keeps_its_generation_and_a_version_3_record_reads_as_not_measured():
    measured = Generation(prompt_tokens=812, completion_tokens=9, latency_s=0.25, decode_s=0.05,
                          started=1_700_000_000.5)
    data = record(1, measured).to_dict()
    assert data["version"] == 4 and data["generation"] == {
        "prompt_tokens": 812, "completion_tokens": 9, "latency_s": 0.25, "decode_s": 0.05,
        "started": 1_700_000_000.5, "cached": False}
    assert read_record(json.loads(json.dumps(data)), "x").generation == measured
    old = {**data, "version": 3}
    del old["generation"]
    assert read_record(old, "old.jsonl:1").generation is None


@pytest.mark.parametrize("field, value", [("prompt_tokens", -1), ("completion_tokens", 2.5), ("latency_s", "fast"),
                                          ("cached", "yes")])
def test_a_bad_generation_field_is_an_error_naming_the_file_line_and_field(field, value):
    data = record(1, Generation(prompt_tokens=1)).to_dict()
    data["generation"][field] = value
    with pytest.raises(RecordError, match=rf"^run.jsonl:7: field generation.{field} must be"):
        read_record(data, "run.jsonl:7")


def test_the_run_summary_times_only_fresh_answers_and_takes_tokens_from_every_answer():
    # Four answers made in this run, requests going in at 100.0-101.5 s; the last back at 102.0 s.
    fresh = [record(i, Generation(prompt_tokens=100 + 10 * i, completion_tokens=4 + i, latency_s=lat, decode_s=0.1,
                                  started=100.0 + 0.5 * i))
             for i, lat in enumerate([0.2, 0.4, 0.3, 0.5])]
    failed = record(4, Generation(latency_s=0.1, started=100.2, decode_s=0.3), error="HTTP 400")
    cached = record(5, Generation(prompt_tokens=200, completion_tokens=8, latency_s=9.0, decode_s=7.0, started=5.0,
                                  cached=True))
    info = generation_summary([*fresh, failed, cached, record(6, None)])
    assert info["n_measured"] == 6 and info["n_cached"] == 1 and info["n_timed"] == 4
    assert info["span_s"] == pytest.approx(2.0)  # 100.0 to 101.5 + 0.5: the cached answer's 5.0 is not
    assert info["items_per_s"] == pytest.approx(4 / 2.0)
    assert info["latency_median_s"] == pytest.approx(0.35)
    assert info["latency_p95_s"] == pytest.approx(0.485)  # 0.4 + 0.85 * (0.5 - 0.4), linear interpolation
    assert info["prompt_tokens_per_item"] == pytest.approx((100 + 110 + 120 + 130 + 200) / 5)
    assert info["completion_tokens_per_item"] == pytest.approx((4 + 5 + 6 + 7 + 8) / 5)
    assert info["decode_s_per_item"] == pytest.approx((0.1 * 4 + 0.3) / 5)  # fresh items', the failed one too
    assert describe_generation(info) == (
        "2.00 items/s (4 answers in 2.000 s); latency median 0.350 s, p95 0.485 s; 132.0 prompt + 6.0 completion "
        "tokens per item; frames decoded in 0.140 s per item; 1 answer(s) from the answer cache not timed")


def test_runs_without_generation_records_are_not_measured_and_a_fully_cached_run_is_not_timed():
    assert generation_summary([record(1, None), record(2, None)]) is None
    assert describe_generation(None) == GENERATION_NOT_MEASURED
    info = generation_summary([record(1, Generation(prompt_tokens=5, completion_tokens=2, latency_s=1.0,
                                                    started=1.0, cached=True))])
    assert describe_generation(info) == ("throughput not measured (every answer came from the answer cache); "
                                         "5.0 prompt + 2.0 completion tokens per item; 1 answer(s) from the answer "
                                         "cache not timed")


def test_a_report_of_version_3_records_says_the_model_side_was_not_measured(tmp_path):
    rows = []
    for i in range(3):
        data = record(i, None).to_dict()
        data["version"] = 3
        del data["generation"]
        rows.append(json.dumps(data))
    path = tmp_path / "old.records.jsonl"
    path.write_text("\n".join(rows) + "\n")
    runs = collect_runs([path])
    assert f"- Model side: {GENERATION_NOT_MEASURED}." in render_markdown(runs)
    assert f"model side: {GENERATION_NOT_MEASURED}" in render_console(runs)


# --------------------------------------------------------------------------- shared pieces

def test_generated_lengths_count_up_to_the_first_end_token_and_ignore_the_padding_after_it():
    eos, pad = 7, 0
    new = torch.tensor([[5, 6, eos, pad, pad], [5, 5, 5, 5, 5], [eos, pad, pad, pad, pad], [4, eos, 3, eos, pad]])
    assert generated_lengths(new, {eos}) == [3, 5, 1, 2]
    assert generated_lengths(new, {eos, 3}) == [3, 5, 1, 2]


def frames_at(times: list[float]) -> SampledFrames:
    return SampledFrames(np.zeros((len(times), 2, 2, 3), np.uint8), times, 10.0, 6.0, 0.0, 6.0)


def test_a_shared_decoding_pass_is_split_by_the_frames_each_item_was_shown():
    prompts = [VideoPrompt("a", [frames_at([0.5, 1.5, 2.5])], {}), GenerationFailure("no frames"),
               VideoPrompt("b", [frames_at([0.5])], {}),
               VideoPrompt("c", [frames_at([1.0, 2.0]), frames_at([3.0])], {})]
    share_decode_time(prompts, 1.4)
    assert [p.decode_s for p in prompts if isinstance(p, VideoPrompt)] == pytest.approx([0.6, 0.2, 0.6])


# --------------------------------------------------------------------------- served models, in process

@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from time_coded import write_time_coded_clip

    return write_time_coded_clip(tmp_path_factory.mktemp("metrics-clip") / "clip.mp4")


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_a_served_reply_carries_the_tokens_the_api_reported_and_its_latency(kind, clip, monkeypatch):
    from egotask.model_adapters.gemini_vlm import GeminiVLM
    from egotask.model_adapters.openai_vlm import OpenAIVLM

    with FakeVLMServer(latency=LATENCY) as server:
        if kind == "gemini":
            monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
            monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key")
            model = GeminiVLM(model="gemini-test", max_frames=3, concurrency=2, frame_workers=0)
        else:
            model = OpenAIVLM(model="m", base_url=f"{server.url}/v1", max_frames=3, concurrency=2, frame_workers=0)
        visuals = [[VisibleVideo(str(clip), 0.0, 2.0 + i, source=str(clip))] for i in range(3)]
        items = [PendingItem(f"what is in scene {i}?", {}, {}, visuals[i], model.frame_settings(), f"key{i}")
                 for i in range(3)]
        replies = {item.text: reply for item, reply in model.answer(model.prompts(items))}
        bodies = {next(t for t in texts(body) if t.startswith("what is in scene")): body for body in server.bodies}
    assert len(replies) == 3
    for question, reply in replies.items():
        assert isinstance(reply, Reply) and reply == "I was shown 3 images."
        prompt_tokens, completion_tokens = usage(bodies[question], reply)
        assert (reply.prompt_tokens, reply.completion_tokens) == (prompt_tokens, completion_tokens)
        assert prompt_tokens > 3 * IMAGE_TOKENS and completion_tokens == 5
        assert reply.latency_s >= LATENCY and reply.started > 0


def test_a_failed_request_is_timed_too(clip):
    from egotask.model_adapters.openai_vlm import OpenAIVLM

    with FakeVLMServer(latency=LATENCY, faults=lambda n: "400") as server:
        model = OpenAIVLM(model="m", base_url=f"{server.url}/v1", max_frames=2, frame_workers=0, give_up_after=5)
        items = [PendingItem("q", {}, {}, [VisibleVideo(str(clip), 0.0, 2.0, source=str(clip))],
                             model.frame_settings(), "k")]
        ((_, reply),) = list(model.answer(model.prompts(items)))
    assert isinstance(reply, GenerationFailure) and "HTTP 400" in str(reply)
    assert reply.latency_s >= LATENCY and reply.started > 0


# --------------------------------------------------------------------------- transformers, in process

@pytest.fixture
def docs(sample_env):
    return make_process_docs("egotextvqa_indoor")(None)


def ask(model, docs, n: int, **gen_kwargs) -> list[answers.Outcome]:
    """Answer the first ``n`` docs through ``generate_until``, and take each item's outcome as the task would."""
    model.task_dict = {TASK: {SPLIT: docs}}
    requests = [Instance("generate_until", (doc_to_text(docs[i]), {"until": ["\n\n"], **gen_kwargs}, doc_to_visual,
                                            i, TASK, SPLIT), idx=0, metadata={"task": TASK, "doc_id": i, "repeats": 1})
                for i in range(n)]
    model.generate_until(requests)
    return [answers.take(docs[i]) for i in range(n)]


def prompt_tokens_alone(model, doc, max_frames: int) -> int:
    """The item's prompt as the processor tokenizes it on its own: chat template, frames and their times."""
    (visual,) = doc_to_visual(doc)
    video = sample_visual(visual, max_frames=max_frames)
    text = model.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": doc_to_text(doc)}]}],
        tokenize=False, add_generation_prompt=True)
    return len(model.processor(text=[text], **video_inputs([video]), return_tensors="pt")["input_ids"][0])


def test_hf_records_the_prompt_and_generated_token_counts_latency_and_decode_time(tiny_thinking_qwen, docs):
    from egotask.model_adapters.qwen3vl import Qwen3VL

    # The scripted checkpoint writes THINKING_REPLY, then ends the turn with <|im_end|>.
    model = Qwen3VL(pretrained=str(tiny_thinking_qwen), thinking="false", max_frames=2)
    outcomes = ask(model, docs, 2)
    reply_tokens = len(model.processor.tokenizer.encode(THINKING_REPLY, add_special_tokens=False)) + 1
    for doc, outcome in zip(docs, outcomes, strict=False):
        g = outcome.generation
        assert outcome.text == THINKING_REPLY
        assert g.prompt_tokens == prompt_tokens_alone(model, doc, 2) and g.completion_tokens == reply_tokens
        assert g.latency_s > 0 and g.decode_s > 0 and g.started > 0 and not g.cached
    # Asked again, the answers come from the answer cache: marked cached, their tokens kept.
    again = ask(model, docs, 2)
    assert [o.generation.cached for o in again] == [True, True]
    assert [o.generation.prompt_tokens for o in again] == [o.generation.prompt_tokens for o in outcomes]


def test_a_left_padded_batch_counts_each_items_own_prompt_tokens(tiny_smolvlm, docs):
    from egotask.model_adapters.smolvlm2 import SmolVLM2

    assert len({len(q) for q in docs["question"][:3]}) > 1  # different lengths: the batch is padded
    model = SmolVLM2(pretrained=str(tiny_smolvlm), max_frames=2, batch_size=3)
    outcomes = ask(model, docs, 3, max_new_tokens=6)
    assert [o.generation.prompt_tokens for o in outcomes] == [prompt_tokens_alone(model, docs[i], 2)
                                                              for i in range(3)]
    assert all(1 <= o.generation.completion_tokens <= 6 for o in outcomes)
    # One batch: its items went in together and share its latency.
    assert len({(o.generation.started, o.generation.latency_s) for o in outcomes}) == 1


# --------------------------------------------------------------------------- a served run, end to end

def throughput_line(records: list[dict]) -> str:
    """The report's model-side line, computed here from the records' generation fields."""
    gens = [r["generation"] for r in records]
    span = max(g["started"] + g["latency_s"] for g in gens) - min(g["started"] for g in gens)
    latencies = [g["latency_s"] for g in gens]

    def s(value: float) -> str:
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"

    return (f"{len(gens) / span:.2f} items/s ({len(gens)} answers in {s(span)}); latency median "
            f"{s(statistics.median(latencies))}, p95 {s(float(np.percentile(latencies, 95)))}; "
            f"{statistics.mean(g['prompt_tokens'] for g in gens):.1f} prompt + "
            f"{statistics.mean(g['completion_tokens'] for g in gens):.1f} completion tokens per item; frames decoded "
            f"in {s(statistics.mean(g['decode_s'] for g in gens))} per item")


@pytest.mark.slow
def test_a_served_runs_records_carry_tokens_and_latency_and_the_report_shows_its_throughput(sample_env, tmp_path):
    with FakeVLMServer(latency=LATENCY) as server:
        args = ["--tasks", "egotextvqa_indoor", "--model", "openai_vlm", "--model_args",
                f"base_url={server.url}/v1,model=m,max_frames=3,concurrency=2,frame_workers=1", "--limit", "4"]
        run = run_lmms_eval(args, sample_env, tmp_path / "out")
        assert run.returncode == 0, run.output
        bodies = list(server.bodies)
        again = run_lmms_eval(args, sample_env, tmp_path / "again")  # every answer from the answer cache
        assert again.returncode == 0, again.output
    records = [s["details"] for s in run.samples["egotextvqa_indoor"]]
    assert len(records) == len(bodies) == 4
    for rec in records:
        (body,) = [b for b in bodies if any(rec["question"] in t for t in texts(b))]
        g = rec["generation"]
        assert rec["version"] == 4 and rec["generation_error"] is None
        assert (g["prompt_tokens"], g["completion_tokens"]) == usage(body, rec["response"] or rec["prediction"])
        assert g["latency_s"] >= LATENCY and g["decode_s"] > 0 and g["started"] > 0 and g["cached"] is False
    # Two requests in flight, each at least LATENCY: at most 2 / LATENCY items a second.
    line = throughput_line(records)
    assert float(line.split(" items/s")[0]) <= 2 / LATENCY
    assert f"- Model side: {line}." in render_markdown(collect_runs([tmp_path / "out"]))
    assert f"model side: {line}" in run.output  # the table lmms_eval prints after the run

    cached = [s["details"]["generation"] for s in again.samples["egotextvqa_indoor"]]
    assert all(g["cached"] for g in cached)
    assert sorted(g["prompt_tokens"] for g in cached) == sorted(r["generation"]["prompt_tokens"] for r in records)
    report = render_markdown(collect_runs([tmp_path / "again"]))
    assert "- Model side: throughput not measured (every answer came from the answer cache);" in report
    assert "4 answer(s) from the answer cache not timed." in report
