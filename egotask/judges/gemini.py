"""The Gemini judge (the default), through google-genai.

The SDK resolves the key from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` and the endpoint from
``GOOGLE_GEMINI_BASE_URL`` when set (tests point it at a local server speaking the REST API).
Replies are constrained to JSON with :data:`~egotask.judges.prompt.REPLY_SCHEMA`.
"""

from __future__ import annotations

from typing import Any

from egotask.hookspecs import JudgeBackend, hookimpl
from egotask.judges.base import JudgeNotReady
from egotask.judges.llm import ATTEMPTS_VAR, MODEL_VAR, RPM_VAR, TIMEOUT_VAR, CallError, LLMJudge, classify_status
from egotask.judges.parse import UnreadableReply
from egotask.judges.prompt import REPLY_SCHEMA
from egotask.settings import vendor_value

KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_VAR = "GOOGLE_GEMINI_BASE_URL"
DEFAULT_MODEL = "gemini-2.5-flash"


class GeminiJudge(LLMJudge):
    name = "gemini"
    default_model = DEFAULT_MODEL

    def check_ready(self) -> None:
        if not any(vendor_value(var) for var in KEY_VARS):
            raise JudgeNotReady("the gemini judge needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY).",
                                offline_hint=True)

    def _make_client(self) -> Any:
        from google import genai
        from google.genai import types

        # The SDK's own retries stay off: ours honour Retry-After and count attempts per item.
        client = genai.Client(http_options=types.HttpOptions(
            timeout=int(self.settings.timeout * 1000), client_args={"limits": self.http_limits()}))
        self._config = types.GenerateContentConfig(
            temperature=0.0, response_mime_type="application/json", response_json_schema=REPLY_SCHEMA)
        return client  # keep the Client itself: dropping it closes its connection pool

    def _config_for(self, system: str) -> Any:
        """The request config with this system prompt (built once: the prompt rarely changes)."""
        if self._config.system_instruction != system:
            self._config = self._config.model_copy(update={"system_instruction": system})
        return self._config

    def _call(self, system: str, prompt: str) -> str:
        models = self.client.models  # first: building the client also builds the request config
        response = models.generate_content(model=self.model, contents=prompt, config=self._config_for(system))
        text = response.text
        if not text:
            candidates = response.candidates or []
            finish = candidates[0].finish_reason if candidates else None
            blocked = response.prompt_feedback.block_reason if response.prompt_feedback else None
            raise UnreadableReply(f"no text in the reply (finish_reason={finish}, block_reason={blocked})")
        return text

    def _classify(self, exc: Exception) -> CallError:
        import httpx
        from google.genai import errors

        from egotask.judges.throttle import parse_retry_after

        if isinstance(exc, errors.APIError):
            headers = getattr(getattr(exc, "response", None), "headers", None) or {}
            message = f"Gemini API error {exc.code} {exc.status or ''}: {exc.message or ''}".strip()
            return classify_status(exc.code, message, parse_retry_after(headers.get("retry-after")),
                                   fatal="api key" in (exc.message or "").lower(),
                                   fatal_hint=f"check {' / '.join(KEY_VARS)} and {MODEL_VAR}")
        if isinstance(exc, httpx.TimeoutException):
            return CallError("retry", f"timed out after {self.settings.timeout:g} s ({TIMEOUT_VAR})")
        if isinstance(exc, httpx.TransportError):
            return CallError("retry", f"connection error: {type(exc).__name__}: {exc}")
        return CallError("retry", f"{type(exc).__name__}: {exc}")


@hookimpl
def egotask_judges() -> list[JudgeBackend]:
    return [JudgeBackend("gemini", GeminiJudge, f"Google Gemini through google-genai (default model "
                         f"{DEFAULT_MODEL}), JSON-schema replies, cached",
                         env_vars=(*KEY_VARS, MODEL_VAR, BASE_URL_VAR, RPM_VAR, TIMEOUT_VAR, ATTEMPTS_VAR))]
