"""Registers the served models under test (``openai_vlm``, ``gemini_vlm``). Cheap to import: the
classes, and openai / google-genai / torch with them, load only when one of these models runs."""

from __future__ import annotations

from egotask.hookspecs import ModelAdapter, hookimpl

PACKAGE = "egotask.model_adapters"


@hookimpl
def egotask_model_adapters() -> list[ModelAdapter]:
    return [
        ModelAdapter("openai_vlm", f"{PACKAGE}.openai_vlm.OpenAIVLM",
                     "any OpenAI-compatible chat endpoint (vllm serve, SGLang, OpenAI): frames as one video or "
                     "timestamped images, concurrent requests", reads_intervals=True),
        ModelAdapter("gemini_vlm", f"{PACKAGE}.gemini_vlm.GeminiVLM",
                     "Gemini through google-genai: timestamped inline frames, concurrent requests",
                     reads_intervals=True),
    ]
