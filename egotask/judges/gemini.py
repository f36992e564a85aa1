"""The Gemini judge (the default), through google-genai.

The client, the reading of replies and the handling of errors are :mod:`egotask.vendors.gemini`'s
(the served ``gemini_vlm`` model's too): the key comes from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``,
the endpoint from ``GOOGLE_GEMINI_BASE_URL`` when set.
Under a protocol whose judge replies in egotask's JSON schema (egotask's own), replies are constrained
to :data:`~egotask.judges.prompt.REPLY_SCHEMA`; other protocols' replies are free text, read by
:func:`~egotask.judges.parse.parse_reply`.
"""

from __future__ import annotations

from typing import Any

from egotask.hookspecs import JudgeBackend, hookimpl
from egotask.judges.llm import MODEL_VAR, PACING_VARS, TIMEOUT_VAR, LLMJudge
from egotask.judges.parse import UnreadableReply
from egotask.judges.prompt import REPLY_SCHEMA
from egotask.protocols import JudgeSpec
from egotask.vendors import gemini
from egotask.vendors.gemini import BASE_URL_VAR, DEFAULT_MODEL, KEY_VARS
from egotask.vendors.retry import Failure, NoAnswer


class GeminiJudge(LLMJudge):
    name = "gemini"
    default_model = DEFAULT_MODEL
    vendor = gemini
    settings_hint = f"{' / '.join(KEY_VARS)}, {BASE_URL_VAR} and {MODEL_VAR}"

    def _make_client(self) -> Any:
        client = gemini.client(self.settings.timeout, transport=self.http_transport())
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
        return reply_text(response, self.where)

    @property
    def where(self) -> str:
        return f"Gemini {self.model} at {self.endpoint()}"

    def _classify(self, exc: Exception) -> Failure:
        return gemini.classify(exc, where=self.where, hint=f"check {' / '.join(KEY_VARS)} and {MODEL_VAR}",
                               timeout_message=f"timed out after {self.settings.timeout:g} s ({TIMEOUT_VAR})")


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


def reply_text(response: Any, where: str = "Gemini") -> str:
    """The text of a reply, or :class:`UnreadableReply` saying why there is none (a blocked prompt...)."""
    try:
        return gemini.answer_of(response, where).text
    except NoAnswer as exc:
        raise UnreadableReply(str(exc)) from None


def usage_tokens(usage: Any) -> tuple[int, int]:
    """(tokens in, tokens out) of a reply's ``usage_metadata``, 0 where it reports none."""
    tokens_in, tokens_out = gemini.usage_tokens(usage)
    return tokens_in or 0, tokens_out or 0


@hookimpl
def egotask_judges() -> list[JudgeBackend]:
    return [JudgeBackend("gemini", GeminiJudge, f"Google Gemini through google-genai (default model "
                         f"{DEFAULT_MODEL}), JSON-schema replies, cached",
                         env_vars=(*KEY_VARS, MODEL_VAR, BASE_URL_VAR, *PACING_VARS))]
