"""Each model adapter through the real `lmms_eval` entry, `--limit 4`, on the generated clips:
SmolVLM2, a peft LoRA folder, a Thinking checkpoint (judge sees only the answer) and the OCR plugin."""

from __future__ import annotations

import pytest
from conftest import THINKING_REPLY

pytestmark = pytest.mark.slow


def run_indoor(lmms_eval, env, out, model: str, model_args: str, *extra: str, limit: int = 4):
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", model, "--model_args", model_args,
                     "--limit", str(limit), *extra], env, out)
    assert run.returncode == 0, run.output
    samples = run.samples["egotextvqa_indoor"]
    assert len(samples) == limit
    for sample in samples:  # no adapter echoes the prompt or the chat roles
        prediction = sample["details"]["prediction"]
        assert sample["details"]["question"] not in prediction
        assert not any(echo in prediction for echo in ("Answer briefly", "User:", "Assistant:", "frames from"))
    return run, samples


def test_smolvlm2_runs_end_to_end(sample_env, tiny_smolvlm, tmp_path, lmms_eval):
    run, samples = run_indoor(lmms_eval, sample_env, tmp_path / "out", "smolvlm2",
                              f"pretrained={tiny_smolvlm},max_frames=2", "--gen_kwargs", "max_new_tokens=8")
    details = run.results["results"]["egotextvqa_indoor"]["details,none"]
    assert details["n_judged"] + details["n_failed"] == 4


def test_peft_lora_folder_runs_through_pretrained(sample_env, tiny_qwen, tmp_path, lmms_eval):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path / "lora")
    run_indoor(lmms_eval, sample_env, tmp_path / "out", "qwen3vl", f"pretrained={tmp_path / 'lora'},max_frames=2",
               "--gen_kwargs", "max_new_tokens=8")


def test_thinking_reply_reaches_the_judge_without_its_reasoning(sample_env, tiny_thinking_qwen, tmp_path,
                                                                 lmms_eval):
    _, samples = run_indoor(lmms_eval, sample_env, tmp_path / "out", "qwen3vl",
                            f"pretrained={tiny_thinking_qwen},max_frames=2", limit=2)
    reasoning, answer = THINKING_REPLY.split("</think>")
    first = next(s for s in samples if s["details"]["answer"] == "KORNFLAKE")
    assert first["details"]["prediction"] == answer  # what process_results, and so the judge, got
    assert first["details"]["verdict"]["pred"] == "yes"
    assert first["resps"] == f"<think>{reasoning}</think>{answer}"  # the samples keep the reasoning


def test_thinking_cut_off_before_its_answer_is_recorded_as_no_final_answer(sample_env, tiny_thinking_qwen,
                                                                           tmp_path, lmms_eval):
    _, samples = run_indoor(lmms_eval, sample_env, tmp_path / "out", "qwen3vl",
                            f"pretrained={tiny_thinking_qwen},max_frames=2", "--gen_kwargs", "max_new_tokens=2",
                            limit=2)
    for sample in samples:
        verdict = sample["details"]["verdict"]
        assert (verdict["pred"], verdict["score"]) == ("no", 0)
        assert verdict["reason"].startswith("no final answer")
        assert sample["details"]["prediction"].startswith("<think>")


def test_ocr_plugin_reads_the_scene_text_and_scores_well(sample_env, tmp_path, lmms_eval):
    run, samples = run_indoor(lmms_eval, sample_env, tmp_path / "out", "ocr_baseline",
                              "max_frames=2,min_side=320")
    assert run.results["results"]["egotextvqa_indoor"]["accuracy,none"] >= 0.75
    assert {s["details"]["prediction"] for s in samples} >= {"KORNFLAKE", "PAPRIKA"}
