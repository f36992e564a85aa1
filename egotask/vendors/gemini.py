"""Gemini through google-genai, for the judge (synchronous, with the deadline transport) and the served
model (``client.aio``): one way to build the client, read a reply and classify an error.

The SDK resolves the key from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` and the endpoint from
``GOOGLE_GEMINI_BASE_URL`` when set (tests point it at :mod:`egotask.testing`'s fake server). The same
:func:`client` also serves the Batch and Files APIs (``client.batches``, ``client.files``) that
:mod:`egotask.judges.batch` uses. The SDK's own retries stay off: :mod:`egotask.vendors.retry`'s
honour ``Retry-After`` and count attempts per item.
"""

from __future__ import annotations

import json
from typing import Any

from egotask.settings import vendor_value
from egotask.vendors import retry
from egotask.vendors.retry import RETRY, Answer, BadReply, Failure, NoAnswer

KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_VAR = "GOOGLE_GEMINI_BASE_URL"
DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_ENDPOINT = "https://generativelanguage.googleapis.com"
ANSWERED = ("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED")  # finish reasons of a reply that is the model's


def endpoint() -> str:
    return vendor_value(BASE_URL_VAR) or DEFAULT_ENDPOINT


def has_key() -> bool:
    return any(vendor_value(var) for var in KEY_VARS)


def missing() -> str | None:
    """What a call still needs (said after "needs"), or None when it can be made."""
    return None if has_key() else "an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)."


def client(timeout: float, transport: Any = None) -> Any:
    """A google-genai client: ``transport`` (an httpx transport, say the deadline one) for its
    synchronous calls; its ``aio`` side is the served model's."""
    from google import genai
    from google.genai import types

    # A transport of our own also makes the SDK use httpx, not httpx2.
    options = types.HttpOptions(timeout=int(timeout * 1000),
                                client_args={"transport": transport} if transport is not None else None)
    return genai.Client(http_options=options)


def answer_of(response: Any, where: str) -> Answer:
    """The answer in a GenerateContentResponse. :class:`NoAnswer` for a blocked or empty reply,
    :class:`BadReply` for a body that is not one of Gemini's (no candidate and no block reason)."""
    candidates = response.candidates or []
    finish = candidates[0].finish_reason if candidates else None
    finish_name = getattr(finish, "name", None) or (str(finish) if finish else None)
    blocked = response.prompt_feedback.block_reason if response.prompt_feedback else None
    if not candidates and not blocked:
        raise BadReply(Failure(RETRY, f"{where}: a 200 reply with no candidate and no block reason (an error "
                                      "body from a proxy or a server that is not Gemini's API)"))
    if blocked or not candidates or (finish_name and finish_name not in ANSWERED):
        raise NoAnswer(f"{where}: no answer (finish_reason={finish_name}, block_reason={blocked})")
    parts = candidates[0].content.parts if candidates[0].content else None
    text = "".join(p.text for p in parts or [] if p.text and not p.thought)
    if not text.strip():
        raise NoAnswer(f"{where}: the reply holds no text (finish_reason={finish_name})")
    return Answer(text, *usage_tokens(response.usage_metadata))


def usage_tokens(usage: Any) -> tuple[int | None, int | None]:
    """(tokens in, tokens out) of a reply's ``usage_metadata``: thinking tokens are generated, and
    billed, as output, so they count as output here."""
    prompt = _count(getattr(usage, "prompt_token_count", None))
    generated = [_count(getattr(usage, name, None)) for name in ("candidates_token_count", "thoughts_token_count")]
    known = [n for n in generated if n is not None]
    return prompt, (sum(known) if known else None)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def classify(exc: BaseException, *, where: str, timeout_message: str, hint: str, prefix: str = "") -> Failure:
    """The handling of an exception from a Gemini call (:mod:`egotask.vendors.retry`)."""
    from google.genai import errors

    if isinstance(exc, BadReply):
        return exc.failure
    if isinstance(exc, errors.APIError):
        message = f"{where}: HTTP {exc.code} {exc.status or ''}: {exc.message or ''}".strip()
        headers = getattr(getattr(exc, "response", None), "headers", None)
        refused_key = "api key" in (exc.message or "").lower()  # Gemini refuses a bad key with a 400
        return retry.classify_status(exc.code, message, retry.retry_after_of(headers), hint=hint, fatal=refused_key)
    if isinstance(exc, json.JSONDecodeError):  # the SDK could not parse a 200 reply's body
        return Failure(RETRY, f"{where}: a reply that is not complete JSON ({exc}): a proxy's error page, or a "
                              "reply cut short")
    transport = retry.classify_transport(exc, timeout_message=timeout_message, prefix=prefix, url=endpoint(),
                                   url_hint=BASE_URL_VAR)
    if transport is not None:
        return transport
    return Failure("item", f"{type(exc).__name__}: {exc}")

