"""The Gemini judge (the default), through google-genai.

The SDK resolves the key from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` and the endpoint from
``GOOGLE_GEMINI_BASE_URL`` when set (tests point it at a local server speaking the REST API).
Under a protocol whose judge replies in egotask's JSON schema (egotask's own), replies are constrained
to :data:`~egotask.judges.prompt.REPLY_SCHEMA`; other protocols' replies are free text, read by
:func:`~egotask.judges.parse.parse_reply`.
"""

from __future__ import annotations

from typing import Any

from egotask.hookspecs import JudgeBackend, hookimpl
from egotask.judges.base import JudgeNotReady
from egotask.judges.llm import (
    ATTEMPTS_VAR,
    DEADLINE_VAR,
    MODEL_VAR,
    RPM_VAR,
    TIMEOUT_VAR,
    CallError,
    LLMJudge,
    classify_status,
)
from egotask.judges.parse import UnreadableReply
from egotask.judges.prompt import REPLY_SCHEMA
from egotask.protocols import JudgeSpec
from egotask.settings import vendor_value

KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_VAR = "GOOGLE_GEMINI_BASE_URL"
DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_ENDPOINT = "https://generativelanguage.googleapis.com"


class GeminiJudge(LLMJudge):
    name = "gemini"
    default_model = DEFAULT_MODEL
    settings_hint = f"{' / '.join(KEY_VARS)}, {BASE_URL_VAR} and {MODEL_VAR}"

    def endpoint(self) -> str:
        return vendor_value(BASE_URL_VAR) or DEFAULT_ENDPOINT

    def check_ready(self) -> None:
        if not any(vendor_value(var) for var in KEY_VARS):
            raise JudgeNotReady("the gemini judge needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY).",
                                offline_hint=True)

    def _make_client(self) -> Any:
        from google import genai
        from google.genai import types

        # The SDK's own retries stay off: ours honour Retry-After and count attempts per item. Our
        # transport (httpx's, with per-request deadlines) also makes the SDK use httpx, not httpx2.
        client = genai.Client(http_options=types.HttpOptions(
            timeout=int(self.settings.timeout * 1000), client_args={"transport": self.http_transport()}))
        self._config = request_config(self.spec)
        return client  # keep the Client itself: dropping it closes its connection pool

    def _config_for(self, system: str) -> Any:
        """The request config with this system prompt (built once: the prompt rarely changes)."""
        if self._config.system_instruction != (system or None):
            self._config = self._config.model_copy(update={"system_instruction": system or None})
        return self._config

    def _call(self, system: str, prompt: str) -> str:
        models = self.client.models  # first: building the client also builds the request config
        response = models.generate_content(model=self.model, contents=prompt, config=self._config_for(system))
        self.add_tokens(*usage_tokens(response.usage_metadata))
        return reply_text(response)

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
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return CallError("fatal", f"the endpoint URL {self.endpoint()!r} is malformed ({exc}); "
                                      f"check {BASE_URL_VAR}")
        if isinstance(exc, httpx.TimeoutException):
            return CallError("retry", f"timed out after {self.settings.timeout:g} s ({TIMEOUT_VAR})")
        if isinstance(exc, httpx.TransportError):
            return CallError("retry", f"connection error: {type(exc).__name__}: {exc}")
        return CallError("retry", f"{type(exc).__name__}: {exc}")


# One definition of the request a verdict is asked with, synchronous or batched, from the protocol's
# judge: its temperature (none sent when it names none), JSON-schema replies or free text, its system prompt.
MIME_TYPE = "application/json"


def request_config(spec: JudgeSpec, system: str | None = None) -> Any:
    """The google-genai config of a judge request."""
    from google.genai import types

    schema = spec.reply == "json-schema"
    return types.GenerateContentConfig(temperature=spec.temperature, system_instruction=system or None,
                                       response_mime_type=MIME_TYPE if schema else None,
                                       response_json_schema=REPLY_SCHEMA if schema else None)


def rest_request(spec: JudgeSpec, system: str, prompt: str) -> dict[str, Any]:
    """The same request in the REST API's JSON (a line of a batch input file)."""
    config: dict[str, Any] = {}
    if spec.temperature is not None:
        config["temperature"] = spec.temperature
    if spec.reply == "json-schema":
        config.update(responseMimeType=MIME_TYPE, responseJsonSchema=REPLY_SCHEMA)
    request: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    if system:
        request["systemInstruction"] = {"parts": [{"text": system}]}
    if config:
        request["generationConfig"] = config
    return request


def reply_text(response: Any) -> str:
    """The text of a reply, or :class:`UnreadableReply` saying why there is none (a blocked prompt...)."""
    text = response.text
    if not text:
        candidates = response.candidates or []
        finish = candidates[0].finish_reason if candidates else None
        blocked = response.prompt_feedback.block_reason if response.prompt_feedback else None
        raise UnreadableReply(f"no text in the reply (finish_reason={finish}, block_reason={blocked})")
    return text


def usage_tokens(usage: Any) -> tuple[int, int]:
    """(tokens in, tokens out) of a Gemini reply's ``usage_metadata``: thinking tokens are billed as
    output, so they count as output here."""
    if usage is None:
        return 0, 0
    out = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    return usage.prompt_token_count or 0, out


@hookimpl
def egotask_judges() -> list[JudgeBackend]:
    return [JudgeBackend("gemini", GeminiJudge, f"Google Gemini through google-genai (default model "
                         f"{DEFAULT_MODEL}), JSON-schema replies, cached",
                         env_vars=(*KEY_VARS, MODEL_VAR, BASE_URL_VAR, RPM_VAR, TIMEOUT_VAR, DEADLINE_VAR,
                                   ATTEMPTS_VAR))]
