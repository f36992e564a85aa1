"""Qwen3-VL (2B/4B, Instruct and Thinking; full finetunes and LoRA adapters) for lmms-eval."""

from __future__ import annotations

from egotask.hookspecs import ModelAdapter, hookimpl
from egotask.model_adapters.base import VideoQAModel


class Qwen3VL(VideoQAModel):
    family = "qwen3vl"
    default_max_new_tokens = 128
    thinking_max_new_tokens = 2048


@hookimpl
def egotask_model_adapters() -> list[ModelAdapter]:
    return [ModelAdapter("qwen3vl", f"{__name__}.Qwen3VL",
                         "Qwen3-VL Instruct/Thinking, full finetunes and LoRA adapters (transformers)",
                         aliases=("qwen3-vl",), reads_intervals=True)]
