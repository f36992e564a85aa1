"""A judge on any OpenAI-compatible chat endpoint: OpenAI itself, or a local vLLM / SGLang server.

The client, the reading of replies and the handling of errors are :mod:`egotask.vendors.openai_chat`'s
(the served ``openai_vlm`` model's too): it reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (for
example ``http://localhost:8000/v1``). A local server often needs no key; with a base URL set and no
key, the placeholder ``EMPTY`` is sent. Under egotask's protocol replies are constrained with a JSON schema
(``response_format``); the temperature and reply format are the protocol's.
"""

from __future__ import annotations

from typing import Any

from egotask.hookspecs import JudgeBackend, hookimpl
from egotask.judges.llm import MODEL_VAR, PACING_VARS, TIMEOUT_VAR, LLMJudge
from egotask.judges.parse import UnreadableReply
from egotask.judges.prompt import REPLY_SCHEMA
from egotask.vendors import openai_chat
from egotask.vendors.openai_chat import BASE_URL_VAR, KEY_VAR
from egotask.vendors.retry import Failure, NoAnswer

DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIJudge(LLMJudge):
    name = "openai"
    default_model = DEFAULT_MODEL
    vendor = openai_chat
    settings_hint = f"{KEY_VAR}, {BASE_URL_VAR} and {MODEL_VAR}"

    def _make_client(self) -> Any:
        return openai_chat.client(self.settings.timeout, transport=self.http_transport())

    def _call(self, system: str, prompt: str) -> str:
        messages = [{"role": "system", "content": system}] if system else []
        body: dict[str, Any] = {"model": self.model, "messages": [*messages, {"role": "user", "content": prompt}]}
        if self.spec.temperature is not None:  # None: the official scorer sends none, so neither do we
            body["temperature"] = self.spec.temperature
        if self.spec.reply == "json-schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "verdict", "schema": REPLY_SCHEMA}}
        try:
            answer = openai_chat.chat(self.client, body, self.endpoint())
        except NoAnswer as exc:
            raise UnreadableReply(str(exc)) from None
        self.add_tokens(answer.prompt_tokens or 0, answer.completion_tokens or 0)
        if not answer.text:
            raise UnreadableReply("no text in the reply")
        return answer.text

    def _classify(self, exc: Exception) -> Failure:
        hint = f"check {KEY_VAR}, {BASE_URL_VAR} and {MODEL_VAR}"
        return openai_chat.classify(exc, where=self.endpoint(), hint=hint, key_hint=hint,
                                    timeout_message=f"timed out after {self.settings.timeout:g} s ({TIMEOUT_VAR})")


@hookimpl
def egotask_judges() -> list[JudgeBackend]:
    return [JudgeBackend("openai", OpenAIJudge, f"any OpenAI-compatible chat endpoint by {BASE_URL_VAR} "
                         f"(OpenAI, vLLM, SGLang; default model {DEFAULT_MODEL}), JSON-schema replies, cached",
                         env_vars=(KEY_VAR, BASE_URL_VAR, MODEL_VAR, *PACING_VARS))]
