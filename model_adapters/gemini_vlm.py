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

from typing import Any

from egotask.model_adapters.served import EncodedPrompt, ServedModel, frame_label
from egotask.vendors import gemini
from egotask.vendors.gemini import BASE_URL_VAR, DEFAULT_MODEL, KEY_VARS
from egotask.vendors.retry import Answer, Failure


class GeminiVLM(ServedModel):
    family = "gemini_vlm"
    backend = "gemini"

    def __init__(self, model: str = DEFAULT_MODEL, thinking_budget: int | str | None = None, **kwargs: Any) -> None:
        super().__init__(model=model, **kwargs)
        if not gemini.has_key():
            raise ValueError(f"gemini_vlm needs an API key: set {KEY_VARS[0]} (or {KEY_VARS[1]}); "
                             f"{BASE_URL_VAR} points it at another endpoint")
        self.thinking_budget = None if thinking_budget in (None, "", "None") else int(thinking_budget)

    @property
    def where(self) -> str:
        return f"Gemini {self.model} at {gemini.endpoint()}"

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
        return gemini.client(self.timeout)

    async def close_client(self, client: Any) -> None:
        await client.aio.aclose()

    async def send(self, client: Any, prompt: EncodedPrompt) -> Answer:
        response = await client.aio.models.generate_content(model=self.model, contents=self.contents(prompt),
                                                            config=self.config(prompt.gen_kwargs))
        return gemini.answer_of(response, self.where)

    def classify(self, exc: Exception) -> Failure:
        return gemini.classify(exc, where=self.where, prefix=f"{self.where}: ",
                               timeout_message=self.timeout_message,
                               hint=f"check {' / '.join(KEY_VARS)}, model={self.model} and {BASE_URL_VAR}")
