"""Judging through Gemini's Batch API: every item not in the verdict cache goes out as one batch job,
at half the price of standard requests (Google's target is 24 h).

- **Inline or file.** Requests travel inline when their JSON is under the inline limit (the API takes
  up to 20 MB), otherwise as a JSONL file of ``{"key", "request"}`` lines uploaded through the Files
  API. Every request carries the synchronous judge's own config: the system prompt, temperature 0 and
  the reply schema.
- **Never twice.** Before anything is sent, the job is written to ``$EGOTASK_CACHE_DIR/batch_jobs/``
  (a JSON file per job: its items, then its name once created), under a lock. A later
  ``egotask judge --batch`` over the same items finds the job there and polls it instead of submitting
  again; a job whose creation was interrupted before its name was saved is found by its display name.
- **Matched by key.** Each request's key is the verdict cache key of its item, so a response is
  matched to its item by key, never by position, and lands in the same SQLite cache as synchronous
  verdicts.
- **Failures.** An item the job answered with an error or an unreadable reply, or did not answer (a
  job that failed part-way), becomes a failure verdict, listed, and can be re-sent synchronously:
  ``egotask judge`` without ``--batch`` asks only about uncached items.
- **Cost.** Tokens in and out come from each response's ``usage_metadata``.
"""

from __future__ import annotations

import io
import json
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from egotask.atomic import write_text
from egotask.judges.base import Judge, JudgeItem
from egotask.judges.cache import cache_dir
from egotask.judges.gemini import GeminiJudge, reply_text, request_config, rest_request, usage_tokens
from egotask.judges.parse import UnreadableReply, parse_reply
from egotask.judges.secrets import redact
from egotask.records import Verdict

JOBS_FOLDER = "batch_jobs"
JOB_FILE_VERSION = 1
INLINE_LIMIT_BYTES = 20_000_000  # the Batch API's inline limit (20 MB) for all requests together
ENDED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
         "JOB_STATE_PARTIALLY_SUCCEEDED")
SUBMITTING = "SUBMITTING"  # our state of a job written down but not (known to be) created yet


class BatchError(RuntimeError):
    """The batch cannot go on (a rejected key, an unknown job); the message says what to do."""


@dataclass
class BatchJob:
    """One batch job as egotask keeps it, in ``batch_jobs/<id>.json``."""

    id: str
    judge: dict[str, str]  # judge, judge_model, prompt_version
    items: dict[str, list[str]]  # key -> [question, reference, prediction, question_type]
    mode: str  # "inline" | "file"
    created: str
    name: str | None = None  # batches/..., once the API has created the job
    state: str = SUBMITTING
    input_file: str | None = None  # files/..., the uploaded requests (file mode)
    collected: bool = False  # its responses are in the cache (and its failures below)
    failed: dict[str, str] = field(default_factory=dict)  # key -> why the batch gave no verdict
    tokens_in: int = 0
    tokens_out: int = 0
    path: Path | None = None

    @property
    def display_name(self) -> str:
        return f"egotask-{self.id}"

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def judge_item(self, key: str) -> JudgeItem:
        question, answer, prediction, qtype = self.items[key]
        return JudgeItem(question, answer, prediction, qtype)

    def to_dict(self) -> dict[str, Any]:
        return {"version": JOB_FILE_VERSION, "id": self.id, "display_name": self.display_name, "name": self.name,
                "state": self.state, "judge": self.judge, "mode": self.mode, "input_file": self.input_file,
                "created": self.created, "collected": self.collected, "n_items": len(self.items),
                "failed": self.failed, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "items": self.items}

    @classmethod
    def from_file(cls, path: Path) -> BatchJob:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(id=data["id"], judge=data["judge"], items=data["items"], mode=data["mode"],
                       created=data["created"], name=data.get("name"), state=data.get("state") or SUBMITTING,
                       input_file=data.get("input_file"), collected=bool(data.get("collected")),
                       failed=data.get("failed") or {}, tokens_in=int(data.get("tokens_in") or 0),
                       tokens_out=int(data.get("tokens_out") or 0), path=path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BatchError(f"{path}: not a readable egotask batch job file ({exc}); move it away to go on") from None


class JobStore:
    """The job files under the cache folder, written whole (a killed write leaves the old file)."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or cache_dir() / JOBS_FOLDER

    def lock(self) -> Any:
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / ".lock"))

    def jobs(self) -> list[BatchJob]:
        if not self.folder.is_dir():
            return []
        return [BatchJob.from_file(p) for p in sorted(self.folder.glob("*.json"))]

    def save(self, job: BatchJob) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        job.path = job.path or self.folder / f"{job.id}.json"
        write_text(job.path, json.dumps(job.to_dict(), ensure_ascii=False))


@dataclass
class BatchOutcome:
    """What a batch run settled: a verdict (or a failure) for each key, and the jobs involved."""

    verdicts: dict[str, Verdict]  # every key asked about whose verdict is known (cache or job)
    jobs: list[BatchJob]  # the jobs holding this run's items, in creation order
    submitted: list[BatchJob]  # jobs this call created
    cache_hits: int

    @property
    def waiting(self) -> list[BatchJob]:
        return [job for job in self.jobs if not job.collected]

    @property
    def done(self) -> bool:
        return not self.waiting

    @property
    def failed(self) -> dict[str, str]:
        return {k: v.error or "" for k, v in self.verdicts.items() if v.failed}

    @property
    def tokens(self) -> tuple[int, int]:
        return sum(j.tokens_in for j in self.jobs), sum(j.tokens_out for j in self.jobs)

    @property
    def requests(self) -> int:
        """Requests sent in batch jobs for this run's items."""
        return sum(len(j.items) for j in self.jobs)


class BatchJudge:
    """Runs one batch over a :class:`GeminiJudge`'s items; see the module docstring."""

    def __init__(self, judge: Judge, store: JobStore | None = None, inline_limit: int = INLINE_LIMIT_BYTES,
                 poll_interval: float = 30.0, progress: bool = True):
        if not isinstance(judge, GeminiJudge):
            raise BatchError(f"--batch needs the gemini judge (Gemini's Batch API); the {judge.name} judge has "
                             "none: leave out --batch to judge synchronously")
        if not judge.cache.writes:
            raise BatchError("--batch keeps its verdicts in the verdict cache, to resume after a kill; it cannot "
                             "run with the cache off (--no-cache / EGOTASK_JUDGE_CACHE=off)")
        self.judge = judge
        self.store = store or JobStore()
        self.inline_limit = inline_limit
        self.poll_interval = poll_interval
        self.progress = progress

    # ------------------------------------------------------------------ the run

    def run(self, items: Sequence[JudgeItem], wait: bool = False) -> BatchOutcome:
        """Submit the uncached items (unless a job already holds them), poll the jobs once or, with
        ``wait``, until they end, and collect the ended ones."""
        self.judge.check_ready()
        keyed: dict[str, JudgeItem] = {}
        for item in items:
            keyed.setdefault(self.judge.item_key(item), item)
        verdicts: dict[str, Verdict] = {}
        for key in keyed:
            cached = self.judge.cache.get(key)
            if cached is not None:
                verdicts[key] = cached
        cache_hits = len(verdicts)
        todo = {k: v for k, v in keyed.items() if k not in verdicts}
        submitted: list[BatchJob] = []
        with self.store.lock():
            identity = self.judge.describe()
            mine = [job for job in self.store.jobs()
                    if not job.collected and job.judge == identity and todo.keys() & job.items.keys()]
            for job in mine:
                if job.name is None:
                    self._resume_submission(job)
            held = {k for job in mine for k in job.items}
            fresh = {k: v for k, v in todo.items() if k not in held}
            if fresh:
                job = self._submit(fresh)
                submitted.append(job)
                mine.append(job)
        self._poll(mine, wait)
        for job in mine:
            if job.collected:
                verdicts.update(self._verdicts_of(job, todo))
        return BatchOutcome(verdicts, mine, submitted, cache_hits)

    # ------------------------------------------------------------------ submitting

    def _submit(self, items: Mapping[str, JudgeItem]) -> BatchJob:
        lines = [{"key": key, "request": rest_request(self.judge.spec, *self.judge.prompts(item))}
                 for key, item in items.items()]
        size = sum(len(json.dumps(line, ensure_ascii=False).encode()) for line in lines)
        stamp = datetime.now(timezone.utc)
        job = BatchJob(id=f"{stamp:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}", judge=self.judge.describe(),
                       items={k: [i.question, i.answer, i.prediction, i.question_type] for k, i in items.items()},
                       mode="inline" if size <= self.inline_limit else "file",
                       created=stamp.isoformat(timespec="seconds"))
        self.store.save(job)  # written down before anything is sent: a kill from here on cannot send it twice
        self._create(job)
        return job

    def _create(self, job: BatchJob) -> None:
        from google.genai import types

        client = self.judge.client
        if job.mode == "file":
            if job.input_file is None:
                data = "".join(json.dumps({"key": key, "request": rest_request(
                    self.judge.spec, *self.judge.prompts(job.judge_item(key)))}, ensure_ascii=False) + "\n"
                    for key in job.items).encode()
                uploaded = self._api("upload the batch requests", client.files.upload, file=io.BytesIO(data),
                                     config=types.UploadFileConfig(mime_type="application/jsonl",
                                                                   display_name=job.display_name))
                job.input_file = uploaded.name
                self.store.save(job)
            src: Any = job.input_file
        else:
            system = self.judge.spec.system
            config = request_config(self.judge.spec, system)
            src = [types.InlinedRequest(contents=self.judge.prompts(job.judge_item(key))[1], metadata={"key": key},
                                        config=config) for key in job.items]
        created = self._api("create the batch job", client.batches.create, model=self.judge.model, src=src,
                            config=types.CreateBatchJobConfig(display_name=job.display_name))
        job.name, job.state = created.name, _state(created)
        self.store.save(job)
        print(f"egotask judge: submitted batch job {job.name} ({len(job.items)} items, {job.mode}); its name is "
              f"kept in {job.path}", file=sys.stderr)

    def _resume_submission(self, job: BatchJob) -> None:
        """A job written down whose creation may not have reached the API: adopt the API's job of that
        display name if there is one, else create it now."""
        for remote in self._api("list batch jobs", self.judge.client.batches.list):
            if remote.display_name == job.display_name:
                job.name, job.state = remote.name, _state(remote)
                self.store.save(job)
                return
        self._create(job)

    # ------------------------------------------------------------------ polling and collecting

    def _poll(self, jobs: list[BatchJob], wait: bool) -> None:
        total = sum(len(j.items) for j in jobs if not j.collected)
        bar = tqdm(total=total, unit="item", desc="batch judging", disable=not (wait and self.progress) or not total)
        start = time.monotonic()
        try:
            while True:
                for job in jobs:
                    if job.collected:
                        continue
                    remote = self._api(f"read batch job {job.name}", self.judge.client.batches.get, name=job.name)
                    if _state(remote) != job.state:
                        job.state = _state(remote)
                        self.store.save(job)
                    if job.ended:
                        self._collect(job, remote)
                        bar.update(len(job.items))
                open_jobs = [j for j in jobs if not j.collected]
                bar.set_postfix_str(", ".join(f"{j.name}: {j.state.removeprefix('JOB_STATE_').lower()}"
                                              for j in open_jobs) + f" ({time.monotonic() - start:.0f} s)")
                if not wait or not open_jobs:
                    return
                time.sleep(self.poll_interval)
        finally:
            bar.close()

    def _collect(self, job: BatchJob, remote: Any) -> None:
        """Every response of an ended job into the cache (matched by key); the rest become failures."""
        answered: dict[str, tuple[Any, Any]] = {}  # key -> (response, error)
        dest = remote.dest
        if dest is not None and dest.inlined_responses:
            for response in dest.inlined_responses:
                key = (response.metadata or {}).get("key")
                if key in job.items:
                    answered[key] = (response.response, response.error)
        elif dest is not None and dest.file_name:
            from google.genai import types

            data = self._api("download the batch results", self.judge.client.files.download, file=dest.file_name)
            for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    response = types.GenerateContentResponse.model_validate(row["response"]) \
                        if row.get("response") is not None else None
                except (ValueError, KeyError, TypeError) as exc:
                    print(f"egotask judge: {dest.file_name}:{lineno}: unreadable result line ({exc})", file=sys.stderr)
                    continue
                if row.get("key") in job.items:
                    answered[row["key"]] = (response, row.get("error"))
        failed: dict[str, str] = {}
        tokens_in = tokens_out = 0
        for key in job.items:
            if key not in answered:
                failed[key] = f"the batch job {job.name} ended {job.state} without a response for this item"
                continue
            response, error = answered[key]
            if response is None:
                failed[key] = f"batch item error: {redact(_error_text(error))}"
                continue
            used_in, used_out = usage_tokens(response.usage_metadata)
            tokens_in, tokens_out = tokens_in + used_in, tokens_out + used_out
            text = None
            try:
                text = reply_text(response)
                pred, score, reason = parse_reply(text)
            except UnreadableReply as exc:
                failed[key] = f"unreadable reply: {redact(str(exc))}"
                if text:
                    failed[key] += f" (raw: {redact(text)[:200]})"
                continue
            self.judge.cache.put(key, job.judge_item(key), Verdict(pred=pred, score=score, reason=redact(reason),
                                                                   **self.judge.describe()))
        job.failed, job.tokens_in, job.tokens_out, job.collected = failed, tokens_in, tokens_out, True
        self.store.save(job)

    def _verdicts_of(self, job: BatchJob, keys: Mapping[str, Any]) -> dict[str, Verdict]:
        out: dict[str, Verdict] = {}
        for key in job.items.keys() & keys.keys():
            if key in job.failed:
                out[key] = Verdict.failure(error=job.failed[key], **self.judge.describe())
            else:
                verdict = self.judge.cache.get(key)
                out[key] = verdict if verdict is not None else Verdict.failure(
                    error=f"verdict of batch job {job.name} missing from the cache", **self.judge.describe())
        return out

    # ------------------------------------------------------------------ the API

    def _api(self, what: str, fn: Any, **kwargs: Any) -> Any:
        """One API call; an error stops the batch with a message (the job files keep what was done)."""
        try:
            return fn(**kwargs)
        except Exception as exc:  # noqa: BLE001 - reported with what was being done; nothing is lost
            failure = self.judge._classify(exc)
            hint = " (run the command again to resume)" if failure.kind == "retry" else ""
            raise BatchError(f"could not {what}: {redact(failure.message)}{hint}") from None


class KnownVerdicts(Judge):
    """A judge that answers from verdicts already settled (by a batch), asking nobody: the records are
    written through the same path as synchronous judging."""

    def __init__(self, judge: Judge, verdicts: Mapping[str, Verdict]):
        self.name, self.model, self.prompt_version = judge.name, judge.model, judge.prompt_version
        self.spec = judge.spec  # the same protocol: its shortcuts settle the same items
        self._judge, self._verdicts = judge, verdicts

    def describe(self) -> dict[str, str]:
        return self._judge.describe()

    def judge_many(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        return [self._verdicts.get(self._judge.item_key(item)) or Verdict.failure(
            error="no verdict from the batch", **self.describe()) for item in items]


def _state(job: Any) -> str:
    state = job.state
    return getattr(state, "name", None) or str(state or "JOB_STATE_UNSPECIFIED")


def _error_text(error: Any) -> str:
    if error is None:
        return "no response and no error"
    if isinstance(error, dict):
        return f"{error.get('code', '')} {error.get('message', '')}".strip()
    return f"{getattr(error, 'code', '') or ''} {getattr(error, 'message', '') or ''}".strip() or str(error)
