"""A judge on any OpenAI-compatible chat endpoint: OpenAI itself, or a local vLLM / SGLang server.

The ``openai`` client reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (for example
``http://localhost:8000/v1``). A local server often needs no key; with a base URL set and no key, the
placeholder ``EMPTY`` is sent. Replies are constrained with a JSON schema (``response_format``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from egotask.hookspecs import JudgeBackend, hookimpl
from egotask.judges.base import JudgeNotReady
from egotask.judges.llm import ATTEMPTS_VAR, MODEL_VAR, RPM_VAR, TIMEOUT_VAR, CallError, LLMJudge
from egotask.judges.parse import UnreadableReply
from egotask.judges.prompt import REPLY_SCHEMA

KEY_VAR = "OPENAI_API_KEY"
BASE_URL_VAR = "OPENAI_BASE_URL"
DEFAULT_MODEL = "gpt-4o-mini"
FATAL_STATUS = {401, 403, 404}


class OpenAIJudge(LLMJudge):
    name = "openai"
    default_model = DEFAULT_MODEL

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._client_lock = threading.Lock()
        self._client: Any = None

    def check_ready(self) -> None:
        if not os.environ.get(KEY_VAR, "").strip() and not os.environ.get(BASE_URL_VAR, "").strip():
            raise JudgeNotReady(
                f"the openai judge needs {KEY_VAR}, or {BASE_URL_VAR} pointing at an OpenAI-compatible "
                "server (vLLM, SGLang) that needs no key. To judge offline instead, pass --judge heuristic "
                "(or set EGOTASK_JUDGE=heuristic).")

    def _chat(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import httpx
                import openai

                limits = httpx.Limits(max_connections=self.settings.concurrency,
                                      max_keepalive_connections=self.settings.concurrency)
                self._client = openai.OpenAI(
                    api_key=os.environ.get(KEY_VAR, "").strip() or "EMPTY", timeout=self.settings.timeout,
                    max_retries=0, http_client=httpx.Client(limits=limits, timeout=self.settings.timeout))
            return self._client.chat.completions

    def _connect(self) -> None:
        self._chat()

    def _call(self, system: str, prompt: str) -> str:
        response = self._chat().create(
            model=self.model, temperature=0,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "verdict", "schema": REPLY_SCHEMA}})
        choice = response.choices[0] if response.choices else None
        text = choice.message.content if choice is not None else None
        if not text:
            raise UnreadableReply(f"no text in the reply (finish_reason={getattr(choice, 'finish_reason', None)})")
        return text

    def _classify(self, exc: Exception) -> CallError:
        import openai

        from egotask.judges.throttle import parse_retry_after

        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            message = f"OpenAI-compatible API error {code}: {exc.message}"
            if code in (408, 429) or code >= 500:
                return CallError("retry", message, parse_retry_after(exc.response.headers.get("retry-after")))
            if code in FATAL_STATUS:
                return CallError("fatal", f"{message} (check {KEY_VAR}, {BASE_URL_VAR} and {MODEL_VAR})")
            return CallError("item", message)
        if isinstance(exc, openai.APITimeoutError):
            return CallError("retry", f"timed out after {self.settings.timeout:g} s ({TIMEOUT_VAR})")
        if isinstance(exc, openai.APIConnectionError):
            return CallError("retry", f"connection error: {exc}")
        return CallError("retry", f"{type(exc).__name__}: {exc}")


@hookimpl
def egotask_judges() -> list[JudgeBackend]:
    return [JudgeBackend("openai", OpenAIJudge, f"any OpenAI-compatible chat endpoint by {BASE_URL_VAR} "
                         f"(OpenAI, vLLM, SGLang; default model {DEFAULT_MODEL}), JSON-schema replies, cached",
                         env_vars=(KEY_VAR, BASE_URL_VAR, MODEL_VAR, RPM_VAR, TIMEOUT_VAR, ATTEMPTS_VAR))]
