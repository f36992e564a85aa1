"""Frame sampling and JPEG encoding in worker processes, for the served models under test.

A served model's own work is Python that holds the GIL: its HTTP client building, sending and parsing
requests on one event loop. Frames decoded by threads of the same process compete with that loop, and
at 32 requests in flight the loop, not the server, then sets the pace. Worker processes decode and
encode beside it instead and hand back only what a request carries: the JPEG bytes and the frames'
times. They run at a lower priority (nice 10, and Linux's SCHED_BATCH), so that a reply is never
handled late for a frame decoded early: on two cores that took ``engine_throughput.py`` from about
0.80 to 0.88 of the ideal. The cost: on a machine whose cores are all busy with other work they get
less than their share, and ``frame_workers=0`` (threads of this process) may then be faster.

Each worker is ``python -m egotask.frame_workers``, fed one pickled job at a time on its stdin and
answering on its stdout, so it imports nothing of the parent's (multiprocessing's spawn would re-run
the parent's main script, which breaks under Streamlit and in unguarded scripts). A worker that dies
(a decoder crash) fails only the job it had, with :class:`FrameWorkerCrashed`, and is restarted; one
whose parent is gone sees its stdin close and leaves.
"""

from __future__ import annotations

import atexit
import dataclasses
import io
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, BinaryIO

from egotask.frames import SampledFrames, sample_visual

Encoded = list[tuple[SampledFrames, list[bytes]]]  # per visual: its frames' times (no pixels), its JPEGs
Timed = tuple[Encoded, float]  # and the seconds it took to decode and encode them
READY = "ready"


class FrameWorkerCrashed(RuntimeError):
    """The worker process died while it had this job (the decoder crashed on its video)."""


def encode_jpeg(frame: Any, quality: int = 90) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def sample_encoded(visuals: list[str], frames: dict[str, Any], quality: int) -> Encoded:
    """Each visual's frames, sampled from its visible interval with the item's frame settings, as JPEGs.
    The sampled frames keep their times and the stream's rate; their pixels are dropped."""
    out = []
    for visual in visuals:
        sampled = sample_visual(visual, max_frames=frames["max_frames"], fps=frames["fps"],
                                max_pixels=frames["max_pixels"])
        jpegs = [encode_jpeg(frame, quality) for frame in sampled.frames]
        out.append((dataclasses.replace(sampled, frames=sampled.frames[:0]), jpegs))
    return out


def sample_encoded_timed(visuals: list[str], frames: dict[str, Any], quality: int) -> Timed:
    """:func:`sample_encoded`, with the seconds it took (where it ran: a worker's queue is not counted)."""
    began = time.perf_counter()
    encoded = sample_encoded(visuals, frames, quality)
    return encoded, time.perf_counter() - began


def default_workers() -> int:
    """One worker per core, at most 8 (more decode faster than any endpoint answers)."""
    return max(1, min(os.cpu_count() or 1, 8))


# --------------------------------------------------------------------------- the parent's side

class _Worker:
    """One worker process and the thread that feeds it jobs from the shared queue, one at a time."""

    def __init__(self, jobs: queue.SimpleQueue, number: int) -> None:
        self.jobs = jobs
        self.ready: Future = Future()
        self.process: subprocess.Popen | None = None
        self._start()
        threading.Thread(target=self._serve, daemon=True, name=f"frame-worker-{number}").start()

    def _start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "egotask.frame_workers"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)

    def _serve(self) -> None:
        """Keep two jobs in the worker (one decoding, the next already read), so it never idles
        waiting for this thread; answers come back in order."""
        started = self._read_ready()
        in_worker: deque[tuple[Future, bytes]] = deque()
        while True:
            while len(in_worker) < 2:
                try:
                    job = self.jobs.get(block=not in_worker)
                except queue.Empty:
                    break
                if job is None:  # shut down
                    for future, _ in in_worker:
                        future.cancel()
                    self._stop()
                    return
                future, args = job
                if not future.set_running_or_notify_cancel():
                    continue
                if started is not None:  # this worker cannot start: every job it takes fails with why
                    future.set_exception(started)
                    continue
                try:
                    data = pickle.dumps(args)
                except Exception as exc:  # noqa: BLE001 - a job that does not pickle fails alone
                    future.set_exception(exc)
                    continue
                in_worker.append((future, data))
                if not self._send(data):
                    break
            if not in_worker:
                continue
            try:
                ok, value = pickle.load(self.process.stdout)
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                # It died on the job it was decoding (the first); the one behind it goes to its successor.
                status = self.process.wait()
                future, _ = in_worker.popleft()
                future.set_exception(FrameWorkerCrashed(
                    f"the frame worker died (exit status {status}) while it sampled this item's frames"
                    + ("" if isinstance(exc, EOFError) else f" ({exc})")))
                self._start()
                started = self._read_ready()
                for future, data in list(in_worker):
                    if started is not None:
                        in_worker.remove((future, data))
                        future.set_exception(started)
                    else:
                        self._send(data)
                continue
            future, _ = in_worker.popleft()
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _send(self, data: bytes) -> bool:
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
            return True
        except OSError:  # it died: the read that follows finds out and says so
            return False

    def _read_ready(self) -> Exception | None:
        """Wait for the worker's first word: None when it is ready, else the error of its every job."""
        try:
            said = pickle.load(self.process.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            said = exc
        error = None if said == READY else FrameWorkerCrashed(
            f"a frame worker ({sys.executable} -m egotask.frame_workers) did not start: {said!r}; its error "
            "is above")
        if not self.ready.done():
            if error is None:
                self.ready.set_result(True)
            else:
                self.ready.set_exception(error)
        return error

    def _stop(self) -> None:
        try:
            self.process.stdin.close()  # the worker leaves at the end of its input
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


class FrameWorkers:
    """``workers`` worker processes sharing one queue of jobs, started by :meth:`start`."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._running: list[_Worker] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the workers now, without waiting: they import while the run gets ready."""
        with self._lock:
            if not self._running:
                self._running = [_Worker(self._jobs, n) for n in range(self.workers)]

    def wait_ready(self) -> None:
        """Block until every worker has its imports done (for benchmarks that time the steady state)."""
        self.start()
        for worker in self._running:
            worker.ready.result()

    def submit(self, visuals: list[str], frames: dict[str, Any], quality: int) -> Future:
        """A future of :func:`sample_encoded_timed`'s result (the encoded frames and the seconds the worker
        took), or of its error (``FrameWorkerCrashed`` if the worker died on it)."""
        self.start()
        future: Future = Future()
        self._jobs.put((future, (list(visuals), dict(frames), quality)))
        return future

    def shutdown(self) -> None:
        with self._lock:
            for _ in self._running:
                self._jobs.put(None)
            self._running = []


_SHARED: dict[int, FrameWorkers] = {}
_SHARED_LOCK = threading.Lock()


def shared(workers: int) -> FrameWorkers:
    """The process's pool of ``workers`` frame workers, made on first use and stopped at exit."""
    with _SHARED_LOCK:
        if workers not in _SHARED:
            _SHARED[workers] = FrameWorkers(workers)
            atexit.register(_SHARED[workers].shutdown)
        return _SHARED[workers]


# --------------------------------------------------------------------------- the worker's side

def _lower_priority() -> None:
    try:
        if hasattr(os, "nice"):
            os.nice(10)
        if hasattr(os, "SCHED_BATCH"):  # Linux: a waking worker does not preempt the request loop
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:  # not permitted here: run at the parent's priority
        pass


def serve(jobs: BinaryIO, answers: BinaryIO) -> None:
    """Answer each pickled ``(visuals, frames, quality)`` with ``(True, result)`` or ``(False, error)``
    until the input ends."""
    import PIL.Image  # noqa: F401 - imported before saying ready, as the first job would

    _lower_priority()
    pickle.dump(READY, answers)
    answers.flush()
    while True:
        try:
            args = pickle.load(jobs)
        except EOFError:
            return
        try:
            reply = pickle.dumps((True, sample_encoded_timed(*args)))
        except Exception as exc:  # noqa: BLE001 - every error goes back to its item
            try:
                reply = pickle.dumps((False, exc))
            except Exception:  # noqa: BLE001 - an error that does not pickle goes back as its text
                reply = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        answers.write(reply)
        answers.flush()


def main() -> None:
    # The answers get a descriptor of their own: anything a library prints goes to stderr instead.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
