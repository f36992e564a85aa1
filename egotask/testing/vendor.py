"""One local stand-in for the vendor APIs egotask calls, on 127.0.0.1:

- Gemini's ``POST /{version}/models/{model}:generateContent`` (whichever API version the SDK uses),
  and its Batch and Files APIs (:mod:`egotask.testing.batch`, ``server.batch``);
- the OpenAI chat-completions API (``POST .../chat/completions``: OpenAI, ``vllm serve``, SGLang).

The real google-genai and openai clients reach it through their base URLs (``GOOGLE_GEMINI_BASE_URL=<url>``,
``OPENAI_BASE_URL`` or ``base_url=<url>/v1``). It keeps every request body (``keep_bodies``), the keys
requests came with, when each arrived and how many were in flight at once, so a test can check what
a client sent.

What it answers: ``reply`` (a text in which ``{n}`` is the number of images received, or a function of
the :class:`FakeRequest`), with ``usage`` tokens where each API puts them (a fixed pair, a function
such as :func:`chars_usage`, or by default :func:`usage`'s count; ``tokens_in``/``tokens_out`` add them
up). Two presets: :class:`FakeVLMServer` says how many images it was shown (a served model under test),
:class:`FakeJudgeServer` grades a judge prompt's item by :func:`fake_verdict`.

Faults are injected per request: ``faults(request)`` names the fault for a :class:`FakeRequest`, or
``None``. A fault is an HTTP status such as ``"429"``, ``"500"`` or ``"403"`` (sent with
``Retry-After: retry_after``); ``"hang"`` (the reply comes only after ``hang`` seconds, past a
client's timeout); ``"trickle"`` (a good reply sent one byte every ``trickle`` seconds, status line
included, so no single read waits long); ``"invalid_key"`` (Gemini's answer to a wrong key: a 400
saying "API key not valid"); ``"echo_key"`` (a 500 quoting the key it received); a 200 that is not
what was asked: ``"malformed"`` (a reply that is not a verdict), ``"echo_key_text"`` (the same,
quoting the key), ``"html"`` (a proxy's error page), ``"truncated"`` (JSON cut short),
``"error-body"`` (an error object), ``"null-content"`` (a message whose content is null),
``"refusal"`` (a refusal).

    python -m egotask.testing.vendor --latency 0.2 [--judge]   # prints the base URL, serves until killed
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import re
import string
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from egotask.testing.batch import BatchFaults, FakeBatchAPI
from egotask.testing.local_server import LocalServer, ReplyHandler

IMAGE_TOKENS = 64  # prompt tokens the fake counts for each image it is sent
GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
MALFORMED = "I think the prediction is probably fine"  # a reply that holds no verdict
_TRICKLE = "x-fake-trickle"  # answer() tells the handler to trickle the reply (never sent)


@dataclass(frozen=True)
class FakeRequest:
    """One generate request, as a fault plan or a reply rule sees it."""

    n: int  # its order among the server's generate requests (1-based)
    attempt: int  # its order among the requests with the same prompt: the same judge item (1-based)
    path: str
    body: dict[str, Any]
    key: str  # the API key it came with
    item: dict[str, str] | None  # the judge item its prompt asks about, if it asks about one

    @property
    def images(self) -> int:
        return len(encoded_images(self.body))


FaultPlan = Callable[[FakeRequest], "str | None"]
Reply = Callable[[FakeRequest], str]
Usage = Callable[[dict[str, Any], str], tuple[int, int]]  # (request body, reply text) -> (tokens in, out)


class FakeVendorServer(LocalServer):
    """``with FakeVendorServer(reply=..., faults=...) as server: ... server.url ...``."""

    thread_name = "fake-vendor-server"

    def __init__(self, reply: str | Reply = "I was shown {n} images.",
                 usage: tuple[int, int] | Usage | None = None, faults: Callable[..., str | None] | None = None,
                 latency: float = 0.0, hang: float = 5.0,
                 retry_after: str = "0", trickle: float = 0.2, keep_bodies: bool = True, batch_delay: float = 0.0,
                 batch_hold: bool = False, batch_faults: BatchFaults | None = None,
                 batch_fail_after: int | None = None):
        super().__init__()
        self.reply_text, self.usage = reply, usage
        self.faults, self.latency, self.hang = faults, latency, hang
        self.retry_after, self.trickle = retry_after, trickle
        self.keep_bodies = keep_bodies
        self.batch = FakeBatchAPI(answer_request=self._batch_answer, item_of=judge_item, delay=batch_delay,
                                  hold=batch_hold, faults=batch_faults, fail_after=batch_fail_after)
        self.requests = 0
        self.outcomes: Counter[str] = Counter()  # the fault of each request, "ok" for none
        self.attempts: Counter[str] = Counter()  # per prompt (per judge item: item_id)
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []  # of the kept bodies, in the same order
        self.api_keys: set[str] = set()  # the keys requests came with
        self.started: list[float] = []  # monotonic time each request arrived
        self.started_by: dict[str, list[float]] = {}  # the same, per prompt (per judge item: item_id)
        self.in_flight = self.max_in_flight = 0
        self.tokens_in = self.tokens_out = 0  # the usage the synchronous replies reported, in all
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what a preset changes

    def fault_for(self, request: FakeRequest) -> str | None:
        return self.faults(request) if self.faults else None

    def reply_for(self, request: FakeRequest) -> str:
        if callable(self.reply_text):
            return self.reply_text(request)
        return self.reply_text.replace("{n}", str(request.images))

    def usage_for(self, body: dict[str, Any], text: str) -> tuple[int, int]:
        if callable(self.usage):
            return self.usage(body, text)
        return self.usage if self.usage is not None else usage(body, text)

    def images(self, body: dict[str, Any]) -> list[Any]:
        """The images of one request (either API), decoded (PIL images), in order."""
        from PIL import Image

        return [Image.open(io.BytesIO(raw)).convert("RGB") for raw in encoded_images(body)]

    # ------------------------------------------------------------------ HTTP

    def handler(self) -> type[ReplyHandler]:
        server = self

        class Handler(ReplyHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._batch_or(lambda: _error(404, f"no such endpoint {self.path}"), b"")

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))

                def generate() -> tuple[int, bytes, dict[str, str]]:
                    key = self.headers.get("x-goog-api-key") or self.headers.get("Authorization", "")
                    return server.answer(self.path, json.loads(raw or b"{}"), key.removeprefix("Bearer "))

                self._batch_or(generate, raw)

            def _batch_or(self, other: Callable[[], tuple[int, bytes, dict[str, str]]], raw: bytes) -> None:
                if server.batch.handles(self.command, self.path):
                    with server._lock:
                        server.api_keys.add(self.headers.get("x-goog-api-key") or "")
                    status, data, headers = server.batch.route(self.command, self.path, self.headers, raw, server.url)
                else:
                    status, data, headers = other()
                trickle = float(headers.pop(_TRICKLE, 0))
                if trickle:  # the whole reply, one byte at a time
                    self.wfile = _Trickle(self.wfile, trickle)
                self.reply(status, data, headers)

        return Handler

    # ------------------------------------------------------------------ the API

    def answer(self, path: str, body: dict[str, Any], key: str) -> tuple[int, bytes, dict[str, str]]:
        """The reply to one generate request: (status, body, headers)."""
        gemini = ":generateContent" in path
        if not gemini and not path.rstrip("/").endswith("/chat/completions"):
            return _error(404, f"no such endpoint {path}")
        item = judge_item(body)
        ident = item_id(item) if item is not None else hashlib.sha256(prompt_text(body).encode()).hexdigest()
        with self._lock:
            self.requests += 1
            self.attempts[ident] += 1
            request = FakeRequest(self.requests, self.attempts[ident], path, body, key, item)
            self.api_keys.add(key)
            now = time.monotonic()
            self.started.append(now)
            self.started_by.setdefault(ident, []).append(now)
            if self.keep_bodies:
                self.bodies.append(body)
                self.paths.append(path)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.latency)
            fault = self.fault_for(request)
            with self._lock:
                self.outcomes[fault or "ok"] += 1
            if fault == "hang":
                time.sleep(self.hang)
        finally:
            with self._lock:
                self.in_flight -= 1
        model = path.rsplit("/", 1)[-1].split(":", 1)[0] if gemini else body.get("model", "fake")
        if fault in BAD_REPLIES:
            ctype, payload = BAD_REPLIES[fault](model)
            return 200, payload, {"Content-Type": ctype}
        if fault == "invalid_key":
            return _error(400, "API key not valid. Please pass a valid API key.")
        if fault == "echo_key" or (fault or "").isdigit():
            code = 500 if fault == "echo_key" else int(fault)
            message = f"injected fault; your key is {key}" if fault == "echo_key" else f"injected fault {fault}"
            return _error(code, message, {"Retry-After": self.retry_after})
        if fault == "malformed":
            text = MALFORMED
        elif fault == "echo_key_text":
            text = f"cannot grade; request came with key {key}"
        else:
            text = self.reply_for(request)
        tokens = self.usage_for(body, text)
        with self._lock:
            self.tokens_in, self.tokens_out = self.tokens_in + tokens[0], self.tokens_out + tokens[1]
        extra = {_TRICKLE: str(self.trickle)} if fault == "trickle" else {}
        payload = gemini_reply(text, model, tokens) if gemini else completion(text, model, tokens)
        return 200, json.dumps(payload).encode(), {"Content-Type": "application/json", **extra}

    def _batch_answer(self, request: dict[str, Any], model: str) -> dict[str, Any]:
        """A batch request's reply: what the synchronous endpoint would answer."""
        if request.get("_malformed"):
            text = MALFORMED
        else:
            text = self.reply_for(FakeRequest(0, 1, f"models/{model}:batchGenerateContent", request, "",
                                              judge_item(request)))
        return gemini_reply(text, model, self.usage_for(request, text))


class FakeVLMServer(FakeVendorServer):
    """A served model under test: it says how many images it was shown. ``faults(n)`` names a fault
    for the n-th request, ``item_faults(body)`` one for a request by its content."""

    thread_name = "fake-vlm-server"

    def __init__(self, faults: Callable[[int], str | None] | None = None,
                 item_faults: Callable[[dict[str, Any]], str | None] | None = None, **options: Any):
        super().__init__(**options)
        self.faults, self.item_faults = faults, item_faults

    def fault_for(self, request: FakeRequest) -> str | None:
        fault = self.faults(request.n) if self.faults else None
        return self.item_faults(request.body) if fault is None and self.item_faults else fault


class FakeJudgeServer(FakeVendorServer):
    """A judge: it grades the item of a judge prompt by :func:`fake_verdict`, reporting 100 tokens in
    and 20 out. ``faults(item, attempt)`` names a fault for the ``attempt``-th request about an item."""

    thread_name = "fake-judge-server"

    def __init__(self, faults: Callable[[dict[str, str], int], str | None] | None = None, **options: Any):
        super().__init__(**{"reply": verdict_reply, "usage": (100, 20), **options})
        self.faults = faults

    def fault_for(self, request: FakeRequest) -> str | None:
        return self.faults(request.item, request.attempt) if self.faults and request.item is not None else None


# ---------------------------------------------------------------------- the judge's verdict rule

_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _norm(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def fake_verdict(item: dict[str, str]) -> dict[str, Any]:
    """The fake judge's verdict: the normalised reference inside the normalised prediction is a yes,
    enough to tell a judged item from a failed one."""
    pred, ref = _norm(item["prediction"]), _norm(item["reference"])
    if pred and pred == ref:
        return {"pred": "yes", "score": 5, "reason": "fake judge: same answer"}
    if ref and f" {ref} " in f" {pred} ":
        return {"pred": "yes", "score": 4, "reason": "fake judge: contains the reference"}
    return {"pred": "no", "score": 1, "reason": "fake judge: different answer"}


def verdict_reply(request: FakeRequest) -> str:
    if request.item is None:
        return MALFORMED
    return json.dumps(fake_verdict(request.item))


def item_id(item: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps([item["question"], item["reference"], item["prediction"]]).encode()).hexdigest()


def cycle_faults(plans: list[list[str]]) -> Callable[[dict[str, str], int], str | None]:
    """A judge fault plan: each item gets one of ``plans`` (by a stable hash); its n-th request gets
    ``plan[n-1]``, later ones none. ``[[], ["429"], ["500", "hang"]]``: a third of the items succeed at
    once, and so on."""

    def plan(item: dict[str, str], attempt: int) -> str | None:
        chosen = plans[int(item_id(item)[:8], 16) % len(plans)]
        return chosen[attempt - 1] if attempt <= len(chosen) else None

    return plan


def judge_item(body: dict[str, Any]) -> dict[str, str] | None:
    """The item a judge prompt asks about (None for another prompt)."""
    from egotask.judges.prompt import parse_item_block

    try:
        return parse_item_block(prompt_text(body))
    except (ValueError, KeyError):
        return None


# ---------------------------------------------------------------------- reading a request

def is_gemini(body: dict[str, Any]) -> bool:
    return "contents" in body


def data_url_images(url: str) -> list[bytes]:
    """The image bytes in a data URL; ``video/jpeg`` URLs carry several base64 JPEGs, comma-separated."""
    head, _, payload = url.partition(",")
    if not head.startswith("data:") or ";base64" not in head:
        return []
    return [base64.b64decode(part) for part in payload.split(",") if part]


def image_urls(body: dict[str, Any]) -> list[str]:
    """The ``image_url``/``video_url`` URLs of an OpenAI chat request, in order."""
    urls = []
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") in ("image_url", "video_url"):
                urls.append(part[part["type"]]["url"])
    return urls


def _gemini_parts(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [part for content in contents for part in content.get("parts", [])]


def inline_images(body: dict[str, Any]) -> list[bytes]:
    """The image bytes of a Gemini request's ``inline_data`` parts (either JSON spelling), in order."""
    out = []
    for part in _gemini_parts(body.get("contents", [])):
        blob = part.get("inline_data") or part.get("inlineData")
        if blob and str(blob.get("mime_type") or blob.get("mimeType", "")).startswith("image/"):
            # google-genai sends URL-safe base64; the REST API takes either alphabet
            out.append(base64.b64decode(blob["data"].replace("-", "+").replace("_", "/")))
    return out


def encoded_images(body: dict[str, Any]) -> list[bytes]:
    """Every image a request carries, as sent (JPEG bytes), for either API."""
    if is_gemini(body):
        return inline_images(body)
    return [raw for url in image_urls(body) for raw in data_url_images(url)]


def _message_texts(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "text":
                out.append(part["text"])
    return out


def texts(body: dict[str, Any]) -> list[str]:
    """The text parts of a request (either API; not Gemini's system instruction), in order."""
    if is_gemini(body):
        return [part["text"] for part in _gemini_parts(body.get("contents", [])) if "text" in part]
    return _message_texts(body.get("messages", []))


def prompt_text(body: dict[str, Any]) -> str:
    """The text of a request's last message: the user's prompt, without the system prompt."""
    if is_gemini(body):
        return "\n".join(part["text"] for part in _gemini_parts(body.get("contents", [])[-1:]) if "text" in part)
    return "\n".join(_message_texts(body.get("messages", [])[-1:]))


def usage(body: dict[str, Any], reply: str) -> tuple[int, int]:
    """The (prompt, completion) tokens the fake reports by default: a token per word of the request's
    text parts and IMAGE_TOKENS per image; a token per word of the reply."""
    prompt = sum(len(t.split()) for t in texts(body)) + IMAGE_TOKENS * len(encoded_images(body))
    return prompt, len(reply.split())


def chars_usage(body: dict[str, Any], reply: str) -> tuple[int, int]:
    """A judge's usage by the rule of thumb `--plan` estimates with: the system and user prompts at 4
    characters a token, rounded up, and 20 tokens out (a real tokenizer differs)."""
    if is_gemini(body):
        system = "".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
    else:
        system = "".join(m["content"] for m in body.get("messages", [])[:-1] if m.get("role") == "system")
    return math.ceil(len(system + prompt_text(body)) / 4), 20


# ---------------------------------------------------------------------- replies

def completion(text: str, model: str, tokens: tuple[int, int] = (1, 1)) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)}}


def gemini_reply(text: str, model: str, tokens: tuple[int, int] = (1, 1)) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": tokens[0], "candidatesTokenCount": tokens[1],
                              "totalTokenCount": sum(tokens)},
            "modelVersion": model}


def _error(code: int, message: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    """An error body both APIs' clients read (Gemini's shape; the openai client takes its message)."""
    payload = {"error": {"code": code, "message": message, "status": GEMINI_STATUS.get(code, "UNKNOWN"),
                         "type": "fake"}}
    return code, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}


def _message_reply(model: str, **message: Any) -> tuple[str, bytes]:
    reply = completion("", model)
    reply["choices"][0]["message"] = {"role": "assistant", **message}
    return "application/json", json.dumps(reply).encode()


# 200 replies that hold no usable completion: (content type, body) for a model name.
BAD_REPLIES: dict[str, Callable[[str], tuple[str, bytes]]] = {
    "html": lambda model: ("text/html", b"<html><head><title>502 Bad Gateway</title></head>"
                                        b"<body><h1>502 Bad Gateway</h1>nginx</body></html>"),
    "truncated": lambda model: ("application/json", json.dumps(completion("an answer", model)).encode()[:60]),
    "error-body": lambda model: ("application/json", json.dumps(
        {"object": "error", "message": "The engine is overloaded, try again", "type": "ServiceUnavailable",
         "code": 503}).encode()),
    "null-content": lambda model: _message_reply(model, content=None),
    "refusal": lambda model: _message_reply(model, content=None, refusal="I can't help with that request."),
}


class _Trickle:
    """A socket file that writes one byte per ``interval`` seconds."""

    def __init__(self, raw: Any, interval: float):
        self.raw, self.interval = raw, interval

    def write(self, data: bytes) -> int:
        for i in range(len(data)):
            self.raw.write(data[i:i + 1])
            self.raw.flush()
            time.sleep(self.interval)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Gemini / OpenAI-compatible API on 127.0.0.1 (prints "
                                                 "its base URL, serves until killed).")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--judge", action="store_true", help="grade judge prompts (else: say how many images came)")
    args = parser.parse_args(argv)
    preset = FakeJudgeServer if args.judge else FakeVLMServer
    with preset(latency=args.latency, keep_bodies=False) as server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
