"""Frame sampling and JPEG encoding in worker processes, for the served models under test.

A served model's own work is Python that holds the GIL: its HTTP client building, sending and parsing
requests on one event loop. Frames decoded by threads of the same process compete with that loop, and
at 32 requests in flight the loop, not the server, then sets the pace. Worker processes decode and
encode beside it instead and hand back only what a request carries: the JPEG bytes and the frames'
times. They run at a lower priority (nice 10, and Linux's SCHED_BATCH), so that a reply is never
handled late for a frame decoded early: on two cores that took ``engine_throughput.py`` from about
0.80 to 0.88 of the ideal. The cost: on a machine whose cores are all busy with other work they get
less than their share, and ``frame_workers=0`` (threads of this process) may then be faster.

The workers are spawned (nothing the parent holds, threads or CUDA, is copied into them) once per
process and shared by every served model in it; they import PyAV, NumPy and Pillow only. As with any
spawned process, a script that builds a served model needs an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import atexit
import dataclasses
import io
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from egotask.frames import SampledFrames, sample_visual

Encoded = list[tuple[SampledFrames, list[bytes]]]  # per visual: its frames' times (no pixels), its JPEGs


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


def default_workers() -> int:
    """One worker per core, at most 8 (more decode faster than any endpoint answers)."""
    return max(1, min(os.cpu_count() or 1, 8))


def _init_worker(parent: int) -> None:
    try:
        os.nice(10)
        if hasattr(os, "SCHED_BATCH"):  # Linux: a waking worker does not preempt the request loop
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:  # not permitted here: run at the parent's priority
        pass
    # A parent killed outright (kill -9, the OOM killer) cannot stop its workers, and a worker waiting
    # for its next job would wait forever: each one leaves once its parent is gone.
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _ready() -> bool:
    import PIL.Image  # noqa: F401 - what the first real job would import

    return True


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(),))


class FrameWorkers:
    """A pool of ``workers`` processes, started by :meth:`start` (or the first submit)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._started: list[Future] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the workers now, without waiting: they import while the run gets ready."""
        with self._lock:
            if self._pool is None:
                self._pool = _pool(self.workers)
                self._started = [self._pool.submit(_ready) for _ in range(self.workers)]

    def wait_ready(self) -> None:
        """Block until every worker has started (for benchmarks that time only the steady state)."""
        self.start()
        for future in self._started:
            future.result()

    def submit(self, visuals: list[str], frames: dict[str, Any], quality: int) -> Future:
        """A future of :func:`sample_encoded`. If a worker died (a decoder crash), the futures then in
        flight fail with ``BrokenProcessPool`` and the next submit starts a fresh pool."""
        with self._lock:
            if self._pool is None:
                self._pool = _pool(self.workers)
            try:
                return self._pool.submit(sample_encoded, list(visuals), dict(frames), quality)
            except BrokenProcessPool:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = _pool(self.workers)
                return self._pool.submit(sample_encoded, list(visuals), dict(frames), quality)

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def sample_alone(visuals: list[str], frames: dict[str, Any], quality: int) -> Encoded:
    """:func:`sample_encoded` in a one-off worker of its own: for an item whose pool broke, so that a
    video that crashes the decoder fails only its own item (``BrokenProcessPool`` again)."""
    with _pool(1) as pool:
        return pool.submit(sample_encoded, list(visuals), dict(frames), quality).result()


_SHARED: dict[int, FrameWorkers] = {}
_SHARED_LOCK = threading.Lock()


def shared(workers: int) -> FrameWorkers:
    """The process's pool of ``workers`` frame workers, made on first use and shut down at exit."""
    with _SHARED_LOCK:
        if workers not in _SHARED:
            _SHARED[workers] = FrameWorkers(workers)
            atexit.register(_SHARED[workers].shutdown)
        return _SHARED[workers]
