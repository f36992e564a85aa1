"""``backend=vllm``: what is handed to vLLM (prompt, frames, frame times, processor settings, LoRA,
sampling) checked against the real processor classes of the tiny checkpoints, and the chunked
scheduling of a rank's requests. Tests that need a running vLLM skip where it cannot run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import THINKING_REPLY
from lmms_eval.api.instance import Instance

from egotask.frames import sample_visual
from egotask.model_adapters import vllm_backend
from egotask.model_adapters.base import GenerationFailure, VideoPrompt, split_reasoning, video_inputs
from egotask.model_adapters.qwen3vl import Qwen3VL
from egotask.model_adapters.smolvlm2 import SmolVLM2
from egotask.tasklib import doc_to_text, doc_to_visual, make_process_docs

TASK, SPLIT = "egotextvqa_indoor", "test"


@pytest.fixture
def docs(sample_env):
    return make_process_docs(TASK)(None)


def prompt_for(doc, max_frames: int = 4) -> VideoPrompt:
    """A document's request as the adapters sample it: frames from its visible interval only."""
    (visual,) = doc_to_visual(doc)
    return VideoPrompt(doc_to_text(doc), [sample_visual(visual, max_frames=max_frames)],
                       {"until": ["\n\n"]}, doc)


def requests_for(docs, n: int, **gen_kwargs) -> list[Instance]:
    return [Instance("generate_until", (doc_to_text(docs[i]),
                                        {"until": ["\n\n"], **gen_kwargs}, doc_to_visual, i, TASK, SPLIT),
                     idx=0, metadata={"task": TASK, "doc_id": i, "repeats": 1}) for i in range(n)]


def vllm_processor_inputs(processor, request: dict) -> dict:
    """What vLLM's processors pass the HF processor for a request: the prompt with the multimodal
    items and ``mm_processor_kwargs``; Qwen3-VL's rebuilds ``VideoMetadata`` from the metadata dict."""
    from transformers.video_utils import VideoMetadata

    media = request.get("multi_modal_data", {})
    kwargs = dict(request.get("mm_processor_kwargs", {}))
    if "video" in media:
        kwargs["videos"] = [frames for frames, _ in media["video"]]
        kwargs["video_metadata"] = [VideoMetadata(**{k: v for k, v in meta.items() if k != "do_sample_frames"})
                                    for _, meta in media["video"]]
    if "image" in media:
        kwargs["images"] = [media["image"]]
    return processor(text=[request["prompt"]], return_tensors="pt", **kwargs)


# --------------------------------------------------------------------------- requests

def test_qwen3vl_request_carries_the_hf_prompt_frames_and_real_times(tiny_qwen, docs):
    model = Qwen3VL(pretrained=str(tiny_qwen))
    prompt = prompt_for(docs[0])
    (video,) = prompt.videos
    request = vllm_backend.build_request("qwen3vl", model.processor, model.prompt_text(prompt), prompt.videos)

    assert request["prompt"] == model.prompt_text(prompt)  # the chat template's own rendering
    ((frames, meta),) = request["multi_modal_data"]["video"]
    assert frames is video.frames
    assert request["mm_processor_kwargs"] == {"do_sample_frames": False} and meta["do_sample_frames"] is False
    # The times vLLM writes as "<t seconds>" come from frames_indices / fps: the sampled frames' own.
    assert meta["fps"] == video.fps and meta["duration"] == video.end == 3.5  # the visible end, not the file's 5 s
    assert [i / meta["fps"] for i in meta["frames_indices"]] == pytest.approx(video.timestamps, abs=0.5 / video.fps)
    assert all(t < 3.5 for t in video.timestamps)

    hf = model.inputs([prompt])
    via_vllm = vllm_processor_inputs(model.processor, request)
    assert torch.equal(via_vllm["input_ids"], hf["input_ids"].cpu())
    assert torch.equal(via_vllm["pixel_values_videos"], hf["pixel_values_videos"].cpu())
    assert torch.equal(via_vllm["video_grid_thw"], hf["video_grid_thw"].cpu())


def test_qwen3vl_request_takes_one_video(tiny_qwen, docs):
    model = Qwen3VL(pretrained=str(tiny_qwen))
    prompt = prompt_for(docs[0])
    with pytest.raises(ValueError, match="one video per request for Qwen3-VL, got 2"):
        vllm_backend.build_request("qwen3vl", model.processor, "x", prompt.videos * 2)


def test_smolvlm2_request_sends_the_frames_as_images_that_match_the_hf_video_path(tiny_smolvlm, docs):
    """vLLM's SmolVLM takes images only: the video's frames go as images with the prompt SmolVLM2's
    processor writes for a video; processed unsplit at the video size, they are the same pixels."""
    from transformers.image_utils import SizeDict

    model = SmolVLM2(pretrained=str(tiny_smolvlm))
    # As in the real checkpoints, the image processor splits images and has its own size; the
    # request's processor settings must undo both for frames.
    model.processor.image_processor.do_image_splitting = True
    model.processor.image_processor.size = SizeDict(longest_edge=256)
    prompt = prompt_for(docs[0])
    (video,) = prompt.videos
    request = vllm_backend.build_request("smolvlm2", model.processor, model.prompt_text(prompt), prompt.videos)

    assert "<video>" not in request["prompt"] and request["prompt"].count("<image>") == len(video.frames) == 4
    assert "series of four frames from a 0:00:03 [H:MM:SS] video" in request["prompt"]  # the visible 3.5 s
    assert [f"Frame from 00:0{s}:<image>" in request["prompt"] for s in (0, 1, 2, 3)] == [True] * 4
    assert len(request["multi_modal_data"]["image"]) == 4
    assert request["mm_processor_kwargs"]["do_image_splitting"] is False

    hf = model.inputs([prompt])
    via_vllm = vllm_processor_inputs(model.processor, request)
    assert torch.equal(via_vllm["input_ids"], hf["input_ids"].cpu())
    assert torch.equal(via_vllm["pixel_values"], hf["pixel_values"].float().cpu())


def test_a_family_without_a_request_builder_is_refused():
    with pytest.raises(ValueError, match="backend=vllm supports qwen3vl, smolvlm2, not 'ocr'"):
        vllm_backend.build_request("ocr", None, "x", [])


# --------------------------------------------------------------------------- engine settings

def test_engine_takes_the_lora_base_weights_and_sizes_the_lora_slot_from_the_adapter(tiny_qwen, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    lora = tmp_path / "lora"
    get_peft_model(AutoModelForImageTextToText.from_pretrained(tiny_qwen),
                   LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(lora)
    kwargs = vllm_backend.engine_kwargs("qwen3vl", weights=str(tiny_qwen), lora=str(lora), max_frames=8,
                                        max_model_len=4096, tensor_parallel_size=2)
    assert kwargs["model"] == str(tiny_qwen)
    assert (kwargs["enable_lora"], kwargs["max_loras"], kwargs["max_lora_rank"]) == (True, 1, 8)  # r=4, rounded up
    assert kwargs["limit_mm_per_prompt"] == {"video": 1, "image": 0}
    assert (kwargs["max_model_len"], kwargs["tensor_parallel_size"]) == (4096, 2)
    assert vllm_backend.lora_spec(lora) == {"lora_name": "lora", "lora_int_id": 1, "lora_path": str(lora.resolve())}

    plain = vllm_backend.engine_kwargs("smolvlm2", weights="w", lora=None, max_frames=6)
    assert "enable_lora" not in plain and "max_model_len" not in plain
    assert plain["limit_mm_per_prompt"] == {"image": 6}
    assert plain["mm_processor_kwargs"] == {"do_image_splitting": False}


def test_lora_rank_rounds_up_to_what_vllm_accepts_and_names_the_file_when_it_cannot(tmp_path):
    def folder(name: str, **config) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps(config))
        return tmp_path / name

    assert vllm_backend.lora_rank(folder("a", r=16)) == 16
    assert vllm_backend.lora_rank(folder("b", r=8, rank_pattern={"q_proj": 24})) == 32
    with pytest.raises(ValueError, match=r"c/adapter_config.json: LoRA rank 1024 is above"):
        vllm_backend.lora_rank(folder("c", r=1024))
    with pytest.raises(ValueError, match=r"d/adapter_config.json: no 'r'"):
        vllm_backend.lora_rank(folder("d"))


def test_sampling_is_greedy_unless_asked_and_decodes_as_the_hf_backend():
    greedy = vllm_backend.sampling_args({"max_new_tokens": 64, "do_sample": False})
    assert greedy == {"max_tokens": 64, "temperature": 0.0, "skip_special_tokens": True,
                      "spaces_between_special_tokens": False}
    sampled = vllm_backend.sampling_args({"max_new_tokens": 9, "do_sample": True, "temperature": 0.7, "top_p": 0.9})
    assert (sampled["max_tokens"], sampled["temperature"], sampled["top_p"]) == (9, 0.7, 0.9)
    assert "top_k" not in sampled


def test_engine_args_are_parsed_and_a_bad_one_is_named():
    args = {"tensor_parallel_size": "2", "gpu_memory_utilization": "0.8", "max_model_len": "", "chunk_size": "64",
            "enforce_eager": "true", "max_frames": "8"}
    assert vllm_backend.take_engine_args(args) == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.8,
                                                   "chunk_size": 64, "enforce_eager": True}
    assert args == {"max_frames": "8"}  # the rest is left for the adapter
    with pytest.raises(ValueError, match="--model_args max_model_len='lots'"):
        vllm_backend.take_engine_args({"max_model_len": "lots"})


def test_each_data_parallel_rank_gets_its_own_gpus():
    gpus = ["0", "1", "2", "3"]
    assert [vllm_backend.rank_devices(r, 1, gpus) for r in range(4)] == [["0"], ["1"], ["2"], ["3"]]
    assert vllm_backend.rank_devices(1, 2, gpus) == ["2", "3"]
    with pytest.raises(ValueError, match="rank 2 with tensor_parallel_size=2 needs GPUs 4..5, but 4 are visible"):
        vllm_backend.rank_devices(2, 2, gpus)


def test_backend_is_hf_by_default_and_a_wrong_one_or_a_vllm_only_arg_is_refused(tiny_qwen):
    assert Qwen3VL(pretrained=str(tiny_qwen)).backend == "hf"
    with pytest.raises(ValueError, match="backend='tgi'; use hf .* or vllm"):
        Qwen3VL(pretrained=str(tiny_qwen), backend="tgi")
    with pytest.raises(ValueError, match=r"unknown --model_args \['tensor_parallel_size'\]"):
        Qwen3VL(pretrained=str(tiny_qwen), tensor_parallel_size="2")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_backend_vllm_without_vllm_says_how_to_install_it(tiny_qwen):
    with pytest.raises(ImportError, match=r"backend=vllm needs vLLM: pip install 'egotask\[vllm\]'"):
        Qwen3VL(pretrained=str(tiny_qwen), backend="vllm")


def test_hf_only_arguments_are_refused_with_backend_vllm_before_any_engine_starts(tiny_qwen):
    with pytest.raises(ValueError, match="merge=true is for backend=hf"):
        Qwen3VL(pretrained=str(tiny_qwen), backend="vllm", merge="true")
    with pytest.raises(ValueError, match="device_map is for backend=hf"):
        Qwen3VL(pretrained=str(tiny_qwen), backend="vllm", device_map="auto")


# --------------------------------------------------------------------------- scheduling

class RecordingLLM:
    """Stands in for ``vllm.LLM`` (an engine that needs a GPU): records each ``generate`` call and
    replies with the prompt's question; refuses prompts that contain ``REJECT`` as vLLM refuses an
    input (a ValueError for the whole call)."""

    def __init__(self):
        self.calls: list[int] = []

    def generate(self, requests, params, lora_request=None, use_tqdm=True):
        from types import SimpleNamespace

        self.calls.append(len(requests))
        if any("REJECT" in r["prompt"] for r in requests):
            raise ValueError("prompt too long")
        return [SimpleNamespace(outputs=[SimpleNamespace(text=r["prompt"].split("<|vision_end|>")[1][:20])])
                for r in requests]


def engine_for(adapter, chunk_size: int) -> vllm_backend.VLLMEngine:
    engine = object.__new__(vllm_backend.VLLMEngine)  # everything but the vLLM engine it would start
    engine.adapter, engine.chunk_size, engine.lora_request = adapter, chunk_size, None
    engine.sampling_params, engine.llm = dict, RecordingLLM()
    return engine


def test_a_ranks_requests_go_to_vllm_in_chunks_and_come_back_paired_with_their_items(tiny_qwen, docs):
    model = Qwen3VL(pretrained=str(tiny_qwen), max_frames=2)
    engine = engine_for(model, chunk_size=3)
    prompts = [prompt_for(docs[i % len(docs)], max_frames=2) for i in range(7)]
    failed = GenerationFailure("frames could not be read")
    items = [(f"item{i}", failed if i == 2 else p) for i, p in enumerate(prompts)]
    prompts[4].text = "REJECT " + prompts[4].text

    replies = dict(engine.answer(iter(items)))
    assert set(replies) == {f"item{i}" for i in range(7)}
    assert replies["item2"] is failed  # passed through, never sent
    assert isinstance(replies["item4"], GenerationFailure) and "prompt too long" in str(replies["item4"])
    for i in (0, 1, 3, 5, 6):
        assert replies[f"item{i}"] == prompts[i].text[:20]
    # Chunks of 3 sendable items ([0, 1, 3], [4, 5, 6]); the rejected chunk is retried one by one.
    assert engine.llm.calls == [3, 3, 1, 1, 1]


def test_fewer_requests_than_a_chunk_go_in_one_call(tiny_qwen, docs):
    engine = engine_for(Qwen3VL(pretrained=str(tiny_qwen), max_frames=2), chunk_size=256)
    items = [(i, prompt_for(docs[i], max_frames=2)) for i in range(4)]
    assert [k for k, _ in engine.answer(iter(items))] == [0, 1, 2, 3]
    assert engine.llm.calls == [4]


def test_a_vllm_output_gives_its_token_counts_and_the_timing_of_its_generate_call(tiny_qwen, docs):
    from types import SimpleNamespace

    # RequestOutput's fields as vLLM fills them: the prompt's ids (frames' tokens included), and each
    # completion's generated ids (its end-of-sequence token included).
    output = SimpleNamespace(prompt_token_ids=list(range(812)),
                             outputs=[SimpleNamespace(text="grey", token_ids=[31, 32, 2])])
    reply = vllm_backend.reply_of(output, 1_700_000_000.0, 0.75)
    assert reply == "grey"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.started, reply.latency_s) == (812, 3, 1.7e9, 0.75)
    # Through the engine, every reply of one generate call is timed by that call.
    engine = engine_for(Qwen3VL(pretrained=str(tiny_qwen), max_frames=2), chunk_size=256)
    replies = [r for _, r in engine.answer(iter([(i, prompt_for(docs[i], max_frames=2)) for i in range(3)]))]
    assert len({(r.started, r.latency_s) for r in replies}) == 1 and replies[0].latency_s >= 0


# --------------------------------------------------------------------------- with a running vLLM

def require_vllm() -> None:
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'egotask[vllm]')")
    if not torch.cuda.is_available():
        pytest.skip(vllm_backend.NO_CUDA)


@pytest.mark.parametrize("family", ["qwen3vl", "smolvlm2"])
def test_vllms_own_renderer_makes_the_hf_prompt_tokens_of_a_request(family, tiny_qwen, tiny_smolvlm, docs):
    """vLLM's input processing (no engine, no weights): the request becomes the HF path's tokens,
    frame times included."""
    require_vllm()
    renderers = pytest.importorskip("vllm.renderers", reason="this vLLM has no renderer API")
    from vllm.engine.arg_utils import EngineArgs
    from vllm.renderers.inputs.preprocess import parse_model_prompt

    cls, path = (Qwen3VL, tiny_qwen) if family == "qwen3vl" else (SmolVLM2, tiny_smolvlm)
    model = cls(pretrained=str(path))
    prompt = prompt_for(docs[0])
    request = vllm_backend.build_request(family, model.processor, model.prompt_text(prompt), prompt.videos)
    kwargs = vllm_backend.engine_kwargs(family, weights=str(path), lora=None, max_frames=4, max_model_len=4096)
    config = EngineArgs(**kwargs, mm_processor_cache_gb=0).create_engine_config()
    renderer = renderers.renderer_from_config(config)
    (rendered,) = renderer.render_cmpl([parse_model_prompt(config.model_config, request)],
                                       renderer.default_cmpl_tok_params)
    assert rendered["prompt_token_ids"] == model.inputs([prompt])["input_ids"][0].tolist()


ENGINE = {"backend": "vllm", "max_model_len": "4096", "gpu_memory_utilization": "0.3", "enforce_eager": "true"}


@pytest.mark.slow
def test_vllm_backend_answers_through_generate_until(tiny_qwen, docs):
    require_vllm()
    model = Qwen3VL(pretrained=str(tiny_qwen), max_frames=4, **ENGINE)
    model.task_dict = {TASK: {SPLIT: docs}}
    answers = model.generate_until(requests_for(docs, 4, max_new_tokens=8))
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)
    assert model.stats["generated"] == 4 and model.stats["failed"] == 0


@pytest.mark.slow
def test_vllm_thinking_reply_is_split_like_the_hf_backend(tiny_thinking_qwen, docs):
    require_vllm()
    model = Qwen3VL(pretrained=str(tiny_thinking_qwen), max_frames=4, **ENGINE)
    assert model.thinking
    model.task_dict = {TASK: {SPLIT: docs}}
    (answer,) = model.generate_until(requests_for(docs, 1, max_new_tokens=16))
    assert answer == split_reasoning(THINKING_REPLY, True)


@pytest.mark.slow
def test_vllm_smolvlm2_answers(tiny_smolvlm, docs):
    require_vllm()
    model = SmolVLM2(pretrained=str(tiny_smolvlm), max_frames=3, **ENGINE)
    model.task_dict = {TASK: {SPLIT: docs}}
    answers = model.generate_until(requests_for(docs, 2, max_new_tokens=6))
    assert len(answers) == 2 and model.stats["failed"] == 0


def test_video_inputs_and_vllm_metadata_share_one_definition(docs):
    video = prompt_for(docs[0]).videos[0]
    (hf_meta,) = video_inputs([video])["video_metadata"]
    meta = vllm_backend.metadata_dict(video)
    assert {k: hf_meta[k] for k in ("fps", "frames_indices", "duration", "total_num_frames")} == \
        {k: meta[k] for k in ("fps", "frames_indices", "duration", "total_num_frames")}
