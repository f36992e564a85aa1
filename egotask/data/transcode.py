"""One decode/encode pass over a video with PyAV: optional cut, lower frame rate, smaller size.

``egotask data resample`` and ``egotask data trim-egotempo`` both go through :func:`transcode`.
Outputs are written next to their destination under a temporary name, checked (frame rate, size,
duration) and only then renamed into place, so a killed run never leaves a half-written file under
the final name, and a finished file is never written twice.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import av
from av.video.reformatter import VideoReformatter

from egotask.frames import RefFilter, VideoError, VideoInfo, decode_only, index_frames, probe_video

T = TypeVar("T")
TMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)\.mp4$")


@dataclass(frozen=True)
class TranscodeSpec:
    """What to make of a source. ``None`` keeps the source's value."""

    fps: float | None = None  # an upper bound: a 5 fps source stays at 5 fps when asked for 6
    scale: float | None = None  # size factor, e.g. 0.5
    start: float | None = None  # seconds from the source's first frame
    end: float | None = None
    codec: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.scale is not None and not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")


@dataclass(frozen=True)
class Expected:
    """What a finished output must measure."""

    width: int
    height: int
    fps: float
    duration: float


@dataclass
class JobResult:
    src: str
    dst: str
    status: str  # done | skipped | failed
    message: str = ""
    seconds: float = 0.0  # seconds of video in the output
    wall: float = 0.0
    method: str = ""  # visible-interval cuts: copy+tail or reencode (egotask.data.splice)


def even(x: float) -> int:
    """yuv420p needs even sizes."""
    return max(2, int(round(x / 2)) * 2)


def output_rate(source_rate: float, fps: float | None) -> Fraction:
    rate = Fraction(source_rate).limit_denominator(1001)
    if fps is not None and fps < float(rate):
        return Fraction(fps).limit_denominator(1001)
    return rate


def expected_output(info: VideoInfo, spec: TranscodeSpec) -> Expected:
    if info.duration is None:
        raise VideoError("the source's duration is unknown")
    start = spec.start or 0.0
    end = info.duration if spec.end is None else spec.end
    if info.duration < end <= info.duration + 0.5:  # annotation rounding at the very end: take what exists
        end = info.duration
    if end > info.duration:
        raise VideoError(f"the source ends at {info.duration:.2f}s, before the requested end {end:.2f}s")
    if start >= info.duration:
        raise VideoError(f"the source ends at {info.duration:.2f}s, before the requested start {start:.2f}s")
    scale = spec.scale or 1.0
    return Expected(even(info.width * scale), even(info.height * scale),
                    float(output_rate(info.fps, spec.fps)), end - start)


def verify(path: Path, want: Expected) -> VideoInfo:
    """Measure a finished file (packets counted, not the header's word) against what it should be."""
    got = probe_video(path, exact=True)
    problems = []
    if (got.width, got.height) != (want.width, want.height):
        problems.append(f"size {got.width}x{got.height}, expected {want.width}x{want.height}")
    if abs(got.fps - want.fps) > 0.01 * want.fps + 0.01:
        problems.append(f"{got.fps:.3f} fps, expected {want.fps:.3f}")
    tolerance = max(2.0 / want.fps, 0.1)
    if got.duration is None or abs(got.duration - want.duration) > tolerance:
        problems.append(f"duration {got.duration}s, expected {want.duration:.3f}s (+-{tolerance:.2f}s)")
    if problems:
        raise VideoError(f"{path}: " + "; ".join(problems))
    return got


def tmp_path_for(dst: Path) -> Path:
    return dst.with_name(f".{dst.stem}.tmp-{os.getpid()}.mp4")


def clean_stale_tmp(root: Path) -> list[Path]:
    """Delete temporary outputs left by runs that were killed (their process no longer exists)."""
    removed = []
    if not root.is_dir():
        return removed
    for path in root.rglob(".*.tmp-*.mp4"):
        match = TMP_RE.match(path.name)
        if match and not _pid_alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def transcode(src: Path, dst: Path, spec: TranscodeSpec, *, force: bool = False, threads: int = 0) -> JobResult:
    """Make ``dst`` from ``src``; skip when ``dst`` already exists and measures as it should.

    ``threads``: x264 threads (0: x264 decides); decoding runs in one more thread.
    """
    began = time.perf_counter()
    src, dst = Path(src), Path(dst)
    try:
        if not src.is_file():
            raise VideoError(f"source not found: {src}")
        info = probe_video(src)
        want = expected_output(info, spec)
        if dst.exists() and not force:
            try:
                verify(dst, want)
                return JobResult(str(src), str(dst), "skipped", "already done", want.duration,
                                 time.perf_counter() - began)
            except VideoError as exc:  # made with other settings, or damaged: make it again
                stale = str(exc)
        else:
            stale = ""
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path_for(dst)
        try:
            _encode(src, tmp, spec, want, threads)
            got = verify(tmp, want)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
        note = f"replaced a stale output ({stale})" if stale else ""
        return JobResult(str(src), str(dst), "done", note, got.duration or 0.0, time.perf_counter() - began)
    except (VideoError, av.error.FFmpegError, OSError) as exc:
        message = str(exc) if str(src) in str(exc) else f"{src}: {exc}"
        return JobResult(str(src), str(dst), "failed", message, 0.0, time.perf_counter() - began)


def plan_frames(times: list[float] | Any, start: float, length: float | None,
                rate: float | None) -> dict[int, float]:
    """Which source frames (positions in presentation order) make the output, and when each is shown.

    Keeping the rate (``rate=None``): every frame in ``[start, start + length)``, shifted to start at 0.
    Resampling: output frame k shows the first source frame at or after ``k / rate``; slots that no
    source frame reaches (a sparser source) are skipped rather than filled with repeats.
    """
    chosen: dict[int, float] = {}
    slot = 0
    offset = None
    for pos, time_s in enumerate(times):
        t = float(time_s) - start
        if t < -1e-6:
            continue
        if length is not None and t >= length - 1e-6:
            break
        if rate is None:
            offset = t if offset is None else offset
            chosen[pos] = t - offset
        elif t + 1e-6 >= slot / rate:
            k = int(t * rate + 1e-6)
            chosen[pos] = k / rate
            slot = k + 1
    return chosen


def _encode(src: Path, tmp: Path, spec: TranscodeSpec, want: Expected, threads: int) -> None:
    index = index_frames(src)
    if index is None:
        raise VideoError(f"{src}: the video stream has no timestamps (a raw stream); remux it into mp4 first")
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        source_rate = float(stream.average_rate or stream.guessed_rate or 30)
        rate = output_rate(source_rate, spec.fps)
        resample = float(rate) < source_rate - 1e-6
        start = spec.start or 0.0
        length = None if spec.end is None else spec.end - start
        plan = plan_frames(index.times, start, length, float(rate) if resample else None)
        if not plan:
            raise VideoError(f"{src}: no frame in the requested interval")
        out_tb = (1 / rate) if resample else stream.time_base
        shown = {int(index.pts[pos]): int(round(t / float(out_tb))) for pos, t in plan.items()}
        frames = _wanted_frames(src, inp, stream, index, int(index.keyframe_of[min(plan)]), set(shown))
        scaler = VideoReformatter()  # one for the whole file keeps its swscale context
        written = 0
        with av.open(str(tmp), "w", format="mp4") as out:
            ostream = out.add_stream(spec.codec, rate=rate, options={
                "crf": str(spec.crf), "preset": spec.preset, "threads": str(threads)})
            ostream.width, ostream.height, ostream.pix_fmt = want.width, want.height, "yuv420p"
            ostream.codec_context.time_base = out_tb
            # Decoding runs in a second thread (PyAV releases the GIL), overlapping scaling and encoding.
            for frame in in_background(frames):
                pts = shown[frame.pts]
                if (frame.width, frame.height) != (want.width, want.height) or frame.format.name != "yuv420p":
                    frame = scaler.reformat(frame, want.width, want.height, "yuv420p", interpolation="AREA")
                frame.pts, frame.time_base = pts, out_tb
                for packet in ostream.encode(frame):
                    out.mux(packet)
                written += 1
            if written < len(shown):
                raise VideoError(f"{src}: truncated or corrupt: {len(shown) - written} of {len(shown)} frames "
                                 "could not be decoded")
            for packet in ostream.encode():
                out.mux(packet)


def _wanted_frames(src: Path, inp, stream, index, key_pos: int, wanted: set[int]):
    """The decoded frames whose pts are ``wanted``, in order; stops after the last one."""
    remaining = len(wanted)
    for frame in _frames_from(src, inp, stream, index, key_pos, wanted):
        if frame.pts in wanted:
            yield frame
            remaining -= 1
            if remaining == 0:
                return


def _frames_from(src: Path, inp, stream, index, key_pos: int, keep: set[int]):
    """Decoded frames from the keyframe before the first wanted one; from the top of a fresh open
    when the seek lands past it (some MPEG-TS files).

    One decoder thread: frame threading made each file cost about 60% more CPU (the files
    themselves run in parallel), and its extra latency buys nothing when most packets are skipped.
    """
    stream.thread_type, stream.codec_context.thread_count = "SLICE", 1
    if key_pos > 0:
        inp.seek(int(index.pts[key_pos]), stream=stream, backward=True, any_frame=False)
        frames = decode_only(inp, stream, keep, RefFilter(stream))
        first = next(frames, None)
        if first is not None and (first.pts is None or first.pts <= min(keep)):
            yield first
            yield from frames
            return
    with av.open(str(src)) as again:
        fresh = again.streams.video[0]
        fresh.thread_type, fresh.codec_context.thread_count = "SLICE", 1
        yield from decode_only(again, fresh, keep, RefFilter(fresh))


def in_background(items: Iterator[T], depth: int = 8) -> Iterator[T]:
    """Iterate ``items`` in a worker thread, ``depth`` ahead of the caller; its errors are raised here.

    Leaving the loop early stops the worker and waits for it, so nothing it uses is closed under it.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def work() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((end, None))
        except BaseException as exc:  # handed to the caller, which re-raises it
            offer((end, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="egotask-decode", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join()


def transcode_all(jobs: Iterable[tuple[Path, Path, TranscodeSpec]], *, workers: int, force: bool = False,
                  desc: str, work: Callable[..., JobResult] | None = None) -> list[JobResult]:
    """:func:`transcode` (or ``work``, called the same way) every ``(src, dst, spec)``, ``workers`` files
    at a time, with a progress bar."""
    from tqdm import tqdm

    jobs = list(jobs)
    work = work or transcode
    threads = x264_threads(workers)
    results: list[JobResult] = []
    bar = tqdm(total=len(jobs), desc=desc, unit="file")
    try:
        if workers <= 1:
            for job in jobs:
                results.append(work(*job, force=force, threads=threads))
                bar.set_postfix_str(results[-1].status)
                bar.update()
        else:
            pool = ProcessPoolExecutor(max_workers=workers, initializer=worker_init, initargs=(os.getpid(),))
            try:
                futures = [pool.submit(work, *job, force=force, threads=threads) for job in jobs]
                for future in as_completed(futures):
                    results.append(future.result())
                    bar.set_postfix_str(results[-1].status)
                    bar.update()
            except BaseException:  # Ctrl-C (or a bug): drop the queue, stop the files being made, now
                stop_pool(pool)
                for folder in {Path(dst).parent for _, dst, _ in jobs}:
                    clean_stale_tmp(folder)  # the stopped workers' half-made files
                raise
            pool.shutdown(wait=True)
    finally:
        bar.close()
    return results


PARENT_CHECK_SECONDS = 0.5


def worker_init(parent_pid: int) -> None:
    """Run in each worker: Ctrl-C is the parent's to handle (it stops the workers and removes their
    temporary files; a worker of its own would only take the next file from the queue), and the
    worker ends with its parent (:func:`exit_with_parent`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent_pid)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued files and end the workers at once (``terminate_workers`` from Python 3.14)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)


def exit_with_parent(parent_pid: int) -> None:
    """Run in each worker: end it within :data:`PARENT_CHECK_SECONDS` of its parent's death.

    A parent killed with SIGKILL runs no clean-up, and the pool's queue stays open in the other
    workers, so without this they would finish their file and then wait forever. A killed worker
    leaves only its temporary file, which the next run deletes.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="egotask-parent-watch", daemon=True).start()


def x264_threads(workers: int) -> int:
    """x264 threads for each of ``workers`` concurrent files: each file's share of the CPUs, less the
    one its decoder thread keeps busy, and at least one. More only contend: on 2 cores, giving x264
    2 threads beside the decoder cost 20% more CPU for the same wall time."""
    return max(1, (os.cpu_count() or 1) // max(1, workers) - 1)


def summarize_results(results: list[JobResult]) -> dict[str, Any]:
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    return {**counts, "seconds_of_video": sum(r.seconds for r in results if r.status == "done"),
            "failed_files": [{"src": r.src, "error": r.message} for r in results if r.status == "failed"]}
