"""A local stand-in for the Gemini and OpenAI REST APIs, for tests and benchmarks.

It answers ``POST .../models/{model}:generateContent`` (Gemini) and ``POST .../chat/completions``
(OpenAI-compatible) on 127.0.0.1, so the real google-genai and openai clients reach it through
``GOOGLE_GEMINI_BASE_URL`` / ``OPENAI_BASE_URL``; Gemini's Batch API and Files API endpoints are
in :mod:`egotask.judges.fake_batch` (``server.batch``). Its verdict is a simple rule (the normalised
reference inside the normalised prediction), enough to tell a judged item from a failed one.

Latency and faults are injected per request: ``faults(item, attempt)`` names the fault for the
``attempt``-th request (1-based) about that item, or ``None``. Faults: an HTTP status such as ``"429"``, ``"500"`` or
``"403"`` (with ``Retry-After``), ``"hang"`` (answers only after ``hang`` seconds, beyond the client's timeout),
``"trickle"`` (a good reply sent one byte every ``trickle`` seconds, status line included, so that no
single read ever waits long), ``"malformed"`` (a 200 reply that is not a verdict), ``"invalid_key"``
(Gemini's answer to a wrong key: a 400 saying "API key not valid"), ``"echo_key"`` (a 500 whose message
quotes the API key it received) and ``"echo_key_text"`` (an unreadable 200 reply quoting the key).

    python -m egotask.judges.fake_server --latency 0.2   # prints the base URL, serves until killed
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import string
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from egotask.fake_http import LocalServer, ReplyHandler
from egotask.judges.fake_batch import BatchFaults, FakeBatchAPI
from egotask.judges.prompt import parse_item_block

FaultPlan = Callable[[dict[str, str], int], str | None]
_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _norm(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def fake_verdict(item: dict[str, str]) -> dict[str, Any]:
    pred, ref = _norm(item["prediction"]), _norm(item["reference"])
    if pred and pred == ref:
        return {"pred": "yes", "score": 5, "reason": "fake judge: same answer"}
    if ref and f" {ref} " in f" {pred} ":
        return {"pred": "yes", "score": 4, "reason": "fake judge: contains the reference"}
    return {"pred": "no", "score": 1, "reason": "fake judge: different answer"}


def item_id(item: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps([item["question"], item["reference"], item["prediction"]]).encode()).hexdigest()


def cycle_faults(plans: list[list[str]]) -> FaultPlan:
    """Each item gets one of ``plans`` (by a stable hash); its n-th request gets ``plan[n-1]``, later ones
    none. ``[[], ["429"], ["500", "hang"]]``: a third of the items succeed at once, and so on."""

    def plan(item: dict[str, str], attempt: int) -> str | None:
        chosen = plans[int(item_id(item)[:8], 16) % len(plans)]
        return chosen[attempt - 1] if attempt <= len(chosen) else None

    return plan


class FakeJudgeServer(LocalServer):
    """``with FakeJudgeServer(latency=0.2) as server: ... server.url ...``; counts every request."""

    thread_name = "fake-judge-server"

    def __init__(self, latency: float = 0.0, faults: FaultPlan | None = None, hang: float = 5.0,
                 retry_after: str = "0", trickle: float = 0.2, batch_delay: float = 0.0, batch_hold: bool = False,
                 batch_faults: BatchFaults | None = None, batch_fail_after: int | None = None,
                 usage: str = "fixed"):
        super().__init__()
        if usage not in ("fixed", "chars"):
            raise ValueError(f"usage={usage!r}: expected 'fixed' or 'chars'")
        # The usage each reply reports: "fixed", 100 tokens in and 20 out; "chars", the request's system
        # and user text at 4 characters a token, rounded up (the rule of thumb `--plan` estimates with;
        # a real tokenizer differs), and 20 out.
        self.usage = usage
        self.tokens_in = self.tokens_out = 0  # totals reported in the synchronous replies
        self.latency, self.faults, self.hang, self.retry_after = latency, faults, hang, retry_after
        self.trickle = trickle
        self.batch = FakeBatchAPI(answer_request=self._batch_answer, item_of=_batch_item, delay=batch_delay,
                                  hold=batch_hold, faults=batch_faults, fail_after=batch_fail_after)
        self.requests = 0
        self.outcomes: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()  # per item id
        self.bodies: list[dict[str, Any]] = []  # the last requests' bodies (for checking the wire format)
        self.keys_seen: set[str] = set()
        self.started: dict[str, list[float]] = {}  # per item id, monotonic request start times
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def handler(self) -> type[ReplyHandler]:
        server = self

        class Handler(ReplyHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._batch_or(lambda: (404, json.dumps({"error": {"code": 404, "status": "NOT_FOUND",
                                                                   "message": f"no such endpoint {self.path}"}}
                                                        ).encode(), {"Content-Type": "application/json"}), b"")

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))

                def synchronous() -> tuple[int, bytes, dict[str, str]]:
                    key = self.headers.get("x-goog-api-key") or self.headers.get("Authorization", "")
                    status, payload, headers = server.answer(self.path, json.loads(raw or b"{}"),
                                                             key.removeprefix("Bearer "))
                    return status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers}

                self._batch_or(synchronous, raw)

            def _batch_or(self, other: Any, raw: bytes) -> None:
                if server.batch.handles(self.command, self.path):
                    with server._lock:
                        server.keys_seen.add(self.headers.get("x-goog-api-key") or "")
                    status, data, headers = server.batch.route(self.command, self.path, self.headers, raw, server.url)
                else:
                    status, data, headers = other()
                trickle = float(headers.pop(_TRICKLE, 0))
                if trickle:  # the whole reply, one byte at a time
                    self.wfile = _Trickle(self.wfile, trickle)
                self.reply(status, data, headers)

        return Handler

    # ------------------------------------------------------------------ the API

    def answer(self, path: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        gemini = ":generateContent" in path
        if not gemini and not path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"code": 404, "message": f"no such endpoint {path}", "status": "NOT_FOUND"}}, {}
        prompt = (body["contents"][-1]["parts"][0]["text"] if gemini
                  else body["messages"][-1]["content"])
        item = parse_item_block(prompt)
        ident = item_id(item)
        with self._lock:
            self.requests += 1
            self.attempts[ident] += 1
            attempt = self.attempts[ident]
            self.bodies = [*self.bodies[-9:], body]
            self.keys_seen.add(key)
            self.started.setdefault(ident, []).append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = self.faults(item, attempt) if self.faults else None
            with self._lock:
                self.outcomes[fault or "ok"] += 1
            if self.latency:
                time.sleep(self.latency)
            if fault == "hang":
                time.sleep(self.hang)
        finally:
            with self._lock:
                self.in_flight -= 1
        if fault == "invalid_key":
            return 400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                   "status": "INVALID_ARGUMENT"}}, {}
        if fault == "echo_key" or (fault or "").isdigit():
            code = 500 if fault == "echo_key" else int(fault)
            message = f"injected fault; your key is {key}" if fault == "echo_key" else "injected fault"
            status = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 403: "PERMISSION_DENIED",
                      400: "INVALID_ARGUMENT"}.get(code, "UNKNOWN")
            return code, {"error": {"code": code, "message": message, "status": status}}, \
                {"Retry-After": self.retry_after}
        if fault == "malformed":
            text = "I think the prediction is probably fine"
        elif fault == "echo_key_text":
            text = f"cannot grade; request came with key {key}"
        else:
            text = json.dumps(fake_verdict(item))
        model = path.rsplit("/", 1)[-1].split(":", 1)[0] if gemini else body.get("model", "")
        extra = {_TRICKLE: str(self.trickle)} if fault == "trickle" else {}
        tokens_in, tokens_out = self._usage(body, prompt, gemini)
        with self._lock:
            self.tokens_in += tokens_in
            self.tokens_out += tokens_out
        return 200, (_gemini_reply(text, model, tokens_in, tokens_out) if gemini
                     else _openai_reply(text, model, tokens_in, tokens_out)), extra

    def _usage(self, body: dict[str, Any], prompt: str, gemini: bool) -> tuple[int, int]:
        if self.usage == "fixed":
            return 100, 20
        if gemini:
            system = "".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
        else:
            system = "".join(m["content"] for m in body["messages"][:-1] if m.get("role") == "system")
        return math.ceil(len(system + prompt) / 4), 20

    def _batch_answer(self, request: dict[str, Any], model: str) -> dict[str, Any]:
        """A batch request's reply: what the synchronous endpoint would answer."""
        text = "I think the prediction is probably fine" if request.get("_malformed") else \
            json.dumps(fake_verdict(_batch_item(request)))
        return _gemini_reply(text, model)


_TRICKLE = "x-fake-trickle"  # answer() tells the handler to trickle the reply (never sent)


class _Trickle:
    """A socket file that writes one byte per ``interval`` seconds."""

    def __init__(self, raw, interval: float):
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



def _batch_item(request: dict[str, Any]) -> dict[str, str]:
    return parse_item_block(request["contents"][-1]["parts"][0]["text"])


def _gemini_reply(text: str, model: str, tokens_in: int = 100, tokens_out: int = 20) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": tokens_in, "candidatesTokenCount": tokens_out,
                              "totalTokenCount": tokens_in + tokens_out},
            "modelVersion": model}


def _openai_reply(text: str, model: str, tokens_in: int = 100, tokens_out: int = 20) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out,
                      "total_tokens": tokens_in + tokens_out}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Gemini / OpenAI-compatible judge on 127.0.0.1.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    args = parser.parse_args(argv)
    with FakeJudgeServer(latency=args.latency) as server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
