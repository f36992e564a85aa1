"""Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang) through the ``openai``
client, for the judge (synchronous, with the deadline transport) and the served model (async): one
way to build the client, send a request, read its reply and classify an error.

The client reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` itself; a local server without a key
takes the placeholder ``EMPTY``. Requests go through the client's plain POST with a JSON body (its
documented way to send any body): the typed ``create`` first walks the whole request, megabytes of
base64 frames included, against its parameter types, and the reply is read here as it came, so a
proxy's HTML page is told from a completion. The client's own retries stay off:
:mod:`egotask.vendors.retry`'s honour ``Retry-After`` and count attempts per item.
"""

from __future__ import annotations

import json
import re
from typing import Any

from egotask.settings import vendor_value
from egotask.vendors import retry
from egotask.vendors.retry import ITEM, RETRY, Answer, BadReply, Failure, NoAnswer

KEY_VAR = "OPENAI_API_KEY"
BASE_URL_VAR = "OPENAI_BASE_URL"
DEFAULT_ENDPOINT = "https://api.openai.com/v1"
PATH = "/chat/completions"


def endpoint(base_url: str | None = None) -> str:
    return base_url or vendor_value(BASE_URL_VAR) or DEFAULT_ENDPOINT


def missing() -> str | None:
    """What a call still needs (said after "needs"), or None: a key, unless the base URL names a server
    that may need none."""
    if vendor_value(KEY_VAR) or vendor_value(BASE_URL_VAR):
        return None
    return f"{KEY_VAR}, or {BASE_URL_VAR} pointing at an OpenAI-compatible server (vLLM, SGLang) that needs no key."


def api_key() -> str | None:
    """None lets the client read ``OPENAI_API_KEY``; without one, the placeholder a keyless server takes."""
    return None if vendor_value(KEY_VAR) else "EMPTY"


def client(timeout: float, transport: Any = None, base_url: str | None = None) -> Any:
    """A synchronous client; ``transport``: an httpx transport (say the deadline one)."""
    import httpx
    import openai

    http_client = httpx.Client(transport=transport, timeout=timeout) if transport is not None else None
    return openai.OpenAI(base_url=base_url, api_key=api_key(), timeout=timeout, max_retries=0,
                         http_client=http_client)


def async_client(timeout: float, base_url: str | None = None) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base_url, api_key=api_key(), timeout=timeout, max_retries=0)


def chat(client: Any, body: dict[str, Any], where: str) -> Answer:
    """Send one chat-completions request on a synchronous client; its answer."""
    import httpx

    response = client.post(PATH, body=body, cast_to=httpx.Response)
    return completion_answer(where, response.status_code, response.headers.get("content-type", ""), response.text)


async def achat(client: Any, body: dict[str, Any], where: str) -> Answer:
    """The same on an async client."""
    import httpx

    response = await client.post(PATH, body=body, cast_to=httpx.Response)
    return completion_answer(where, response.status_code, response.headers.get("content-type", ""), response.text)


def completion_answer(where: str, status: int, content_type: str, text: str) -> Answer:
    """The answer in a chat-completions reply body. Raises :class:`BadReply` for a body that is not a
    completion, and :class:`NoAnswer` for a completion without an answer."""
    data = _completion_json(where, status, content_type, text)
    choices = data.get("choices")
    if not choices or not isinstance(choices[0], dict):
        raise NoAnswer(f"{where}: the reply has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict)) or None
    refusal = message.get("refusal")
    if refusal:
        raise NoAnswer(f"{where}: no answer: the model refused ({refusal})")
    if choice.get("finish_reason") == "content_filter" and not content:
        raise NoAnswer(f"{where}: no answer: stopped by the endpoint's content filter")
    # A reasoning parser on the server (vllm serve --reasoning-parser) returns the reasoning apart;
    # it goes back into the reply as <think>...</think> for the tasks' reasoning_tags.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    if reasoning:
        # No answer after the reasoning (cut off): left unclosed, so it is recorded as "no final answer".
        content = f"<think>{reasoning}</think>{content}" if content and content.strip() else f"<think>{reasoning}"
    elif content is None:
        raise NoAnswer(f"{where}: no answer: the reply's content is null "
                       f"(finish_reason={choice.get('finish_reason')})")
    # completion_tokens counts the reasoning tokens too (OpenAI's, vLLM's and SGLang's usage alike).
    return Answer(content, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))


def _completion_json(where: str, status: int, content_type: str, text: str) -> dict[str, Any]:
    """The reply body as a JSON object that is not an error; :class:`BadReply` (saying what came instead) else."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        shown = " ".join(text.split())[:160]
        if "html" in content_type.lower() or text.lstrip()[:1] == "<":
            title = re.search(r"<title[^>]*>(.*?)</title>", text, flags=re.IGNORECASE | re.DOTALL)
            page = " ".join(title.group(1).split()) if title else shown
            raise BadReply(Failure(RETRY, f"{where}: HTTP {status} with an HTML page ({page!r}), not a "
                                          "completion: a proxy or gateway answered, not the model server")) from None
        raise BadReply(Failure(RETRY, f"{where}: HTTP {status} with a reply that is not complete JSON "
                                      f"({exc}; {len(text)} bytes: {shown!r})")) from None
    if not isinstance(data, dict):
        raise BadReply(Failure(ITEM, f"{where}: HTTP {status} with a reply that is not a JSON object: {text[:160]!r}"))
    error = data.get("error") if data.get("error") else (data if data.get("object") == "error" else None)
    if error is not None:
        detail = error.get("message") if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        message = f"{where}: HTTP {status} with an error: {detail or json.dumps(error)[:300]}"
        if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
            message += f" (code {code})"
            raise BadReply(retry.classify_status(int(code), message, hint="check the base URL and model"))
        raise BadReply(Failure(RETRY, message))
    return data


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def classify(exc: BaseException, *, where: str, timeout_message: str, hint: str, key_hint: str,
             prefix: str = "") -> Failure:
    """The handling of an exception from a chat call (:mod:`egotask.vendors.retry`): ``key_hint`` is
    said after a 401/403, ``hint`` after another refusal (404: an unknown model or path)."""
    import httpx
    import openai

    if isinstance(exc, BadReply):
        return exc.failure
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or (body.get("error") or {}).get("message") if body else None
        return retry.classify_status(code, f"{where}: HTTP {code}: {detail or exc.message}",
                                     retry.retry_after_of(exc.response.headers),
                                     hint=key_hint if code in (401, 403) else hint)
    if isinstance(exc, openai.APITimeoutError):
        return Failure(RETRY, timeout_message)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        if isinstance(cause, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return Failure("fatal", f"{prefix}the endpoint URL {where!r} is malformed ({cause}); check {BASE_URL_VAR}")
        return Failure(RETRY, f"{prefix}connection error: {cause or exc}")
    transport = retry.classify_transport(exc, timeout_message=timeout_message, prefix=prefix, url=where,
                                   url_hint=BASE_URL_VAR)
    return transport or Failure(ITEM, f"{type(exc).__name__}: {exc}")
