"""A local stand-in for served VLM endpoints, for tests and benchmarks, on 127.0.0.1:

- the OpenAI chat-completions API (``POST /v1/chat/completions``, what ``vllm serve``, SGLang and
  OpenAI speak): frames arrive as ``image_url`` data URLs, or as one ``video_url`` ``video/jpeg`` data
  URL of comma-separated base64 JPEGs (vLLM's form);
- the Gemini API (``POST /{version}/models/{model}:generateContent``, whichever API version the SDK
  uses): frames arrive as ``inline_data`` parts.

The real openai and google-genai clients reach it through their base URLs (``base_url=<url>/v1``,
``GOOGLE_GEMINI_BASE_URL=<url>``). It keeps every request body and decodes the images it was sent, so
a test can check exactly which frames a model under test was shown. Its reply names how many images
it received, and its usage counts tokens as :func:`usage` says (each word of the request's text and
of the reply one token, each image ``IMAGE_TOKENS``), where the real APIs put them (``usage``,
``usageMetadata``). ``latency`` delays every reply; ``faults(n)`` names a fault for the n-th request (1-based)
and ``item_faults(body)`` one for a request by its content (say, every request about one question).
A fault is an HTTP status such as ``"429"`` or ``"500"`` (sent with ``Retry-After``), ``"hang"`` (the
reply comes only after ``hang`` seconds, past a client's timeout), a bad 200 reply of the OpenAI API
(``"html"``: a proxy's error page; ``"truncated"``: JSON cut short; ``"error-body"``: an error object;
``"null-content"``: a message whose content is null; ``"refusal"``: a refusal), or ``None``.

    python -m egotask.model_adapters.fake_server --latency 0.2   # prints the base URL, serves until killed
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from egotask.fake_http import LocalServer, ReplyHandler

FaultPlan = Callable[[int], str | None]
ItemFaultPlan = Callable[[dict[str, Any]], str | None]
IMAGE_TOKENS = 64  # prompt tokens the fake counts for each image it is sent
GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def data_url_images(url: str) -> list[bytes]:
    """The image bytes in a data URL; ``video/jpeg`` URLs carry several base64 JPEGs, comma-separated."""
    head, _, payload = url.partition(",")
    if not head.startswith("data:") or ";base64" not in head:
        return []
    return [base64.b64decode(part) for part in payload.split(",") if part]


def is_gemini(body: dict[str, Any]) -> bool:
    return "contents" in body


class FakeVLMServer(LocalServer):
    """``with FakeVLMServer(latency=0.2) as server: ... server.url ...``."""

    thread_name = "fake-vlm-server"

    def __init__(self, latency: float = 0.0, faults: FaultPlan | None = None, retry_after: str = "0",
                 keep_bodies: bool = True, item_faults: ItemFaultPlan | None = None, hang: float = 5.0,
                 reply: str = "I was shown {n} images."):
        super().__init__()
        self.reply_text = reply  # what every answer says; {n} is the number of images received
        self.latency, self.faults, self.retry_after, self.keep_bodies = latency, faults, retry_after, keep_bodies
        self.item_faults, self.hang = item_faults, hang
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []  # of the kept bodies, in the same order
        self.started: list[float] = []  # monotonic time each request arrived
        self.api_keys: set[str] = set()  # the keys requests came with
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def handler(self) -> type[ReplyHandler]:
        server = self

        class Handler(ReplyHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                gemini = ":generateContent" in self.path
                if not gemini and not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"code": 404, "message": f"no such endpoint {self.path}",
                                               "status": "NOT_FOUND"}})
                    return
                key = self.headers.get("x-goog-api-key") or self.headers.get("Authorization", "")
                with server._lock:
                    server.requests += 1
                    n = server.requests
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.started.append(time.monotonic())
                    server.api_keys.add(key.removeprefix("Bearer "))
                    if server.keep_bodies:
                        server.bodies.append(body)
                        server.paths.append(self.path)
                try:
                    time.sleep(server.latency)
                    fault = server.faults(n) if server.faults else None
                    if fault is None and server.item_faults:
                        fault = server.item_faults(body)
                    if fault == "hang":
                        time.sleep(server.hang)
                    elif fault in BAD_REPLIES:
                        ctype, payload = BAD_REPLIES[fault](body.get("model", "fake"))
                        self.reply(200, payload, {"Content-Type": ctype})
                        return
                    elif fault is not None:
                        code = int(fault)
                        self._send(code, {"error": {"code": code, "message": f"fake fault {fault}",
                                                    "type": "fake", "status": GEMINI_STATUS.get(code, "UNKNOWN")}},
                                   {"Retry-After": server.retry_after})
                        return
                    n_images = len(encoded_images(body))
                    text = server.reply_text.replace("{n}", str(n_images))
                    tokens = usage(body, text, n_images)
                    if gemini:
                        self._send(200, gemini_reply(text, self.path.rsplit("/", 1)[-1].split(":", 1)[0], tokens))
                    else:
                        self._send(200, completion(text, body.get("model", "fake"), tokens))
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self.reply(code, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

        return Handler

    def images(self, body: dict[str, Any]) -> list[Any]:
        """The images of one request (either API), decoded (PIL images), in order."""
        from PIL import Image

        return [Image.open(io.BytesIO(raw)).convert("RGB") for raw in encoded_images(body)]


def image_urls(body: dict[str, Any]) -> list[str]:
    """The ``image_url``/``video_url`` URLs of an OpenAI chat request, in order."""
    urls = []
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") in ("image_url", "video_url"):
                urls.append(part[part["type"]]["url"])
    return urls


def _gemini_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [part for content in body.get("contents", []) for part in content.get("parts", [])]


def inline_images(body: dict[str, Any]) -> list[bytes]:
    """The image bytes of a Gemini request's ``inline_data`` parts (either JSON spelling), in order."""
    out = []
    for part in _gemini_parts(body):
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


def texts(body: dict[str, Any]) -> list[str]:
    """The text parts of a request (either API), in order."""
    if is_gemini(body):
        return [part["text"] for part in _gemini_parts(body) if "text" in part]
    out = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "text":
                out.append(part["text"])
    return out


def usage(body: dict[str, Any], reply: str, n_images: int | None = None) -> tuple[int, int]:
    """The (prompt, completion) tokens the fake reports for a request and its reply: a token per word of
    the request's text parts and IMAGE_TOKENS per image (``n_images``, when already counted); a token per
    word of the reply."""
    n_images = len(encoded_images(body)) if n_images is None else n_images
    prompt = sum(len(t.split()) for t in texts(body)) + IMAGE_TOKENS * n_images
    return prompt, len(reply.split())


def completion(text: str, model: str, tokens: tuple[int, int] = (1, 1)) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)}}


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


def gemini_reply(text: str, model: str, tokens: tuple[int, int] = (1, 1)) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": tokens[0], "candidatesTokenCount": tokens[1],
                              "totalTokenCount": sum(tokens)},
            "modelVersion": model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeVLMServer(latency=args.latency, keep_bodies=False).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
