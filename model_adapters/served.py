"""What the served models under test share (``openai_vlm``, ``gemini_vlm``): frames sampled and
JPEG-encoded ahead in worker processes (:mod:`egotask.frame_workers`; ``frame_workers=0``: in threads
of this process), up to ``concurrency`` requests in flight from one asyncio loop, retries with
exponential backoff that honour ``Retry-After`` (the policy of :mod:`egotask.vendors.retry`, the judge's too),
and per-item failures. The requests are async (one event loop, many in flight, as frames are encoded
in other processes); the judge's are threaded (lmms-eval calls it from its own threads), over the same
policy and the same vendor clients (:mod:`egotask.vendors`).

How a request ends:
- a reply: the item's answer (and the answer cache keeps it, through :class:`FramesModel`);
- a reply without an answer (content null, a refusal, a content filter): a generation failure of that
  item, never cached;
- a 200 that is not a completion (:class:`~egotask.vendors.retry.BadReply`: an HTML page, JSON cut short,
  an error object):
  classified with the server's own message; retried when transient (the first two, and an error
  object whose code is 408/409/429/5xx or none);
- 408/409/429/5xx, a timeout or a connection error: retried, up to ``max_attempts`` attempts in all,
  waiting ``backoff`` s doubled each time with jitter, and never less than the server's
  ``Retry-After`` (capped at ``retry_after_cap`` s);
- retries spent, or another 4xx (a request this endpoint will not take): a generation failure of that
  item only: recorded, counted apart, never judged and never scored as wrong;
- a refused key, an unknown model or endpoint (401/403/404), or an endpoint that has answered nothing
  after ``give_up_after`` items failed in a row: the run stops with an error that says what to fix
  (every item would fail alike); the answers already made stay in the cache for the rerun.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from egotask import frame_workers as workers_module
from egotask.frame_workers import FrameWorkerCrashed, Timed, sample_encoded_timed
from egotask.frames import SampledFrames, VideoError
from egotask.model_adapters.base import (
    NO_FRAMES,
    FramesModel,
    GenerationFailure,
    PendingItem,
    Reply,
    VideoPrompt,
    as_reply,
    parse_bool,
    unreadable,
)
from egotask.vendors.retry import Answer, BadReply, Failure, NoAnswer, RetryPolicy


class ServedModelError(RuntimeError):
    """The endpoint refuses every request alike (key, model, URL, or it answers nothing): the run stops."""


@dataclasses.dataclass
class EncodedPrompt(VideoPrompt):
    """A prompt whose frames are already JPEG bytes (one list per video, in frame order). The videos
    keep their timestamps; their pixels are dropped once encoded (a request holds only the JPEGs)."""

    jpegs: list[list[bytes]] = dataclasses.field(default_factory=list)


def _number(name: str, value: Any, kind: type, minimum: float) -> Any:
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"--model_args {name}={value!r}: expected a {kind.__name__}") from None
    if out < minimum:
        raise ValueError(f"--model_args {name}={value!r}: must be >= {minimum}")
    return out


class ServedModel(FramesModel):
    """Base of adapters that send each item to a served model. A subclass opens its client
    (:meth:`open_client`), sends one prompt (:meth:`send`) and classifies exceptions (:meth:`classify`)."""

    backend = "served"
    decode_workers = 4  # threads, with frame_workers=0
    # --model_args that decide how requests are scheduled, not what is answered: the answer cache
    # ignores them, so a rerun with another concurrency still reuses every answer.
    scheduling_args = ("concurrency", "timeout", "max_attempts", "backoff", "retry_after_cap", "give_up_after",
                       "frame_workers")
    default_max_new_tokens: int | None = None  # None: the server's default

    def __init__(self, model: str, concurrency: int | str = 8, timeout: float | str = 120.0,
                 max_attempts: int | str = 5, backoff: float | str = 1.0, retry_after_cap: float | str = 60.0,
                 give_up_after: int | str = 3, jpeg_quality: int | str = 90,
                 max_new_tokens: int | str | None = None, frame_workers: int | str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not model:
            raise ValueError(f"{self.family}: --model_args model=<name> is required (the model the endpoint serves)")
        self.model = str(model)
        self.concurrency = _number("concurrency", concurrency, int, 1)
        self.timeout = _number("timeout", timeout, float, 0.001)
        self.max_attempts = _number("max_attempts", max_attempts, int, 1)
        self.backoff = _number("backoff", backoff, float, 0)
        self.retry_after_cap = _number("retry_after_cap", retry_after_cap, float, 0)
        self.policy = RetryPolicy(self.max_attempts, self.backoff, retry_after_max=self.retry_after_cap,
                                  backoff_cap=max(self.retry_after_cap, self.backoff))
        self.give_up_after = _number("give_up_after", give_up_after, int, 1)
        self.jpeg_quality = _number("jpeg_quality", jpeg_quality, int, 1)
        if max_new_tokens not in (None, "", "None"):
            self.default_max_new_tokens = _number("max_new_tokens", max_new_tokens, int, 1)
        self.frame_workers = (workers_module.default_workers() if frame_workers in (None, "", "None")
                              else _number("frame_workers", frame_workers, int, 0))
        from egotask.plan import planning_active

        # --plan builds the adapter only to name its answers: no worker processes for it.
        self._workers = (workers_module.shared(self.frame_workers) if self.frame_workers and not planning_active()
                         else None)
        if self._workers is not None:
            self._workers.start()  # they import while lmms-eval builds the tasks
        self.stats.update(requests=0, retries=0)
        self._answered = 0  # replies received in this process: an endpoint that gave one is up
        self._failed_in_a_row = 0

    # ----------------------------------------------------------------- identity

    def model_id(self) -> str:
        return self.model

    def model_fingerprint(self) -> list[Any]:
        args = {k: v for k, v in getattr(self, "_init_args", {}).items() if k not in self.scheduling_args}
        return [type(self).__qualname__, self.backend, self.model, args]

    # ----------------------------------------------------------------- frames

    def sample(self, item: PendingItem) -> EncodedPrompt:
        """The item's frames and their JPEGs, made in this thread."""
        return self._encoded_prompt(item, lambda: sample_encoded_timed(item.visuals, item.frames, self.jpeg_quality))

    def decode_ahead(self) -> int:
        return self.concurrency + 2 * (self.frame_workers or self.decode_workers)  # a request waits for none

    def submit_sample(self, pool: ThreadPoolExecutor, item: PendingItem) -> Future:
        if self._workers is None:
            return super().submit_sample(pool, item)
        return self._workers.submit(item.visuals, item.frames, self.jpeg_quality)

    def take_sample(self, item: PendingItem, job: Future) -> EncodedPrompt | GenerationFailure:
        if self._workers is None:
            return super().take_sample(item, job)
        try:
            return self._encoded_prompt(item, job.result)
        except GenerationFailure as exc:
            return exc

    def _encoded_prompt(self, item: PendingItem, encode: Callable[[], Timed]) -> EncodedPrompt:
        try:
            encoded, seconds = encode()
        except (VideoError, FrameWorkerCrashed, ValueError, OSError) as exc:
            raise unreadable(exc) from exc
        if any(not jpegs for _, jpegs in encoded):
            raise GenerationFailure(NO_FRAMES)
        return EncodedPrompt(item.text, [video for video, _ in encoded], item.gen_kwargs, item.doc, decode_s=seconds,
                             jpegs=[jpegs for _, jpegs in encoded])

    # ----------------------------------------------------------------- generation settings

    def max_new_tokens(self, gen_kwargs: dict[str, Any]) -> int | None:
        value = gen_kwargs.get("max_new_tokens", self.default_max_new_tokens)
        return None if value in (None, "") else int(value)

    def sampling(self, gen_kwargs: dict[str, Any]) -> dict[str, float]:
        """Greedy (temperature 0) unless --gen_kwargs asks for sampling."""
        temperature = float(gen_kwargs.get("temperature", 0) or 0)
        if parse_bool(gen_kwargs.get("do_sample", False)) and temperature > 0:
            out = {"temperature": temperature}
            if gen_kwargs.get("top_p") is not None:
                out["top_p"] = float(gen_kwargs["top_p"])
            return out
        return {"temperature": 0.0}

    # ----------------------------------------------------------------- what a subclass provides

    where = "the endpoint"  # for messages: the model and where it is served

    @property
    def timeout_message(self) -> str:
        return f"{self.where}: no reply within {self.timeout:g} s (--model_args timeout)"

    async def open_client(self) -> Any:
        raise NotImplementedError

    async def close_client(self, client: Any) -> None:
        pass

    async def send(self, client: Any, prompt: EncodedPrompt) -> Answer | str:
        """One attempt: the reply's answer, with the tokens the API reported (or its text alone). Raise
        :class:`~egotask.vendors.retry.NoAnswer` when the reply itself says there is no answer
        (blocked); any other exception goes to :meth:`classify`."""
        raise NotImplementedError

    def classify(self, exc: Exception) -> Failure:
        raise NotImplementedError

    # ----------------------------------------------------------------- scheduling

    def answer(self, prompts: Iterator[tuple[PendingItem, VideoPrompt | GenerationFailure]]
               ) -> Iterator[tuple[PendingItem, str | GenerationFailure]]:
        """Up to ``concurrency`` requests in flight, fed from the prompts as they are decoded; replies
        are yielded as they complete (so each is cached at once)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"{self.family}-requests", daemon=True)
        thread.start()
        done: queue.SimpleQueue[tuple[PendingItem, Future]] = queue.SimpleQueue()
        in_flight: set[Future] = set()
        client = None

        def finished(item: PendingItem, future: Future) -> tuple[PendingItem, str | GenerationFailure]:
            in_flight.discard(future)
            reply = future.result()  # a ServedModelError (or a bug) stops the run here
            self._check_endpoint(reply)
            return item, reply

        try:
            client = asyncio.run_coroutine_threadsafe(self.open_client(), loop).result()
            for item, prompt in prompts:
                if isinstance(prompt, GenerationFailure):
                    yield item, prompt
                    continue
                while len(in_flight) >= self.concurrency:
                    yield finished(*done.get())
                future = asyncio.run_coroutine_threadsafe(self._answer_one(client, prompt), loop)
                in_flight.add(future)
                future.add_done_callback(lambda f, item=item: done.put((item, f)))
                while not done.empty():
                    yield finished(*done.get_nowait())
            while in_flight:
                yield finished(*done.get())
        finally:
            for future in list(in_flight):
                future.cancel()
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(client), loop).result(timeout=30)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=30)
                loop.close()

    async def _shutdown(self, client: Any) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.gather(*tasks, return_exceptions=True)
        if client is not None:
            await self.close_client(client)

    def _check_endpoint(self, reply: str | GenerationFailure) -> None:
        """An endpoint that has answered nothing while ``give_up_after`` items failed in a row is down or
        misconfigured: stop rather than fail every item the same way."""
        if not isinstance(reply, GenerationFailure) or reply.replied:
            self._answered += 1  # a refusal is a reply too: the endpoint is up
            self._failed_in_a_row = 0
            return
        self._failed_in_a_row += 1
        if not self._answered and self._failed_in_a_row >= self.give_up_after:
            raise ServedModelError(
                f"{self.family}: the endpoint answered none of the first {self._failed_in_a_row} items (last: "
                f"{reply}); stopping rather than failing every item. Check that the server is up and the "
                "--model_args (base_url, model); the answers already made are kept for the rerun.")

    async def _answer_one(self, client: Any, prompt: EncodedPrompt) -> str | GenerationFailure:
        """The item's reply, timed from its first request going out to its reply (retries included)."""
        started, began = time.time(), time.perf_counter()
        reply = await self._attempts(client, prompt)
        latency = time.perf_counter() - began
        if isinstance(reply, GenerationFailure):
            reply.started, reply.latency_s = started, latency
            return reply
        return as_reply(reply).timed(started, latency)

    async def _attempts(self, client: Any, prompt: EncodedPrompt) -> Reply | GenerationFailure:
        for attempt in range(1, self.max_attempts + 1):
            self.stats["requests"] += 1
            try:
                answer = await self.send(client, prompt)
                if not isinstance(answer, Answer):  # a plain text: a plugin's own send, without token counts
                    return as_reply(answer)
                return Reply(answer.text, prompt_tokens=answer.prompt_tokens,
                             completion_tokens=answer.completion_tokens)
            except (NoAnswer, GenerationFailure) as exc:  # the endpoint replied, without an answer (refused, filtered)
                failure = exc if isinstance(exc, GenerationFailure) else GenerationFailure(str(exc))
                failure.replied = True
                return failure
            except BadReply as exc:
                error = exc.failure
            except Exception as exc:  # noqa: BLE001 - every failure is classified; none may escape unjudged
                error = self.classify(exc)
            if error.kind == "fatal":
                raise ServedModelError(f"{self.family}: {error.message}")
            if self.policy.gives_up(error, attempt):
                return GenerationFailure(error.message + (f" (after {attempt} attempts)" if attempt > 1 else ""))
            self.stats["retries"] += 1
            await asyncio.sleep(self.policy.delay(attempt, error.retry_after))
        raise AssertionError("unreachable")


def frame_label(time_s: float) -> str:
    """The text part before each frame sent as an image, so the model knows when it was taken."""
    return f"Frame at {time_s:.2f} s:"


def video_metadata(video: SampledFrames) -> dict[str, Any]:
    """The sampled frames' real times as vLLM's ``video/jpeg`` loader takes them (per-request
    ``media_io_kwargs``): frame numbers at the stream's rate, so time = index / fps, as the HF path
    tells the processor. ``num_frames`` is the count sent: the loader keeps only its first
    ``num_frames`` JPEGs (32 unless the server's --media-io-kwargs say otherwise)."""
    indices = video.frame_indices()
    return {"num_frames": len(indices), "fps": float(video.fps), "frames_indices": indices,
            "total_num_frames": max(len(indices), max(indices, default=-1) + 1), "duration": float(video.end)}
