"""Batches for training: the evaluation prompt (chat template + video frames, processed exactly as
the adapters do for generation) followed by the answer, with the loss on the answer tokens only.

The prompt goes through the processor as-is, so its tokens (video placeholders expanded) are the
ones the model sees at evaluation. The answer is tokenized on its own and appended; every prompt
and visual position gets label -100. This works for any ``AutoProcessor`` with a chat template
(Qwen3-VL, SmolVLM2).
"""

from __future__ import annotations

from typing import Any

import torch

from egotask.finetune.data import Example
from egotask.model_adapters.base import chat_messages, video_inputs

IGNORE_INDEX = -100


class AnswerOnlyCollator:
    """Turns :class:`Example` s into model inputs plus ``labels`` that cover only the answer."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id

    def prompt(self, text: str) -> str:
        return self.processor.apply_chat_template(chat_messages(text), tokenize=False, add_generation_prompt=True)

    def answer_suffix(self, text: str, answer: str) -> str:
        """What the template renders after the generation prompt for this answer: the answer and the
        end-of-turn marker (e.g. ``ANSWER<|im_end|>`` for Qwen, `` ANSWER<end_of_utterance>`` for SmolVLM)."""
        prompt = self.prompt(text)
        full = self.processor.apply_chat_template(
            chat_messages(text) + [{"role": "assistant", "content": [{"type": "text", "text": answer}]}],
            tokenize=False)
        if full.startswith(prompt) and answer in full[len(prompt):]:
            return full[len(prompt):].rstrip()
        # Templates that rewrite the assistant turn (e.g. strip reasoning) do not extend the prompt.
        return answer + (self.tokenizer.eos_token or "")

    def visual_inputs(self, examples: list[Example]) -> dict[str, Any]:
        return video_inputs([e.frames for e in examples])  # exactly what the adapters pass at evaluation

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        prompts = [self.prompt(e.text) for e in examples]
        inputs = self.processor(text=prompts, padding=True, return_tensors="pt", **self.visual_inputs(examples))
        mask = inputs["attention_mask"].bool()
        per_token = [k for k, v in inputs.items()
                     if isinstance(v, torch.Tensor) and v.shape[:2] == mask.shape and k != "attention_mask"]
        rows: list[dict[str, torch.Tensor]] = []
        for i, example in enumerate(examples):
            answer_ids = self.tokenizer(self.answer_suffix(example.text, example.answer),
                                        add_special_tokens=False, return_tensors="pt")["input_ids"][0]
            if answer_ids.numel() == 0:
                raise ValueError(f"empty answer for {example.benchmark} video {example.video_id}")
            n = int(answer_ids.numel())
            row = {}
            for key in per_token:
                prompt_part = inputs[key][i][mask[i]]
                tail = answer_ids if key == "input_ids" else torch.zeros(n, dtype=prompt_part.dtype)
                row[key] = torch.cat([prompt_part, tail])
            prompt_len = int(mask[i].sum())
            row["labels"] = torch.cat([torch.full((prompt_len,), IGNORE_INDEX), answer_ids])
            rows.append(row)
        # Right padding: the prompts keep the positions the model computes for them at evaluation.
        length = max(len(r["labels"]) for r in rows)
        batch: dict[str, torch.Tensor] = {}
        for key in [*per_token, "labels"]:
            fill = {"input_ids": self.pad_id, "labels": IGNORE_INDEX}.get(key, 0)
            batch[key] = torch.stack([torch.nn.functional.pad(r[key], (0, length - len(r[key])), value=fill)
                                      for r in rows])
        batch["attention_mask"] = torch.stack([
            torch.nn.functional.pad(torch.ones(len(r["labels"]), dtype=torch.long), (0, length - len(r["labels"])))
            for r in rows])
        for key, value in inputs.items():  # visual tensors (pixel values, grids) do not depend on padding
            if key not in batch and key != "attention_mask":
                batch[key] = value
        return batch
