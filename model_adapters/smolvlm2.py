"""SmolVLM2 (e.g. SmolVLM2-500M-Video-Instruct; full finetunes and LoRA adapters) for lmms-eval."""

from __future__ import annotations

from typing import TYPE_CHECKING

from egotask.hookspecs import ModelAdapter, hookimpl
from egotask.model_adapters.base import VideoPrompt, VideoQAModel

if TYPE_CHECKING:
    from transformers import BatchFeature


class SmolVLM2(VideoQAModel):
    family = "smolvlm2"
    default_max_new_tokens = 64  # short answers; SmolVLM2 has no Thinking variant

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
                # The processor writes "Frame from MM:SS" before each frame from these times, and the
                # clip length from `duration`: the end of what the model may see, not of the file.
                metadata.append(VideoMetadata(total_num_frames=len(video.frames), fps=video.fps,
                                              frames_indices=video.frame_indices(), duration=video.end))
        inputs = self.processor(text=texts, videos=videos or None, video_metadata=metadata or None,
                                do_sample_frames=False, padding=True, return_tensors="pt").to(self.model.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs


@hookimpl
def egotask_model_adapters() -> list[ModelAdapter]:
    return [ModelAdapter("smolvlm2", f"{__name__}.SmolVLM2",
                         "SmolVLM2 video-instruct models, full finetunes and LoRA adapters (transformers)",
                         aliases=("smolvlm",))]
