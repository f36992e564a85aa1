"""Qwen3-VL (2B/4B, Instruct and Thinking; full finetunes and LoRA adapters) for lmms-eval."""

from __future__ import annotations

from typing import TYPE_CHECKING

from egotask.hookspecs import ModelAdapter, hookimpl
from egotask.model_adapters.base import VideoPrompt, VideoQAModel

if TYPE_CHECKING:
    from transformers import BatchFeature


class Qwen3VL(VideoQAModel):
    family = "qwen3vl"
    default_max_new_tokens = 128
    thinking_max_new_tokens = 2048

    def inputs(self, batch: list[VideoPrompt]) -> BatchFeature:
        """The processor's tensors for a batch: chat prompts, frames and their real times."""
        from transformers.video_utils import VideoMetadata

        texts, videos, metadata = [], [], []
        for prompt in batch:
            content = [{"type": "video"} for _ in prompt.videos] + [{"type": "text", "text": prompt.text}]
            texts.append(self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                            tokenize=False, add_generation_prompt=True))
            for video in prompt.videos:
                videos.append(video.frames)
                # Pre-sampled frames: Qwen3-VL needs their real times, or it assumes 24 fps.
                metadata.append(VideoMetadata(total_num_frames=len(video.frames), fps=video.fps,
                                              frames_indices=video.frame_indices(),
                                              duration=video.duration))
        inputs = self.processor(text=texts, videos=videos or None,
                                video_metadata=metadata or None, do_sample_frames=False,
                                padding=True, return_tensors="pt").to(self.model.device)
        return inputs


@hookimpl
def egotask_model_adapters() -> list[ModelAdapter]:
    return [ModelAdapter("qwen3vl", f"{__name__}.Qwen3VL",
                         "Qwen3-VL Instruct/Thinking, full finetunes and LoRA adapters (transformers)",
                         aliases=("qwen3-vl",))]
