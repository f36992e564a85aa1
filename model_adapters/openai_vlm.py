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
import json
import re
from typing import Any

from egotask.model_adapters.base import GenerationFailure, parse_bool
from egotask.model_adapters.served import (
    BadReply,
    EncodedPrompt,
    RequestError,
    ServedModel,
    frame_label,
    retry_after_of,
    status_error,
    video_metadata,
    with_usage,
)
from egotask.settings import vendor_value

KEY_VAR = "OPENAI_API_KEY"
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
        return self.base_url or vendor_value("OPENAI_BASE_URL") or "api.openai.com"

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
        from openai import AsyncOpenAI

        # The client reads OPENAI_API_KEY itself; a local server started without --api-key takes any key.
        return AsyncOpenAI(base_url=self.base_url, api_key=None if vendor_value(KEY_VAR) else "EMPTY",
                           timeout=self.timeout, max_retries=0)  # retries are ours (Retry-After, per item)

    async def close_client(self, client: Any) -> None:
        await client.close()

    async def send(self, client: Any, prompt: EncodedPrompt) -> str:
        import httpx

        # The client's plain POST (its documented way to send any body): the typed ``create`` first walks
        # the whole request, megabytes of base64 frames included, against its parameter types, which
        # cost the request loop half its CPU at 32 requests in flight. The body is plain JSON already,
        # and the reply is read here as it came (a proxy's HTML page is not a completion).
        response = await client.post("/chat/completions", body=self.request(prompt), cast_to=httpx.Response)
        return completion_text(self.where, response.status_code, response.headers.get("content-type", ""),
                               response.text)

    def classify(self, exc: Exception) -> RequestError:
        import openai

        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            body = exc.body if isinstance(exc.body, dict) else {}
            detail = body.get("message") or (body.get("error") or {}).get("message") if body else None
            message = f"{self.where}: HTTP {code}: {detail or exc.message}"
            hint = (f"check {KEY_VAR}" if code in (401, 403) else
                    f"check base_url (it usually ends in /v1) and model={self.model} (the name the endpoint serves)")
            return status_error(code, message, retry_after_of(exc.response.headers), hint)
        if isinstance(exc, openai.APITimeoutError):
            return RequestError("retry", f"{self.where}: no reply within {self.timeout:g} s (--model_args timeout)")
        if isinstance(exc, openai.APIConnectionError):
            return RequestError("retry", f"{self.where}: connection failed: {exc.__cause__ or exc}")
        return RequestError("item", f"{type(exc).__name__}: {exc}")


def completion_text(where: str, status: int, content_type: str, text: str) -> str:
    """The answer in a chat-completions reply body. Raises :class:`BadReply` for a body that is not a
    completion, and :class:`GenerationFailure` for a completion without an answer."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        shown = " ".join(text.split())[:160]
        if "html" in content_type.lower() or text.lstrip()[:1] == "<":
            title = re.search(r"<title[^>]*>(.*?)</title>", text, flags=re.IGNORECASE | re.DOTALL)
            page = " ".join(title.group(1).split()) if title else shown
            raise BadReply(RequestError("retry", f"{where}: HTTP {status} with an HTML page ({page!r}), not a "
                                                 "completion: a proxy or gateway answered, not the model "
                                                 "server")) from None
        raise BadReply(RequestError("retry", f"{where}: HTTP {status} with a reply that is not complete JSON "
                                             f"({exc}; {len(text)} bytes: {shown!r})")) from None
    if not isinstance(data, dict):
        raise BadReply(RequestError("item", f"{where}: HTTP {status} with a reply that is not a JSON object: "
                                            f"{text[:160]!r}"))
    error = data.get("error") if data.get("error") else (data if data.get("object") == "error" else None)
    if error is not None:
        detail = error.get("message") if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        message = f"{where}: HTTP {status} with an error: {detail or json.dumps(error)[:300]}"
        if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
            message += f" (code {code})"
            handling = status_error(int(code), message, None, "check base_url and model")
        else:
            handling = RequestError("retry", message)
        raise BadReply(handling)
    choices = data.get("choices")
    if not choices or not isinstance(choices[0], dict):
        raise GenerationFailure(f"{where}: the reply has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict)) or None
    refusal = message.get("refusal")
    if refusal:
        raise GenerationFailure(f"{where}: no answer: the model refused ({refusal})")
    if choice.get("finish_reason") == "content_filter" and not content:
        raise GenerationFailure(f"{where}: no answer: stopped by the endpoint's content filter")
    # A reasoning parser on the server (vllm serve --reasoning-parser) returns the reasoning apart;
    # it goes back into the reply as <think>...</think> for the tasks' reasoning_tags.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    if reasoning:
        # No answer after the reasoning (cut off): left unclosed, so it is recorded as "no final answer".
        content = f"<think>{reasoning}</think>{content}" if content and content.strip() else f"<think>{reasoning}"
    elif content is None:
        raise GenerationFailure(f"{where}: no answer: the reply's content is null "
                                f"(finish_reason={choice.get('finish_reason')})")
    # completion_tokens counts the reasoning tokens too (OpenAI's, vLLM's and SGLang's usage alike).
    return with_usage(content, usage.get("prompt_tokens"), usage.get("completion_tokens"))
