"""A judge on any OpenAI-compatible chat endpoint: OpenAI itself, or a local vLLM / SGLang server.

The ``openai`` client reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (for example
``http://localhost:8000/v1``). A local server often needs no key; with a base URL set and no key, the
placeholder ``EMPTY`` is sent. Under egotask's protocol replies are constrained with a JSON schema
(``response_format``); the temperature and reply format are the protocol's.
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
from egotask.settings import vendor_value

KEY_VAR = "OPENAI_API_KEY"
BASE_URL_VAR = "OPENAI_BASE_URL"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_ENDPOINT = "https://api.openai.com/v1"


class OpenAIJudge(LLMJudge):
    name = "openai"
    default_model = DEFAULT_MODEL
    settings_hint = f"{KEY_VAR}, {BASE_URL_VAR} and {MODEL_VAR}"

    def endpoint(self) -> str:
        return vendor_value(BASE_URL_VAR) or DEFAULT_ENDPOINT

    def check_ready(self) -> None:
        if not vendor_value(KEY_VAR) and not vendor_value(BASE_URL_VAR):
            raise JudgeNotReady(
                f"the openai judge needs {KEY_VAR}, or {BASE_URL_VAR} pointing at an OpenAI-compatible "
                "server (vLLM, SGLang) that needs no key.", offline_hint=True)

    def _make_client(self) -> Any:
        import httpx
        import openai

        return openai.OpenAI(
            api_key=vendor_value(KEY_VAR) or "EMPTY", timeout=self.settings.timeout,
            max_retries=0, http_client=httpx.Client(transport=self.http_transport(), timeout=self.settings.timeout))

    def _call(self, system: str, prompt: str) -> str:
        messages = [{"role": "system", "content": system}] if system else []
        options: dict[str, Any] = {}
        if self.spec.temperature is not None:  # None: the official scorer sends none, so neither do we
            options["temperature"] = self.spec.temperature
        if self.spec.reply == "json-schema":
            options["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "verdict", "schema": REPLY_SCHEMA}}
        response = self.client.chat.completions.create(
            model=self.model, messages=[*messages, {"role": "user", "content": prompt}], **options)
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.add_tokens(usage.prompt_tokens or 0, usage.completion_tokens or 0)
        choice = response.choices[0] if response.choices else None
        text = choice.message.content if choice is not None else None
        if not text:
            raise UnreadableReply(f"no text in the reply (finish_reason={getattr(choice, 'finish_reason', None)})")
        return text

    def _classify(self, exc: Exception) -> CallError:
        import httpx
        import openai

        from egotask.judges.throttle import parse_retry_after

        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            message = f"OpenAI-compatible API error {code}: {exc.message}"
            return classify_status(code, message, parse_retry_after(exc.response.headers.get("retry-after")),
                                   fatal_hint=f"check {KEY_VAR}, {BASE_URL_VAR} and {MODEL_VAR}")
        if isinstance(exc, openai.APITimeoutError):
            return CallError("retry", f"timed out after {self.settings.timeout:g} s ({TIMEOUT_VAR})")
        if isinstance(exc, openai.APIConnectionError) and isinstance(exc.__cause__, httpx.UnsupportedProtocol
                                                                     | httpx.InvalidURL):
            return CallError("fatal", f"the endpoint URL {self.endpoint()!r} is malformed ({exc.__cause__}); "
                                      f"check {BASE_URL_VAR}")
        if isinstance(exc, openai.APIConnectionError):
            return CallError("retry", f"connection error: {exc}")
        return CallError("retry", f"{type(exc).__name__}: {exc}")


@hookimpl
def egotask_judges() -> list[JudgeBackend]:
    return [JudgeBackend("openai", OpenAIJudge, f"any OpenAI-compatible chat endpoint by {BASE_URL_VAR} "
                         f"(OpenAI, vLLM, SGLang; default model {DEFAULT_MODEL}), JSON-schema replies, cached",
                         env_vars=(KEY_VAR, BASE_URL_VAR, MODEL_VAR, RPM_VAR, TIMEOUT_VAR, DEADLINE_VAR,
                                   ATTEMPTS_VAR))]
