"""Registers the served models under test (``openai_vlm``, ``gemini_vlm``). Cheap to import: the
classes, and openai / google-genai / torch with them, load only when one of these models runs."""

from __future__ import annotations

from egotask.hookspecs import ModelAdapter, hookimpl

PACKAGE = "egotask.model_adapters"
# ServedModel's keywords and FramesModel's, after each class's own (tests/test_model_adapters.py
# checks them against the classes' __init__).
SERVED_ARGS = ("concurrency", "timeout", "max_attempts", "backoff", "retry_after_cap", "give_up_after", "jpeg_quality",
               "max_new_tokens", "frame_workers", "device", "batch_size", "max_frames", "fps", "max_pixels", "frames",
               "force_frames", "frame_memory")


@hookimpl
def egotask_model_adapters() -> list[ModelAdapter]:
    return [
        ModelAdapter("openai_vlm", f"{PACKAGE}.openai_vlm.OpenAIVLM",
                     "any OpenAI-compatible chat endpoint (vllm serve, SGLang, OpenAI): frames as one video or "
                     "timestamped images, concurrent requests", reads_intervals=True,
                     model_args=("model", "base_url", "frames_as", "video_metadata", "image_detail") + SERVED_ARGS,
                     required=("model",), example="base_url=http://localhost:8000/v1,model=Qwen/Qwen3-VL-4B-Instruct"),
        ModelAdapter("gemini_vlm", f"{PACKAGE}.gemini_vlm.GeminiVLM",
                     "Gemini through google-genai: timestamped inline frames, concurrent requests",
                     reads_intervals=True, model_args=("model", "thinking_budget") + SERVED_ARGS,
                     example="model=gemini-2.5-flash,max_frames=32"),
    ]
