"""The Gemini Batch API and Files API endpoints of the fake judge server (:mod:`egotask.testing.vendor`),
as google-genai's ``client.batches`` and ``client.files`` call them (paths from the SDK's batches.py and
files.py):

- ``POST /{version}/models/{model}:batchGenerateContent``: create a job from inline requests
  (``batch.inputConfig.requests.requests``: ``{"request", "metadata"}``) or an uploaded JSONL file
  (``batch.inputConfig.fileName``; lines ``{"key", "request"}``);
- ``GET /{version}/batches/{id}`` and ``GET /{version}/batches``: the job (an operation whose
  ``metadata`` holds the state and, once ended, ``output``: ``inlinedResponses`` or a ``responsesFile``);
- ``POST /upload/{version}/files`` (resumable: ``start``, then ``upload, finalize`` at the returned URL);
- ``GET /{version}/files/{id}:download?alt=media``: a results file.

``{version}`` is whatever API version the client uses (google-genai 3.x defaults to ``v1``).

A job runs when it is read after ``delay`` seconds, unless ``hold`` is set; each request is answered as
the synchronous endpoint would (the fake verdict rule). ``faults(item)`` may name a fault for an item:
``"error"`` (the item fails inside the job) or ``"malformed"`` (an unreadable reply).
``fail_after=N`` makes a job fail part-way: it ends ``BATCH_STATE_FAILED`` with only the first N
responses.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlparse

BatchFaults = Callable[[dict[str, str]], str | None]
_VERSION = re.compile(r"^/(upload/)?v1[a-z0-9]*/")
ENDED = ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED")


@dataclass
class FakeJob:
    name: str  # batches/<id>
    display_name: str
    model: str
    source: str  # "inline" | "file"
    requests: list[tuple[dict[str, Any], str | None]]  # (request, key or None), in order
    created: float
    state: str = "BATCH_STATE_PENDING"
    output: dict[str, Any] | None = None
    answered: int = 0


@dataclass
class FakeBatchAPI:
    """State and answers of the batch and file endpoints; the HTTP server routes requests here."""

    answer_request: Callable[[dict[str, Any], str], dict[str, Any]]  # (request, model) -> GenerateContentResponse
    item_of: Callable[[dict[str, Any]], dict[str, str]]  # the judge item a request asks about
    delay: float = 0.0
    hold: bool = False
    faults: BatchFaults | None = None
    fail_after: int | None = None
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)  # job names, in creation order
    gets: int = 0
    uploads: list[str] = field(default_factory=list)
    _uploading: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _route_of(path: str) -> tuple[str, Any]:
        """The path without its API version (``upload/files``, ``batches/x``...) and the parsed URL."""
        url = urlparse(path)
        match = _VERSION.match(url.path)
        rest = url.path[match.end():] if match else url.path.lstrip("/")
        return (f"upload/{rest}" if match and match.group(1) else rest), url

    def handles(self, method: str, path: str) -> bool:
        route, _ = self._route_of(path)
        return (route.endswith(":batchGenerateContent") or route.startswith(("batches", "upload/"))
                or (method == "GET" and route.startswith("files/")))

    def release(self) -> None:
        """Let held jobs run (the next read finishes them)."""
        self.hold = False

    # ------------------------------------------------------------------ routing

    def route(self, method: str, path: str, headers: Any, body: bytes, base_url: str
              ) -> tuple[int, bytes, dict[str, str]]:
        route, url = self._route_of(path)
        with self._lock:
            if method == "POST" and route.endswith(":batchGenerateContent"):
                return self._json(self._create(route, json.loads(body or b"{}")))
            if method == "GET" and route == "batches":
                return self._json({"operations": [self._operation(job) for job in self.jobs.values()]})
            if method == "GET" and route.startswith("batches/"):
                job = self.jobs.get(route)
                if job is None:
                    return self._error(404, f"no such batch {url.path}", "NOT_FOUND")
                self.gets += 1
                return self._json(self._operation(job))
            if method == "POST" and route.startswith("upload/"):
                return self._upload(url, headers, body, base_url)
            if method == "GET" and route.endswith(":download"):
                data = self.files.get(route.removesuffix(":download"))
                if data is None:
                    return self._error(404, f"no such file {url.path}", "NOT_FOUND")
                return 200, data, {"Content-Type": "application/octet-stream"}
        return self._error(404, f"no such endpoint {method} {path}", "NOT_FOUND")

    @staticmethod
    def _json(payload: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        return 200, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}

    @staticmethod
    def _error(code: int, message: str, status: str) -> tuple[int, bytes, dict[str, str]]:
        return code, json.dumps({"error": {"code": code, "message": message, "status": status}}).encode(), \
            {"Content-Type": "application/json"}

    # ------------------------------------------------------------------ files

    def _upload(self, url: Any, headers: Any, body: bytes, base_url: str) -> tuple[int, bytes, dict[str, str]]:
        command = (headers.get("x-goog-upload-command") or "").lower()
        if command == "start":
            upload_id = str(next(self._ids))
            self._uploading[upload_id] = json.loads(body or b"{}").get("file", {})
            return self._json({}, {"x-goog-upload-url": f"{base_url}{url.path}?upload_id={upload_id}"})
        upload_id = parse_qs(url.query).get("upload_id", [""])[0]
        if upload_id not in self._uploading or "finalize" not in command:
            return self._error(400, f"unexpected upload {url.path}?{url.query} ({command})", "INVALID_ARGUMENT")
        meta = self._uploading.pop(upload_id)
        name = f"files/upload-{upload_id}"
        self.files[name] = body
        self.uploads.append(name)
        file = {"name": name, "displayName": meta.get("displayName", ""), "mimeType": meta.get("mimeType", ""),
                "sizeBytes": str(len(body)), "state": "ACTIVE", "uri": f"{base_url}/v1/{name}"}
        return self._json({"file": file}, {"x-goog-upload-status": "final"})

    # ------------------------------------------------------------------ jobs

    def _create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        batch = body.get("batch", {})
        source = batch.get("inputConfig", {})
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        if "fileName" in source:
            lines = self.files[source["fileName"]].decode().splitlines()
            requests = [(row["request"], row.get("key")) for row in map(json.loads, filter(str.strip, lines))]
            kind = "file"
        else:
            requests = [(r["request"], (r.get("metadata") or {}).get("key"))
                        for r in source.get("requests", {}).get("requests", [])]
            kind = "inline"
        name = f"batches/fake-{next(self._ids)}"
        self.jobs[name] = FakeJob(name, batch.get("displayName", ""), model, kind, requests, time.monotonic())
        self.created.append(name)
        return self._operation(self.jobs[name], advance=False)  # a new job is pending, as a real one is

    def _advance(self, job: FakeJob) -> None:
        if job.state in ENDED or self.hold:
            return
        if time.monotonic() - job.created < self.delay:
            job.state = "BATCH_STATE_RUNNING"
            return
        limit = len(job.requests) if self.fail_after is None else min(self.fail_after, len(job.requests))
        answers = [self._answer(request, key, job.model) for request, key in job.requests[:limit]]
        job.answered = limit
        job.state = "BATCH_STATE_SUCCEEDED" if limit == len(job.requests) else "BATCH_STATE_FAILED"
        if job.source == "file":
            out = f"files/{job.name.split('/')[-1]}-responses"
            self.files[out] = "".join(json.dumps({"key": key, **answer}) + "\n" for key, answer in answers).encode()
            job.output = {"responsesFile": out}
        else:
            job.output = {"inlinedResponses": {"inlinedResponses": [
                {**answer, "metadata": {"key": key}} for key, answer in answers]}}

    def _answer(self, request: dict[str, Any], key: str | None, model: str) -> tuple[str | None, dict[str, Any]]:
        fault = self.faults(self.item_of(request)) if self.faults else None
        if fault == "error":
            return key, {"error": {"code": 500, "message": "injected batch item fault", "status": "INTERNAL"}}
        if fault == "malformed":
            return key, {"response": self.answer_request({**request, "_malformed": True}, model)}
        return key, {"response": self.answer_request(request, model)}

    def _operation(self, job: FakeJob, advance: bool = True) -> dict[str, Any]:
        if advance:
            self._advance(job)
        stamp = datetime.fromtimestamp(time.time(), timezone.utc).isoformat().replace("+00:00", "Z")
        failed = sum("error" in a for a in (job.output or {}).get("inlinedResponses", {}).get("inlinedResponses", []))
        meta: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{job.model}", "displayName": job.display_name, "name": job.name,
            "createTime": stamp, "updateTime": stamp, "state": job.state,
            "batchStats": {"requestCount": str(len(job.requests)),
                           "successfulRequestCount": str(job.answered - failed),
                           "failedRequestCount": str(failed),
                           "pendingRequestCount": str(len(job.requests) - job.answered)},
        }
        if job.output is not None:
            meta["output"] = job.output
        out: dict[str, Any] = {"name": job.name, "metadata": meta}
        if job.state in ENDED:
            out["done"] = True
        return out
