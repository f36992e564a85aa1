"""Each model adapter through the real `lmms_eval` entry, `--limit 4`, on the generated clips:
SmolVLM2, a peft LoRA folder, a Thinking checkpoint (judge sees only the answer) and the OCR plugin."""

from __future__ import annotations

import pytest
from conftest import THINKING_REPLY

from egotask.fixtures import INDOOR_SAMPLE, build_tiny_smolvlm2, script_reply
from egotask.judges import JudgeItem
from egotask.judges.heuristic import heuristic_verdict

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


SMOLVLM_REPLY = "kornflake"  # the first indoor sample's answer, lower case: its tokens are in the tiny vocabulary


@pytest.fixture(scope="module")
def replying_smolvlm(tmp_path_factory):
    """A tiny SmolVLM2 whose weights make greedy decoding answer SMOLVLM_REPLY to any question."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = build_tiny_smolvlm2(tmp_path_factory.mktemp("tiny-smolvlm2-replying"))
    model, processor = AutoModelForImageTextToText.from_pretrained(folder), AutoProcessor.from_pretrained(folder)
    tokenizer = processor.tokenizer
    # The generation prompt ends with "Assistant:"; the reply follows its last token.
    last = tokenizer.encode("Assistant:")[-1]
    script_reply(model, model.model.text_model, [last, *tokenizer.encode(SMOLVLM_REPLY), tokenizer.eos_token_id])
    model.save_pretrained(folder)
    return folder


def test_smolvlm2_answers_are_judged_and_scored_end_to_end(sample_env, replying_smolvlm, tmp_path, lmms_eval):
    run, samples = run_indoor(lmms_eval, sample_env, tmp_path / "out", "smolvlm2",
                              f"pretrained={replying_smolvlm},max_frames=2", "--gen_kwargs", "max_new_tokens=8")
    assert [s["details"]["prediction"] for s in samples] == [SMOLVLM_REPLY] * 4
    metrics = run.results["results"]["egotextvqa_indoor"]
    details = metrics["details,none"]
    assert (details["n"], details["n_judged"], details["n_failed"]) == (4, 4, 0)
    assert metrics["accuracy,none"] == 0.25  # right only about the cereal box
    expected = [heuristic_verdict(JudgeItem(qa.question, qa.answer, SMOLVLM_REPLY, qa.question_type))
                for qa in INDOOR_SAMPLE]
    assert metrics["score,none"] == pytest.approx(sum(v.score for v in expected) / 4)
    assert {s["details"]["answer"]: s["details"]["verdict"]["pred"] for s in samples} == {
        qa.answer: v.pred for qa, v in zip(INDOOR_SAMPLE, expected, strict=True)}


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
