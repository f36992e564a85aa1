"""Gemini through google-genai as the model under test.

``--model_args model=gemini-2.5-flash,max_frames=32,concurrency=8``. The key and the endpoint come from
the same variables as the Gemini judge's: ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``) and, when set,
``GOOGLE_GEMINI_BASE_URL``; the SDK reads them itself. Only the visible interval is sent: each frame
inline as a JPEG part after a text part "Frame at 1.20 s:", then the question.

``thinking_budget=N`` sets Gemini 2.5's thinking tokens (0 turns thinking off on Flash); note that a
``max_new_tokens`` counts thinking tokens too. Scheduling, retries and failure accounting:
:mod:`egotask.model_adapters.served`.
"""

from __future__ import annotations

import json
from typing import Any

from egotask.model_adapters.base import GenerationFailure
from egotask.model_adapters.served import (
    BadReply,
    EncodedPrompt,
    RequestError,
    ServedModel,
    frame_label,
    retry_after_of,
    status_error,
    with_usage,
)
from egotask.settings import vendor_value

KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_VAR = "GOOGLE_GEMINI_BASE_URL"
DEFAULT_MODEL = "gemini-2.5-flash"
ANSWERED = ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED")  # finish reasons of a reply that is the model's


class GeminiVLM(ServedModel):
    family = "gemini_vlm"
    backend = "gemini"

    def __init__(self, model: str = DEFAULT_MODEL, thinking_budget: int | str | None = None, **kwargs: Any) -> None:
        super().__init__(model=model, **kwargs)
        if not any(vendor_value(var) for var in KEY_VARS):
            raise ValueError(f"gemini_vlm needs an API key: set {KEY_VARS[0]} (or {KEY_VARS[1]}); "
                             f"{BASE_URL_VAR} points it at another endpoint")
        self.thinking_budget = None if thinking_budget in (None, "", "None") else int(thinking_budget)

    @property
    def where(self) -> str:
        return f"Gemini {self.model} at {vendor_value(BASE_URL_VAR) or 'generativelanguage.googleapis.com'}"

    # ----------------------------------------------------------------- the request

    def contents(self, prompt: EncodedPrompt) -> list[Any]:
        from google.genai import types

        parts: list[Any] = []
        for video, jpegs in zip(prompt.videos, prompt.jpegs, strict=True):
            for time_s, jpeg in zip(video.timestamps, jpegs, strict=True):
                parts += [types.Part(text=frame_label(time_s)),
                          types.Part.from_bytes(data=jpeg, mime_type="image/jpeg")]
        parts.append(types.Part(text=prompt.text))
        return [types.Content(role="user", parts=parts)]

    def config(self, gen_kwargs: dict[str, Any]) -> Any:
        from google.genai import types

        options: dict[str, Any] = dict(self.sampling(gen_kwargs))
        max_tokens = self.max_new_tokens(gen_kwargs)
        if max_tokens is not None:
            options["max_output_tokens"] = max_tokens
        if self.thinking_budget is not None:
            options["thinking_config"] = types.ThinkingConfig(thinking_budget=self.thinking_budget)
        return types.GenerateContentConfig(**options)

    # ----------------------------------------------------------------- the client

    async def open_client(self) -> Any:
        from google import genai
        from google.genai import types

        # The SDK's own retries stay off: ours honour Retry-After and count attempts per item.
        return genai.Client(http_options=types.HttpOptions(timeout=int(self.timeout * 1000)))

    async def close_client(self, client: Any) -> None:
        await client.aio.aclose()

    async def send(self, client: Any, prompt: EncodedPrompt) -> str:
        response = await client.aio.models.generate_content(model=self.model, contents=self.contents(prompt),
                                                            config=self.config(prompt.gen_kwargs))
        candidates = response.candidates or []
        finish = candidates[0].finish_reason if candidates else None
        finish_name = getattr(finish, "name", None) or (str(finish) if finish else None)
        blocked = response.prompt_feedback.block_reason if response.prompt_feedback else None
        if not candidates and not blocked:
            # Gemini's API always gives a candidate or a block reason: this body came from something else.
            raise BadReply(RequestError("retry", f"{self.where}: a 200 reply with no candidate and no block reason "
                                                 "(an error body from a proxy or a server that is not Gemini's API)"))
        if blocked or not candidates or (finish_name and finish_name not in ANSWERED):
            # Blocked by the API's filters: not an answer of the model's.
            raise GenerationFailure(f"{self.where}: no answer (finish_reason={finish_name}, block_reason={blocked})")
        parts = candidates[0].content.parts if candidates[0].content else None
        text = "".join(p.text for p in parts or [] if p.text and not p.thought)
        if not text.strip():
            # No text is no answer, as openai_vlm's content null: counted apart, never judged or cached.
            raise GenerationFailure(f"{self.where}: the reply holds no text (finish_reason={finish_name})")
        usage = response.usage_metadata
        # Gemini counts thinking tokens apart from the candidates': both were generated for this answer.
        generated = [getattr(usage, "candidates_token_count", None), getattr(usage, "thoughts_token_count", None)]
        completion = None if generated[0] is None else sum(n for n in generated if isinstance(n, int))
        return with_usage(text, getattr(usage, "prompt_token_count", None), completion)

    def classify(self, exc: Exception) -> RequestError:
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            message = f"{self.where}: HTTP {exc.code} {exc.status or ''}: {exc.message or ''}".strip()
            headers = getattr(getattr(exc, "response", None), "headers", None)
            if "api key" in (exc.message or "").lower():  # Gemini refuses a bad key with a 400
                return RequestError("fatal", f"{message}; check {' / '.join(KEY_VARS)}")
            return status_error(exc.code, message, retry_after_of(headers),
                                f"check {' / '.join(KEY_VARS)}, model={self.model} and {BASE_URL_VAR}")
        if isinstance(exc, json.JSONDecodeError):  # the SDK could not parse a 200 reply's body
            return RequestError("retry", f"{self.where}: a reply that is not complete JSON ({exc}): a proxy's error "
                                         "page, or a reply cut short")
        if _is_timeout(exc):
            return RequestError("retry", f"{self.where}: no reply within {self.timeout:g} s (--model_args timeout)")
        if _is_transport_error(exc):
            return RequestError("retry", f"{self.where}: connection failed: {type(exc).__name__}: {exc}")
        return RequestError("item", f"{type(exc).__name__}: {exc}")


def _is_timeout(exc: Exception) -> bool:
    import httpx

    return isinstance(exc, (TimeoutError, httpx.TimeoutException))  # aiohttp raises asyncio's TimeoutError


def _is_transport_error(exc: Exception) -> bool:
    """A connection-level failure of either HTTP stack google-genai may use (aiohttp when installed)."""
    import httpx

    if isinstance(exc, (httpx.TransportError, ConnectionError, OSError)):
        return True
    try:
        import aiohttp
    except ImportError:
        return False
    return isinstance(exc, aiohttp.ClientError)
