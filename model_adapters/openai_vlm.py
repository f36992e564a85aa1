"""Any OpenAI-compatible chat endpoint as the model under test: ``vllm serve``, SGLang, OpenAI (GPT-4o)
and other compatible APIs.

``--model_args base_url=http://localhost:8000/v1,model=<served name>``; the key is the openai client's
own ``OPENAI_API_KEY`` (a local server without ``--api-key`` needs none). Frames come from the task's
visible interval, with their times:

- ``frames_as=video`` (default): one ``video_url`` part, a ``video/jpeg`` data URL of comma-separated
  base64 JPEGs, which vLLM reads as one video. The frames' times travel in the request's
  ``media_io_kwargs`` (``fps``, ``frames_indices``, ``total_num_frames``, ``duration``): vLLM's
  ``video/jpeg`` loader turns them into the video's metadata, so Qwen3-VL sees the real times, not an
  assumed fps; ``num_frames`` says how many JPEGs to keep (otherwise 32). ``video_metadata=false``
  leaves them out, for servers that refuse unknown fields. No ``max_frames`` goes to the server's
  processor: the frames are already sampled (a ``max_frames`` there is reported to fail with a 500,
  "timestamps length should be equal video length").
- ``frames_as=images``: each frame as an ``image_url`` part after a text part "Frame at 1.20 s:", for
  APIs without video input (OpenAI's). ``image_detail=low|high|auto`` sets OpenAI's ``detail``.

Scheduling, retries and failure accounting: :mod:`egotask.model_adapters.served`.
"""

from __future__ import annotations

import base64
from typing import Any

from egotask.model_adapters.base import parse_bool
from egotask.model_adapters.served import EncodedPrompt, ServedModel, frame_label, video_metadata
from egotask.vendors import openai_chat
from egotask.vendors.openai_chat import KEY_VAR
from egotask.vendors.retry import Answer, Failure

FRAMES_AS = ("video", "images")


class OpenAIVLM(ServedModel):
    family = "openai_vlm"
    backend = "openai"
    default_max_new_tokens = 1024

    def __init__(self, model: str | None = None, base_url: str | None = None, frames_as: str = "video",
                 video_metadata: bool | str = True, image_detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(model=model or "", **kwargs)
        self.base_url = base_url or None  # None: the openai client's default (OPENAI_BASE_URL, else OpenAI)
        if frames_as not in FRAMES_AS:
            raise ValueError(f"--model_args frames_as={frames_as!r}: expected one of {', '.join(FRAMES_AS)}")
        self.frames_as = frames_as
        self.video_metadata = parse_bool(video_metadata)
        if image_detail not in (None, "", "low", "high", "auto"):
            raise ValueError(f"--model_args image_detail={image_detail!r}: expected low, high or auto")
        self.image_detail = image_detail or None

    @property
    def where(self) -> str:
        return openai_chat.endpoint(self.base_url)

    # ----------------------------------------------------------------- the request

    def request(self, prompt: EncodedPrompt) -> dict[str, Any]:
        """The JSON body of one prompt's chat-completions request (a pure function)."""
        content: list[dict[str, Any]] = []
        for video, jpegs in zip(prompt.videos, prompt.jpegs, strict=True):
            if self.frames_as == "video":
                frames = ",".join(base64.b64encode(j).decode("ascii") for j in jpegs)
                content.append({"type": "video_url", "video_url": {"url": f"data:video/jpeg;base64,{frames}"}})
                continue
            for time_s, jpeg in zip(video.timestamps, jpegs, strict=True):
                image: dict[str, Any] = {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")}
                if self.image_detail:
                    image["detail"] = self.image_detail
                content += [{"type": "text", "text": frame_label(time_s)}, {"type": "image_url", "image_url": image}]
        content.append({"type": "text", "text": prompt.text})
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}],
                                **self.sampling(prompt.gen_kwargs)}
        max_tokens = self.max_new_tokens(prompt.gen_kwargs)
        if max_tokens is not None:
            body["max_completion_tokens"] = max_tokens  # what OpenAI, vLLM and SGLang take (max_tokens is deprecated)
        # One set of video kwargs per request: with several videos their frame counts would differ.
        if self.frames_as == "video" and self.video_metadata and len(prompt.videos) == 1:
            body["media_io_kwargs"] = {"video": video_metadata(prompt.videos[0])}
        return body

    # ----------------------------------------------------------------- the client

    async def open_client(self) -> Any:
        return openai_chat.async_client(self.timeout, self.base_url)

    async def close_client(self, client: Any) -> None:
        await client.close()

    async def send(self, client: Any, prompt: EncodedPrompt) -> Answer:
        return await openai_chat.achat(client, self.request(prompt), self.where)

    def classify(self, exc: Exception) -> Failure:
        return openai_chat.classify(
            exc, where=self.where, timeout_message=self.timeout_message, prefix=f"{self.where}: ",
            key_hint=f"check {KEY_VAR}",
            hint=f"check base_url (it usually ends in /v1) and model={self.model} (the name the endpoint serves)")
