"""SmolVLM2 (e.g. SmolVLM2-500M-Video-Instruct; full finetunes and LoRA adapters) for lmms-eval."""

from __future__ import annotations

from egotask.model_adapters.base import VideoQAModel


class SmolVLM2(VideoQAModel):
    family = "smolvlm2"
    default_max_new_tokens = 64  # short answers; SmolVLM2 has no Thinking variant
