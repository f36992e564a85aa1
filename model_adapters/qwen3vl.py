"""Qwen3-VL (2B/4B, Instruct and Thinking; full finetunes and LoRA adapters) for lmms-eval."""

from __future__ import annotations

from egotask.model_adapters.base import VideoQAModel


class Qwen3VL(VideoQAModel):
    family = "qwen3vl"
    default_max_new_tokens = 128
    thinking_max_new_tokens = 2048
