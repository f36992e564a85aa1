"""The one frame sampler: N frames spread over a time interval of a video, read by seeking.

Every model adapter and data tool goes through :func:`sample_frames`, so a model sees exactly the
frames (and timestamps) that evaluation and finetuning agree on.

How it reads: one pass over the container's packets (demuxing only, no decoding) lists every frame's
presentation time and which frames are keyframes. That gives the exact duration (even when the
container does not state one), exact times for variable-frame-rate video, and, for each wanted frame,
the keyframe to seek to. Frames are then decoded only from that keyframe up to the wanted frame, and
the decoder keeps going instead of seeking when the next wanted frame is in the same GOP.

Open files are kept for the next question on the same video (:class:`OpenVideos`), and each file is
decoded on one thread (:func:`_one_thread`): callers parallelise across items instead.

Times are seconds from the first frame (a stream that starts at pts 1.4 s, as MPEG-TS often does, is
shifted to start at 0, which is what players show and what annotations use).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class SampledFrames:
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    timestamps: list[float]  # presentation time of each returned frame, seconds
    fps: float  # the stream's average frame rate
    duration: float | None  # seconds, None when the container does not say
    start: float
    end: float

    def frame_indices(self) -> list[int]:
        """Frame numbers at the average rate, for processors that want indices (Qwen3-VL)."""
        return [int(round(t * self.fps)) for t in self.timestamps]


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reports about a file's first video stream."""

    width: int
    height: int
    fps: float  # average frame rate
    duration: float | None  # seconds
    num_frames: int | None  # counted from the packets when ``exact``, else the header's count (or None)
    codec: str


def target_times(start: float, end: float, num_frames: int) -> list[float]:
    """Centres of ``num_frames`` equal slices of [start, end): never the end itself."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    span = max(end - start, 0.0)
    return [start + (i + 0.5) * span / num_frames for i in range(num_frames)]


def frames_for(start: float, end: float, *, num_frames: int | None = None, fps: float | None = None,
               max_frames: int | None = None, min_frames: int = 1) -> int:
    """How many frames to take: a fixed count, or ``fps`` frames per second capped by ``max_frames``."""
    if num_frames is None:
        if fps is None:
            raise ValueError("give num_frames or fps")
        num_frames = math.ceil(max(end - start, 0.0) * fps)
    if max_frames is not None:
        num_frames = min(num_frames, max_frames)
    return max(num_frames, min_frames)


def probe_duration(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> float | None:
    """The duration the container's header states (stream first, then container), or None."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


# --------------------------------------------------------------------------- the packet index

@dataclass(frozen=True)
class FrameIndex:
    """Every frame of a stream in presentation order, from its packets."""

    pts: np.ndarray  # int64, ascending
    times: np.ndarray  # float64 seconds from the first frame
    keyframe_of: np.ndarray  # for each frame, the position of the keyframe at or before it (-1: none)
    t0: int  # pts of the first frame
    duration: float


def _scan(container: av.container.InputContainer, stream, path: Path) -> FrameIndex | None:
    """Demux (no decoding) the whole stream; None when packets carry no timestamps (raw streams)."""
    pts: list[int] = []
    keys: list[bool] = []
    durs: list[int] = []
    for packet in container.demux(stream):
        if packet.pts is None:
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            return None
        pts.append(packet.pts)
        keys.append(bool(packet.is_keyframe))
        durs.append(packet.duration or 0)
    if not pts:
        raise VideoError(f"{path}: the video stream has no frames")
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    pts_sorted = np.asarray(pts, dtype=np.int64)[order]
    keep = np.concatenate(([True], np.diff(pts_sorted) > 0))  # a repeated pts is one frame
    pts_sorted, key_sorted = pts_sorted[keep], np.asarray(keys)[order][keep]
    tb = float(stream.time_base)
    last_dur = np.asarray(durs)[order][keep][-1]
    if last_dur <= 0:
        last_dur = int(np.median(np.diff(pts_sorted))) if len(pts_sorted) > 1 else 0
    t0 = int(pts_sorted[0])
    positions = np.arange(len(pts_sorted))
    keyframe_of = np.maximum.accumulate(np.where(key_sorted, positions, -1))
    duration = (int(pts_sorted[-1]) - t0 + int(last_dur)) * tb
    return FrameIndex(pts_sorted, (pts_sorted - t0) * tb, keyframe_of, t0, duration)


def index_frames(path: str | Path) -> FrameIndex | None:
    """Every frame's time and keyframe, from one demux pass (None for streams without timestamps)."""
    path = Path(path)
    try:
        container, stream = _open(path)
        with container:
            index = _scan(container, stream, path)
            if index is not None:
                _check_not_truncated(index, stream, path)
            return index
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: cannot read video, the file is corrupt or not a video ({exc})") from exc


def _check_not_truncated(index: FrameIndex, stream, path: Path) -> None:
    """A header that promises much more video than the packets hold means a cut-off download."""
    declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    if declared and declared - index.duration > max(0.5, 0.02 * declared):
        raise VideoError(f"{path}: truncated or corrupt: its header says {declared:.2f}s of video but the "
                         f"file holds only {index.duration:.2f}s")


def _open(path: Path):
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    container = av.open(str(path))
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    return container, container.streams.video[0]


def _one_thread(stream) -> None:
    """Decode on the calling thread only. Sampling seeks and decodes a few frames per GOP, where
    FFmpeg's frame threads add a pipeline delay after every seek and slice threads only overhead:
    measured here, threads cost 1.3-1.7x the CPU for the same or a slower wall time (160x90 and
    1280x720 clips). Callers that sample many items run them in a thread pool instead."""
    stream.codec_context.thread_count = 1


def _avg_rate(stream) -> float:
    return float(stream.average_rate or stream.guessed_rate or 0) or 30.0


class RefFilter:
    """Tells which H.264 packets no other frame references (every slice has ``nal_ref_idc == 0``).

    Such a packet can be left undecoded when its own frame is not wanted: the decoder's output for
    every other frame is unchanged. x264's default B-pyramid makes about half of all frames so.
    Other codecs: nothing is dropped.
    """

    def __init__(self, stream) -> None:
        cc = stream.codec_context
        self.enabled = cc.name == "h264"
        extradata = cc.extradata or b""
        # avcC extradata (mp4, mkv): NALs are length-prefixed; otherwise Annex B start codes (TS, raw).
        self.length_size = (extradata[4] & 3) + 1 if len(extradata) > 4 and extradata[0] == 1 else None

    def droppable(self, packet) -> bool:
        if not self.enabled or packet.size == 0:
            return False
        data = bytes(packet)
        slices = [b for b in self._nal_headers(data) if b & 0x1F in (1, 5)]
        return bool(slices) and all((b >> 5) & 3 == 0 for b in slices)

    def _nal_headers(self, data: bytes):
        if self.length_size:
            i, n = 0, self.length_size
            while i + n < len(data):
                size = int.from_bytes(data[i:i + n], "big")
                yield data[i + n]
                i += n + size
        else:
            i = data.find(b"\x00\x00\x01")
            while i != -1 and i + 3 < len(data):
                yield data[i + 3]
                i = data.find(b"\x00\x00\x01", i + 3)


def decode_only(container, stream, wanted_pts: set[int] | None, ref_filter: RefFilter | None):
    """Decoded frames of ``stream`` from the container's position, leaving out the packets that no
    frame references unless their own frame is wanted (``wanted_pts=None``: decode everything)."""
    for packet in container.demux(stream):
        if (wanted_pts is not None and ref_filter is not None and packet.pts not in wanted_pts
                and ref_filter.droppable(packet)):
            continue
        yield from packet.decode()


# --------------------------------------------------------------------------- open files, reused

def _file_key(path: Path) -> tuple:
    """Which file, as it is now: a file replaced or rewritten under the same name is another key."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise VideoError(f"video not found: {path}") from None
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _close(opened) -> None:
    if opened is not None:
        opened[0].close()


class OpenVideos:
    """Idle open videos (container, stream, frame index), by file, for the next item on the same video.

    The datasets ask several questions of each video, and opening a file (probing its streams, starting
    the decoder) and indexing its packets cost about as much as decoding one question's frames of a
    small clip, so a sampler takes an idle one when there is one. A container is used by one caller
    at a time (taken out, given back), so any number of threads can sample at once; every use starts
    with a seek, which flushes the decoder. At most ``capacity`` stay open; the oldest is closed.
    """

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._idle: OrderedDict[tuple, list] = OrderedDict()
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def take(self, key: tuple):
        with self._lock:
            stack = self._idle.get(key)
            if not stack:
                return None
            self._count -= 1
            opened = stack.pop()
            if not stack:
                del self._idle[key]
            return opened

    def give(self, key: tuple, opened) -> None:
        closing = []
        with self._lock:
            self._idle.setdefault(key, []).append(opened)
            self._idle.move_to_end(key)
            self._count += 1
            while self._count > self.capacity:
                oldest = next(iter(self._idle))
                stack = self._idle[oldest]
                closing.append(stack.pop(0))
                self._count -= 1
                if not stack:
                    del self._idle[oldest]
        for extra in closing:  # outside the lock: closing a file may block
            _close(extra)

    def forget(self) -> None:
        """In a forked child: the parent's open files share their read offsets with the child's copies,
        so the child starts with none (and a fresh lock, which a parent thread may have held)."""
        self._idle, self._count, self._lock = OrderedDict(), 0, threading.Lock()

    def clear(self) -> None:
        with self._lock:
            closing = [opened for stack in self._idle.values() for opened in stack]
            self._idle.clear()
            self._count = 0
        for extra in closing:
            _close(extra)


_OPEN_VIDEOS = OpenVideos()
os.register_at_fork(after_in_child=_OPEN_VIDEOS.forget)


def close_open_videos() -> None:
    """Close the files kept open for reuse: the next sample of each opens it afresh (what a
    benchmark that times a cold first question needs)."""
    _OPEN_VIDEOS.clear()


# --------------------------------------------------------------------------- public readers

def probe_video(path: str | Path, *, exact: bool = False) -> VideoInfo:
    """Size, frame rate, duration and frame count of a video.

    Without ``exact`` only the header is read (fast, for many files); the duration comes from the
    packets when the header has none. With ``exact`` the packets are always counted.
    """
    path = Path(path)
    try:
        container, stream = _open(path)
        with container:
            duration = probe_duration(stream, container)
            num_frames = int(stream.frames) or None
            if exact or duration is None:
                index = _scan(container, stream, path)
                if index is not None:
                    _check_not_truncated(index, stream, path)
                    duration, num_frames = index.duration, len(index.pts)
            cc = stream.codec_context
            return VideoInfo(cc.width, cc.height, _avg_rate(stream), duration, num_frames, cc.name)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: cannot read video, the file is corrupt or not a video ({exc})") from exc


def sample_frames(path: str | Path, num_frames: int | None = 8, start: float = 0.0, end: float | None = None,
                  *, fps: float | None = None, max_frames: int | None = None) -> SampledFrames:
    """Sample frames uniformly from ``[start, end)`` of a video (``end=None``: to the end).

    Each target time (the centre of one of N equal slices) gets the nearest frame inside the interval.
    An ``end`` past the video's end is clamped to it; a ``start`` at or past the end is an error.
    With ``fps`` instead of ``num_frames`` the count follows the interval's length, capped by
    ``max_frames``. When the interval holds fewer frames than asked for (a 0.5 s clip, 32 frames),
    frames repeat, and their timestamps say so.
    """
    return _sample(Path(path), lambda duration: _plan_interval(duration, num_frames, start, end, fps, max_frames,
                                                               Path(path)))


def read_frames_at(path: str | Path, times: list[float]) -> SampledFrames:
    """The frame nearest to each of ``times`` (seconds from the first frame), in the given order."""
    if not times:
        raise ValueError("times must not be empty")
    return _sample(Path(path), lambda duration: (list(times), None, None))


def _plan_interval(duration: float, num_frames, start, end, fps, max_frames, path: Path):
    if start >= duration:
        raise VideoError(f"{path}: interval [{start:.2f}, {end if end is None else round(end, 2)}] starts at or "
                         f"after the video's end ({duration:.2f}s)")
    stop = duration if end is None else min(end, duration)
    start_t = min(max(start, 0.0), stop)
    count = frames_for(start_t, stop, num_frames=None if fps else num_frames, fps=fps, max_frames=max_frames)
    return target_times(start_t, stop, count), start_t, stop


def _sample(path: Path, plan) -> SampledFrames:
    key = _file_key(path)
    opened = _OPEN_VIDEOS.take(key)
    try:
        if opened is None:
            container, stream = _open(path)
            _one_thread(stream)
            index = _scan(container, stream, path)
            opened = (container, stream, index)
            if index is None:  # no timestamps at all: number frames at the average rate
                with container, av.open(str(path)) as again:
                    # Raw streams have no average rate; the codec's guess is their only rate.
                    rate = float(stream.guessed_rate or 0) or _avg_rate(stream)
                    return _sample_sequential(again, again.streams.video[0], rate, plan, path)
            _check_not_truncated(index, stream, path)
        container, stream, index = opened
        rate = _avg_rate(stream)
        targets, start_t, stop = plan(index.duration)
        lo, hi = 0, len(index.times)
        if start_t is not None:
            # Only frames inside [start, stop): a real-time question never sees its future.
            lo = int(np.searchsorted(index.times, start_t - 1e-6, "left"))
            hi = max(int(np.searchsorted(index.times, stop - 1e-6, "left")), lo + 1)
            lo, hi = min(lo, len(index.times) - 1), min(hi, len(index.times))
        positions = [_nearest(index.times, t, lo, hi) for t in targets]
        decoded = _decode_positions(container, stream, index, sorted(set(positions)), path)
    except av.error.FFmpegError as exc:
        _close(opened)
        raise VideoError(f"{path}: cannot decode video, the file is truncated or corrupt ({exc})") from exc
    except BaseException:
        _close(opened)
        raise
    _OPEN_VIDEOS.give(key, opened)
    frames = np.stack([decoded[p][1] for p in positions])
    stamps = [round(decoded[p][0], 6) for p in positions]
    return SampledFrames(frames, stamps, rate, index.duration,
                         stamps[0] if start_t is None else start_t, stamps[-1] if stop is None else stop)


def _nearest(times: np.ndarray, t: float, lo: int, hi: int) -> int:
    j = int(np.searchsorted(times, t, "left", sorter=None))
    j = min(max(j, lo), hi - 1)
    if j > lo and abs(times[j - 1] - t) <= abs(times[j] - t):
        return j - 1
    return j


def _decode_positions(container, stream, index: FrameIndex, wanted: list[int],
                      path: Path) -> dict[int, tuple[float, np.ndarray]]:
    """Decode the frames at the (ascending) positions, seeking only when a keyframe lies ahead.

    A seek that lands after the wanted frame, or on nothing (some MPEG-TS files), switches this file
    to decoding from the start without seeking: slower, never wrong.
    """
    out: dict[int, tuple[float, np.ndarray]] = {}
    tb = float(stream.time_base)
    decoder = None
    last_pts: int | None = None  # pts of the last frame the decoder returned
    seekable = True
    reopened: list = []
    keep = {int(index.pts[p]) for p in wanted}
    ref_filter = RefFilter(stream)
    try:
        for pos in wanted:
            want = int(index.pts[pos])
            key_pos = int(index.keyframe_of[pos])
            key_pts = int(index.pts[key_pos]) if key_pos >= 0 else index.t0
            if decoder is None or (seekable and (last_pts is None or key_pts > last_pts)):
                decoder, last_pts = None, None
                if seekable:
                    decoder = _seek_decoder(container, stream, key_pts, want, keep, ref_filter)
                    seekable = decoder is not None
                if decoder is None:
                    reopened.append(av.open(str(path)))
                    fresh = reopened[-1].streams.video[0]
                    _one_thread(fresh)
                    decoder = decode_only(reopened[-1], fresh, keep, RefFilter(fresh))
            got = None
            for frame in decoder:
                if frame.pts is None:
                    continue
                last_pts = frame.pts
                if frame.pts >= want:  # == when the file is sound; > when the wanted frame was undecodable
                    got = frame
                    break
            if got is None:
                reached = "nothing" if last_pts is None else f"{(last_pts - index.t0) * tb:.2f}s"
                raise VideoError(f"{path}: truncated or corrupt: decoding stopped at {reached}, before the "
                                 f"frame at {index.times[pos]:.2f}s")
            out[pos] = ((got.pts - index.t0) * tb, got.to_ndarray(format="rgb24"))
    finally:
        for extra in reopened:
            extra.close()
    return out


def _seek_decoder(container, stream, key_pts: int, want: int, keep: set[int], ref_filter: RefFilter):
    """A decoder positioned at the keyframe before ``want``, or None when seeking missed."""
    container.seek(key_pts, stream=stream, backward=True, any_frame=False)
    decoder = decode_only(container, stream, keep, ref_filter)
    for frame in decoder:
        if frame.pts is None:
            continue
        return itertools.chain([frame], decoder) if frame.pts <= want else None
    return None


def _sample_sequential(container, stream, rate: float, plan, path: Path) -> SampledFrames:
    """For streams without timestamps: decode everything once, frame i at i / average rate."""
    kept: list[av.VideoFrame] = []
    for frame in container.decode(stream):
        kept.append(frame)
    if not kept:
        raise VideoError(f"{path}: no decodable frame")
    times = np.arange(len(kept)) / rate
    duration = len(kept) / rate
    targets, start_t, stop = plan(duration)
    lo, hi = 0, len(times)
    if start_t is not None:
        lo = min(int(np.searchsorted(times, start_t - 1e-6, "left")), len(times) - 1)
        hi = min(max(int(np.searchsorted(times, stop - 1e-6, "left")), lo + 1), len(times))
    positions = [_nearest(times, t, lo, hi) for t in targets]
    arrays = {p: kept[p].to_ndarray(format="rgb24") for p in set(positions)}
    stamps = [round(float(times[p]), 6) for p in positions]
    return SampledFrames(np.stack([arrays[p] for p in positions]), stamps, rate, duration,
                         stamps[0] if start_t is None else start_t, stamps[-1] if stop is None else stop)


class VisibleVideo(str):
    """A video path that also carries the interval the model may see, ``[start, end)``.

    It is a ``str`` so that any lmms-eval model can open it. For models that open the file themselves
    the string is an exact cut of the interval (see :mod:`egotask.visible_clips`) and ``source`` is the
    original file; egotask's adapters read ``source`` and sample inside ``[start, end)`` through
    :func:`sample_visual`.
    """

    start: float
    end: float | None
    source: str

    def __new__(cls, path: str, start: float = 0.0, end: float | None = None,
                source: str | None = None) -> VisibleVideo:
        obj = super().__new__(cls, path)
        obj.start, obj.end = float(start), (None if end is None else float(end))
        obj.source = str(source or path)
        return obj

    def __reduce__(self):
        return (VisibleVideo, (str(self), self.start, self.end, self.source))


def sample_visual(visual: str, *, max_frames: int, fps: float | None = None,
                  max_pixels: int | None = None) -> SampledFrames:
    """Frames of one visual, only from its visible interval when it carries one (:class:`VisibleVideo`):
    ``max_frames`` spread evenly, or ``fps`` frames a second capped at ``max_frames``, then downscaled
    to at most ``max_pixels`` each. Adapters, finetuning and the app all sample through this."""
    start, end = getattr(visual, "start", 0.0), getattr(visual, "end", None)
    path = getattr(visual, "source", None) or str(visual)
    sampled = sample_frames(path, None if fps else max_frames, start, end, fps=fps, max_frames=max_frames)
    return SampledFrames(downscale(sampled.frames, max_pixels), sampled.timestamps, sampled.fps,
                         sampled.duration, sampled.start, sampled.end)


def downscale(frames: np.ndarray, max_pixels: int | None) -> np.ndarray:
    """Shrink frames (keeping the aspect ratio) so each has at most ``max_pixels`` pixels."""
    n, h, w, _ = frames.shape
    if not max_pixels or h * w <= max_pixels:
        return frames
    from PIL import Image

    scale = math.sqrt(max_pixels / (h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BICUBIC)) for f in frames])
