"""The transformers adapters on tiny random-weight checkpoints, through lmms-eval's request type:
plain, Thinking, full finetune, peft LoRA (as is, with base=, merged), SmolVLM2, and batching."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import THINKING_REPLY
from lmms_eval.api.instance import Instance

from egotask.model_adapters.base import VideoQAModel
from egotask.model_adapters.qwen3vl import Qwen3VL
from egotask.model_adapters.smolvlm2 import SmolVLM2
from egotask.tasklib import doc_to_text, doc_to_visual, make_process_docs

TASK, SPLIT = "egotextvqa_indoor", "test"


@pytest.fixture
def docs(sample_env):
    return make_process_docs("egotextvqa_indoor")(None)


def ask(model: VideoQAModel, docs, n: int = 4, **gen_kwargs) -> list[str]:
    """Answer the first ``n`` docs through ``generate_until``, as lmms-eval would call it."""
    model.task_dict = {TASK: {SPLIT: docs}}
    requests = [Instance("generate_until", (doc_to_text(docs[i]),
                                            {"until": ["\n\n"], **gen_kwargs}, doc_to_visual, i, TASK, SPLIT),
                         idx=0, metadata={"task": TASK, "doc_id": i, "repeats": 1}) for i in range(n)]
    return model.generate_until(requests)


def assert_no_prompt(answers: list[str], docs) -> None:
    for answer, doc in zip(answers, docs, strict=False):
        assert doc["question"] not in answer
        for echo in ("Answer briefly", "User:", "Assistant:", "assistant\n", "frames from a", "<|im_start|>"):
            assert echo not in answer


@pytest.fixture(scope="module")
def qwen_lora(tiny_qwen, tmp_path_factory) -> Path:
    """A LoRA adapter made with peft on the tiny Qwen3-VL, saved without the processor (as peft does)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_qwen)
    torch.manual_seed(1)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    out = tmp_path_factory.mktemp("qwen-lora")
    peft_model.save_pretrained(out)
    return out


def test_qwen3vl_answers_with_only_the_continuation(tiny_qwen, docs):
    model = Qwen3VL(pretrained=str(tiny_qwen), max_frames=2)
    assert not model.thinking
    answers = ask(model, docs)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)
    assert_no_prompt(answers, docs)


def test_max_new_tokens_default_by_family_and_thinking_and_gen_kwargs_win(tiny_qwen, tiny_thinking_qwen,
                                                                          tiny_smolvlm):
    plain, thinking = Qwen3VL(pretrained=str(tiny_qwen)), Qwen3VL(pretrained=str(tiny_thinking_qwen))
    smol = SmolVLM2(pretrained=str(tiny_smolvlm))
    assert plain.generation_kwargs({})["max_new_tokens"] == Qwen3VL.default_max_new_tokens == 128
    assert thinking.generation_kwargs({})["max_new_tokens"] == Qwen3VL.thinking_max_new_tokens == 2048
    assert smol.generation_kwargs({})["max_new_tokens"] == SmolVLM2.default_max_new_tokens == 64
    assert thinking.generation_kwargs({"max_new_tokens": "7"})["max_new_tokens"] == 7
    assert plain.generation_kwargs({"temperature": 0})["do_sample"] is False  # greedy by default
    sampled = plain.generation_kwargs({"do_sample": "true", "temperature": 0.7, "top_p": 0.9})
    assert sampled == {"max_new_tokens": 128, "do_sample": True, "temperature": 0.7, "top_p": 0.9}


def test_thinking_checkpoint_is_detected_and_its_reply_normalised_for_reasoning_tags(tiny_thinking_qwen, docs):
    model = Qwen3VL(pretrained=str(tiny_thinking_qwen), max_frames=2)
    assert model.thinking  # its chat template pre-fills <think>
    reasoning, answer = THINKING_REPLY.split("</think>")
    assert ask(model, docs, n=2) == [f"<think>{reasoning}</think>{answer}"] * 2
    # Out of tokens inside the reasoning: the block stays unclosed, so it is never taken as an answer.
    (cut,) = ask(model, docs, n=1, max_new_tokens=2)
    assert cut.startswith("<think>") and "</think>" not in cut


def test_thinking_can_be_switched_off_explicitly(tiny_thinking_qwen, docs):
    model = Qwen3VL(pretrained=str(tiny_thinking_qwen), thinking="false", max_frames=2)
    assert not model.thinking and ask(model, docs, n=1) == [THINKING_REPLY]


def test_full_finetune_loads_as_its_own_checkpoint(tiny_qwen, tmp_path, docs):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    tuned = AutoModelForImageTextToText.from_pretrained(tiny_qwen)
    with torch.no_grad():
        tuned.lm_head.weight.add_(0.5)
    tuned.save_pretrained(tmp_path / "ft")
    AutoProcessor.from_pretrained(tiny_qwen).save_pretrained(tmp_path / "ft")
    model = Qwen3VL(pretrained=str(tmp_path / "ft"), max_frames=2)
    assert torch.allclose(model.model.lm_head.weight, tuned.lm_head.weight)
    assert_no_prompt(ask(model, docs, n=2), docs)


def test_peft_lora_folder_loads_its_base_from_adapter_config(qwen_lora, tiny_qwen, docs):
    from peft import PeftModel

    assert json.loads((qwen_lora / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_qwen)
    model = Qwen3VL(pretrained=str(qwen_lora), max_frames=2)
    assert isinstance(model.model, PeftModel)
    assert_no_prompt(ask(model, docs, n=2), docs)


def test_lora_without_base_in_its_config_needs_base_and_says_so(qwen_lora, tiny_qwen, tmp_path):
    bare = shutil.copytree(qwen_lora, tmp_path / "bare")
    config = json.loads((bare / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = None
    (bare / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"adapter_config.json: no base_model_name_or_path; pass base="):
        Qwen3VL(pretrained=str(bare))
    assert Qwen3VL(pretrained=str(bare), base=str(tiny_qwen)).model is not None


def test_merged_lora_answers_like_the_unmerged_adapter(qwen_lora, docs):
    from peft import PeftModel

    merged = Qwen3VL(pretrained=str(qwen_lora), merge="true", max_frames=2)
    assert not isinstance(merged.model, PeftModel)
    unmerged = Qwen3VL(pretrained=str(qwen_lora), max_frames=2)
    assert ask(merged, docs, n=2, max_new_tokens=8) == ask(unmerged, docs, n=2, max_new_tokens=8)


def test_smolvlm2_answers_without_echoing_the_chat_prompt(tiny_smolvlm, docs):
    model = SmolVLM2(pretrained=str(tiny_smolvlm), max_frames=3)
    answers = ask(model, docs, n=2, max_new_tokens=12)
    assert any(a.strip() for a in answers)  # random weights still write something
    assert_no_prompt(answers, docs)


def test_smolvlm2_is_told_the_real_frame_times_of_the_visible_interval(tiny_smolvlm, docs):
    from egotask.frames import sample_visual
    from egotask.model_adapters.base import VideoPrompt

    model = SmolVLM2(pretrained=str(tiny_smolvlm))
    (visual,) = doc_to_visual(docs[0])
    video = sample_visual(visual, max_frames=4)  # from [0, 3.5): about 0.4, 1.3, 2.2 and 3.1 s
    prompt = model.processor.decode(model.inputs([VideoPrompt("q", [video], {})])["input_ids"][0])
    # The visible 3.5 s, not the 5 s file; 24 fps would have been assumed without the metadata.
    assert "series of four frames from a 0:00:03 [H:MM:SS] video" in prompt
    assert [f"Frame from 00:0{s}:" in prompt for s in (0, 1, 2, 3)] == [True] * 4


def test_smolvlm2_lora_folder_loads_through_pretrained(tiny_smolvlm, tmp_path, docs):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_smolvlm)
    get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
                   ).save_pretrained(tmp_path / "lora")
    model = SmolVLM2(pretrained=str(tmp_path / "lora"), max_frames=2)
    assert isinstance(model.model, PeftModel)
    assert_no_prompt(ask(model, docs, n=1, max_new_tokens=6), docs)


@pytest.mark.parametrize("family", ["qwen3vl", "smolvlm2"])
def test_batched_generation_left_pads_and_matches_one_at_a_time(family, tiny_qwen, tiny_smolvlm, docs):
    cls, path = (Qwen3VL, tiny_qwen) if family == "qwen3vl" else (SmolVLM2, tiny_smolvlm)
    # Questions of different lengths, so the batch really is padded.
    assert len({len(q) for q in docs["question"][:3]}) > 1
    one = ask(cls(pretrained=str(path), max_frames=2), docs, n=3, max_new_tokens=8)
    batched_model = cls(pretrained=str(path), max_frames=2, batch_size=3)
    assert batched_model.processor.tokenizer.padding_side == "left"
    assert ask(batched_model, docs, n=3, max_new_tokens=8) == one


def test_unknown_model_arg_names_the_known_ones(tiny_qwen):
    with pytest.raises(ValueError, match=r"unknown --model_args \['max_frame'\].*pretrained.*max_frames"):
        Qwen3VL(pretrained=str(tiny_qwen), max_frame=4)


def test_the_declared_model_args_are_the_adapters_init_keywords():
    """`egotask plugins` and the early --model_args check read the declarations, without importing the
    classes; they must name what the classes take."""
    from egotask.model_adapters.base import _known_args
    from egotask.model_adapters.vllm_backend import ENGINE_ARGS
    from egotask.plugins import model_adapters

    adapters = model_adapters()
    assert adapters["qwen3vl"].model_args == tuple(_known_args(Qwen3VL)) + tuple(ENGINE_ARGS)
    assert adapters["smolvlm2"].model_args == tuple(_known_args(SmolVLM2)) + tuple(ENGINE_ARGS)
    from egotask_ocr.model import OCRBaseline

    assert adapters["ocr_baseline"].model_args == tuple(_known_args(OCRBaseline))
    from egotask.model_adapters.gemini_vlm import GeminiVLM
    from egotask.model_adapters.openai_vlm import OpenAIVLM

    assert adapters["openai_vlm"].model_args == tuple(_known_args(OpenAIVLM))
    assert adapters["gemini_vlm"].model_args == tuple(_known_args(GeminiVLM))


def test_a_missing_pretrained_says_what_to_pass_with_an_example():
    with pytest.raises(ValueError, match=r"--model smolvlm2 needs pretrained= in --model_args, for example "
                                         r"--model_args pretrained=HuggingFaceTB/SmolVLM2-500M-Video-Instruct"):
        SmolVLM2()
    with pytest.raises(ValueError, match="pretrained=Qwen/Qwen3-VL-2B-Instruct"):
        Qwen3VL(max_frames=2)


def transformers_warnings(run) -> list[str]:
    """What transformers logs while ``run()`` runs (its logger does not propagate, so caplog sees nothing)."""
    import logging

    from transformers.utils import logging as hf_logging

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    hf_logging.warning_once.cache_clear()  # each notice is logged once per process: let it show again
    logging.getLogger("transformers").addHandler(handler)
    try:
        run()
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    return seen


def test_qwen3vl_video_frames_get_the_reference_pixel_cap_without_the_notice(tiny_qwen, tiny_smolvlm, docs):
    """transformers' notice that Qwen3-VL video frames are not capped per frame is acted on: the cap is on,
    and the notice does not come."""
    model = Qwen3VL(pretrained=str(tiny_qwen), max_frames=2)
    model.answers.mode = "off"  # each ask generates, rather than taking the last answer from the cache
    assert model.processor.video_processor.cap_pixels_per_frame is True
    assert not [m for m in transformers_warnings(lambda: ask(model, docs, n=1)) if "per-frame pixel cap" in m]
    model.processor.video_processor.cap_pixels_per_frame = None  # as transformers loads it
    assert [m for m in transformers_warnings(lambda: ask(model, docs, n=1)) if "per-frame pixel cap" in m]
    smol = SmolVLM2(pretrained=str(tiny_smolvlm))  # a processor without the setting is left as it is
    assert getattr(smol.processor.video_processor, "cap_pixels_per_frame", None) is None


def test_an_edited_chat_template_misses_the_answer_cache(tiny_qwen, tmp_path, docs):
    from egotask.answers import AnswerStore

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_qwen, checkpoint)
    ask(Qwen3VL(pretrained=str(checkpoint), max_frames=2), docs, n=2)
    ask(Qwen3VL(pretrained=str(checkpoint), max_frames=2), docs, n=2)
    assert len(AnswerStore()) == 2  # the same checkpoint: answers reused
    template = checkpoint / "chat_template.jinja"
    template.write_text(template.read_text() + "{# edited #}")
    ask(Qwen3VL(pretrained=str(checkpoint), max_frames=2), docs, n=2)
    assert len(AnswerStore()) == 4  # asked again, under new keys
    (checkpoint / "README.md").write_text("# notes\n")  # documentation changes no answer
    ask(Qwen3VL(pretrained=str(checkpoint), max_frames=2), docs, n=2)
    assert len(AnswerStore()) == 4


def test_a_video_rewritten_with_the_same_size_and_mtime_is_a_new_cache_key(tmp_path):
    import os

    from time_coded import write_time_coded_clip

    from egotask.answers import file_identity

    clip = write_time_coded_clip(tmp_path / "clip.mp4")
    before, stat = file_identity(clip), clip.stat()
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(255 - b for b in data[middle:middle + 64])
    clip.write_bytes(bytes(data))
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = clip.stat()
    assert (after.st_size, after.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert file_identity(clip) != before
