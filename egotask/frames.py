"""The one frame sampler: N frames spread over a time interval of a video, read by seeking.

Every model adapter and data tool goes through :func:`sample_frames`, so a model sees exactly the
frames (and timestamps) that evaluation and finetuning agree on.

How it reads: one pass over the container's packets (demuxing only, no decoding) lists every frame's
presentation time and which frames are keyframes. That gives the exact duration (even when the
container does not state one), exact times for variable-frame-rate video, and, for each wanted frame,
the keyframe to seek to. Frames are then decoded only from that keyframe up to the wanted frame, and
the decoder keeps going instead of seeking when the next wanted frame is in the same GOP or a few
frames on. In H.264 whose keyframes are all IDR pictures (closed GOPs: x264's default, OpenCV-style
writers) it reads on instead, leaving undecoded every packet no wanted frame needs: whole GOPs without
one, and the rest of a GOP after its last (:class:`GopSkipper`). Packets no frame references are left
out too (:class:`RefFilter`). Each decoded frame is converted to RGB through one reused swscale context,
scaled to the caller's pixel cap in the same pass, turned upright by the stream's display matrix, and
copied straight into the output array (:class:`Converter`).

Several questions of one video are answered from one such pass over the union of their frames
(:func:`sample_many`, :func:`sample_visuals`), identical intervals sharing their frames. Open files are
kept for the next question on the same video (:class:`OpenVideos`), and each file is decoded on one
thread (:func:`_one_thread`): callers parallelise across items instead.

A visible interval in which nothing is on screen (a question at 0 s) is :class:`NothingVisible`, and a
file of one frame (an image renamed .mp4) is refused as a video. Frame settings are checked by
:func:`check_frame_settings`: a usage error naming the argument and its range, with a frame count above
:data:`MAX_FRAMES_CEILING` refused unless forced.

Times are seconds from the first frame (a stream that starts at pts 1.4 s, as MPEG-TS often does, is
shifted to start at 0, which is what players show and what annotations use).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file."""


class NothingVisible(VideoError):
    """The visible interval holds no frame (a question asked at 0 s): nothing may be shown."""


class FrameSettingsError(ValueError):
    """A frame setting (``max_frames``, ``fps``, ``max_pixels``) outside its allowed range; the
    message names the argument and the range."""


# Above this many frames a question's request grows past what any model takes in (100,000 frames sent
# 95 MB requests): a larger count is refused unless ``force_frames=true`` says it is meant.
# The pixels a sample gives, as a version: part of the answer cache key, so answers made from frames
# sampled another way are never reused. 2: rotation applied, scaling inside the colour conversion.
SAMPLER_VERSION = 2
MAX_FRAMES_CEILING = 256
MIN_PIXELS = 1024  # 32x32: below this no model's vision encoder sees anything


@dataclass(frozen=True)
class FrameSettings:
    max_frames: int
    fps: float | None
    max_pixels: int | None


def _unset(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "None", "none"))


def check_frame_count(value: object, name: str = "max_frames", *, force: bool = False) -> int:
    """A frame count from a setting: a whole number from 1 to :data:`MAX_FRAMES_CEILING` (more only
    with ``force``), else :class:`FrameSettingsError` naming ``name``."""
    allowed = f"a whole number from 1 to {MAX_FRAMES_CEILING}" + ("" if force else " (force_frames=true allows more)")
    try:
        count = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise FrameSettingsError(f"{name}={value!r}: expected {allowed}") from None
    if count < 1 or (count > MAX_FRAMES_CEILING and not force):
        raise FrameSettingsError(f"{name}={value!r}: expected {allowed}")
    return count


def check_frame_settings(max_frames: object = 8, fps: object = None, max_pixels: object = None, *,
                         force_frames: bool = False) -> FrameSettings:
    """Frame settings as given (``--model_args`` strings or numbers), checked: each out-of-range value
    is a :class:`FrameSettingsError` naming the argument and its allowed range."""
    rate: float | None = None
    if not _unset(fps):
        try:
            rate = float(str(fps).strip())
        except ValueError:
            rate = math.nan
        if not math.isfinite(rate) or rate <= 0:
            raise FrameSettingsError(f"fps={fps!r}: expected a number of frames per second above 0 (for example 2)")
    pixels: int | None = None
    if not _unset(max_pixels):
        try:
            pixels = int(str(max_pixels).strip())
        except ValueError:
            pixels = -1
        if pixels < MIN_PIXELS:
            raise FrameSettingsError(f"max_pixels={max_pixels!r}: expected a whole number of pixels per frame of at "
                                     f"least {MIN_PIXELS} (for example 589824 for 768x768), or unset")
    return FrameSettings(check_frame_count(max_frames, force=force_frames), rate, pixels)


def check_force_frames(value: object) -> bool:
    """The ``force_frames`` setting: true or false (unset: false)."""
    if isinstance(value, bool):
        return value
    text = "" if _unset(value) else str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise FrameSettingsError(f"force_frames={value!r}: expected true or false")


def check_frame_args(args: dict[str, str]) -> None:
    """``--model_args`` frame settings checked before anything loads (the adapters check them again
    when built): ``max_frames``, ``fps``, ``max_pixels``, a ``frames`` count and ``force_frames``."""
    force = check_force_frames(args.get("force_frames"))
    check_frame_settings(args.get("max_frames", 8), args.get("fps"), args.get("max_pixels"), force_frames=force)
    frames = args.get("frames")
    if not _unset(frames) and str(frames).strip().lstrip("+-").isdigit():
        check_frame_count(frames, "frames", force=force)


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
    # H.264 whose every keyframe is an IDR picture: no frame references across a keyframe, so the
    # packets of a GOP that holds no wanted frame can be left undecoded without seeking past them.
    closed_gops: bool = False
    position_of: dict[int, int] = field(default_factory=dict)  # pts -> position


def _scan(container: av.container.InputContainer, stream, path: Path) -> FrameIndex | None:
    """Demux (no decoding) the whole stream; None when packets carry no timestamps (raw streams)."""
    pts: list[int] = []
    keys: list[bool] = []
    durs: list[int] = []
    ref_filter = RefFilter(stream)
    closed = ref_filter.enabled
    for packet in container.demux(stream):
        if packet.pts is None:
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            return None
        pts.append(packet.pts)
        keys.append(bool(packet.is_keyframe))
        durs.append(packet.duration or 0)
        if closed and keys[-1]:
            closed = ref_filter.is_idr(packet)
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
    return FrameIndex(pts_sorted, (pts_sorted - t0) * tb, keyframe_of, t0, duration, closed,
                      dict(zip(pts_sorted.tolist(), range(len(pts_sorted)), strict=True)))


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

    def is_idr(self, packet) -> bool:
        """Whether a keyframe packet holds an IDR slice (after which nothing refers to earlier frames)."""
        return self.enabled and any(b & 0x1F == 5 for b in self._nal_headers(bytes(packet)))

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


def decode_only(container, stream, wanted_pts: set[int] | None, ref_filter: RefFilter | None,
                gops: GopSkipper | None = None):
    """Decoded frames of ``stream`` from the container's position, leaving out the packets that no
    frame references unless their own frame is wanted (``wanted_pts=None``: decode everything), and
    with ``gops`` those of closed GOPs no wanted frame needs."""
    for packet in container.demux(stream):
        if gops is not None and gops.skip(packet):
            continue
        if (wanted_pts is not None and ref_filter is not None and packet.pts not in wanted_pts
                and ref_filter.droppable(packet)):
            continue
        yield from packet.decode()


class GopSkipper:
    """Leaves out, in a stream of closed GOPs (:attr:`FrameIndex.closed_gops`), every packet of a GOP
    after the last of its wanted frames has gone to the decoder, and so whole GOPs with no wanted
    frame: nothing after them refers to them. Reading on through them costs only demuxing, where a
    seek would flush the decoder and waste the frames it decoded ahead to output the last one."""

    def __init__(self, index: FrameIndex, wanted: list[int]) -> None:
        self.index = index
        self.wanted_pts = {int(index.pts[p]) for p in wanted}
        self.left: dict[int, int] = {}  # GOP (its keyframe's position) -> wanted frames not yet fed
        for p in set(wanted):
            gop = int(index.keyframe_of[p])
            self.left[gop] = self.left.get(gop, 0) + 1

    def skip(self, packet) -> bool:
        pos = self.index.position_of.get(packet.pts) if packet.pts is not None else None
        if pos is None:
            return False  # not in the index (the end-of-stream marker): the decoder gets it
        gop = int(self.index.keyframe_of[pos])
        if packet.pts in self.wanted_pts:
            self.left[gop] = self.left.get(gop, 1) - 1
            return False
        return self.left.get(gop, 0) <= 0


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


@dataclass(frozen=True)
class Ask:
    """One question's frames: ``num_frames`` (or ``fps`` a second, capped by ``max_frames``) spread
    over ``[start, end)`` (``end=None``: to the video's end)."""

    num_frames: int | None = 8
    start: float = 0.0
    end: float | None = None
    fps: float | None = None
    max_frames: int | None = None


def sample_frames(path: str | Path, num_frames: int | None = 8, start: float = 0.0, end: float | None = None,
                  *, fps: float | None = None, max_frames: int | None = None,
                  max_pixels: int | None = None) -> SampledFrames:
    """Sample frames uniformly from ``[start, end)`` of a video (``end=None``: to the end).

    Each target time (the centre of one of N equal slices) gets the nearest frame inside the interval.
    An ``end`` past the video's end is clamped to it; a ``start`` at or past the end is an error, and so
    is an interval in which nothing is visible (:class:`NothingVisible`: a question at 0 s).
    With ``fps`` instead of ``num_frames`` the count follows the interval's length, capped by
    ``max_frames``. When the interval holds fewer frames than asked for (a 0.5 s clip, 32 frames),
    frames repeat, and their timestamps say so. ``max_pixels`` scales each frame down (keeping its
    aspect ratio) inside the colour conversion.
    """
    return _one(sample_many(path, [Ask(num_frames, start, end, fps, max_frames)], max_pixels=max_pixels)[0])


def read_frames_at(path: str | Path, times: list[float]) -> SampledFrames:
    """The frame nearest to each of ``times`` (seconds from the first frame), in the given order."""
    if not times:
        raise ValueError("times must not be empty")
    return _one(_sample_plans(Path(path), [lambda duration: (list(times), None, None)], None)[0])


def sample_many(path: str | Path, asks: list[Ask], *, max_pixels: int | None = None
                ) -> list[SampledFrames | VideoError]:
    """Each question's frames of one video, from one decoding pass over the union of their frames;
    identical questions share one result. A question whose interval does not fit this video (it starts
    past the end, nothing is visible in it) gets its :class:`VideoError` in its place, and the others
    their frames; a file that cannot be read raises."""
    path = Path(path)
    unique = list(dict.fromkeys(asks))
    plans = [functools.partial(_plan_interval, ask=ask, path=path) for ask in unique]
    by_ask = dict(zip(unique, _sample_plans(path, plans, max_pixels), strict=True))
    return [by_ask[ask] for ask in asks]


def _or_error(path: str, ask: Ask, max_pixels: int | None) -> SampledFrames | VideoError:
    try:
        return sample_many(path, [ask], max_pixels=max_pixels)[0]
    except VideoError as exc:
        return exc


def _one(result: SampledFrames | VideoError) -> SampledFrames:
    if isinstance(result, VideoError):
        raise result
    return result


def _plan_interval(duration: float, *, ask: Ask, path: Path):
    start, end = ask.start, ask.end
    if start >= duration:
        raise VideoError(f"{path}: interval [{start:.2f}, {end if end is None else round(end, 2)}] starts at or "
                         f"after the video's end ({duration:.2f}s)")
    stop = duration if end is None else min(end, duration)
    start_t = min(max(start, 0.0), stop)
    count = frames_for(start_t, stop, num_frames=None if ask.fps else ask.num_frames, fps=ask.fps,
                       max_frames=ask.max_frames)
    return target_times(start_t, stop, count), start_t, stop


def _check_is_video(count: int, path: Path) -> None:
    """A single frame is a still image (a PNG or JPEG renamed .mp4 opens as a one-frame stream): four
    copies of it would be shown as a video."""
    if count < 2:
        raise VideoError(f"{path}: holds a single frame, a still image rather than a video; give a video file")


def _choose(times: np.ndarray, plan, duration: float, path: Path):
    """The frame positions for one plan, with its interval, or the :class:`VideoError` of that plan."""
    try:
        targets, start_t, stop = plan(duration)
    except VideoError as exc:
        return exc
    lo, hi = 0, len(times)
    if start_t is not None:
        # Only frames inside [start, stop): a real-time question never sees its future.
        lo = int(np.searchsorted(times, start_t - 1e-6, "left"))
        hi = int(np.searchsorted(times, stop - 1e-6, "left"))
        if hi <= lo:
            if lo == 0:  # nothing is on screen before the first frame, at 0 s
                return NothingVisible(f"{path}: nothing is visible in [{start_t:.2f}, {stop:.2f}) s: the interval "
                                      "ends at or before the video's first frame (a question asked at 0 s)")
            lo, hi = lo - 1, lo  # between two frames: the one on screen since before ``start``
    return [_nearest(times, t, lo, hi) for t in targets], start_t, stop


class _Outputs:
    """Each plan's (N, H, W, 3) array, filled as each frame is converted, while it is still in the CPU's
    cache: stacking the kept frames at the end copied them again from memory (a fifth of the time at
    1280x720, 60 frames), and kept every frame's buffer alive until then."""

    def __init__(self, chosen: list) -> None:
        self.slots: dict[int, list[tuple[int, int]]] = {}
        self.counts: dict[int, int] = {}
        for k, c in enumerate(chosen):
            if not isinstance(c, VideoError):
                self.counts[k] = len(c[0])
                for i, p in enumerate(c[0]):
                    self.slots.setdefault(p, []).append((k, i))
        self.arrays: dict[int, np.ndarray] = {}
        self.times: dict[int, float] = {}

    def wanted(self) -> list[int]:
        return sorted(self.slots)

    def put(self, pos: int, time_s: float, array: np.ndarray) -> None:
        self.times[pos] = time_s
        for k, i in self.slots[pos]:
            out = self.arrays.get(k)
            if out is None:
                out = self.arrays[k] = np.empty((self.counts[k], *array.shape), np.uint8)
            out[i] = array

    def result(self, k: int, chosen, rate: float, duration: float) -> SampledFrames:
        positions, start_t, stop = chosen
        stamps = [round(self.times[p], 6) for p in positions]
        return SampledFrames(self.arrays[k], stamps, rate, duration, stamps[0] if start_t is None else start_t,
                             stamps[-1] if stop is None else stop)


def _sample_plans(path: Path, plans: list, max_pixels: int | None) -> list[SampledFrames | VideoError]:
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
                    return _sample_sequential(again, again.streams.video[0], rate, plans, path, max_pixels)
            _check_not_truncated(index, stream, path)
            _check_is_video(len(index.pts), path)
        container, stream, index = opened
        rate = _avg_rate(stream)
        chosen = [_choose(index.times, plan, index.duration, path) for plan in plans]
        outputs = _Outputs(chosen)
        if outputs.slots:
            _decode_positions(container, stream, index, outputs.wanted(), path, Converter(max_pixels), outputs.put)
    except av.error.FFmpegError as exc:
        _close(opened)
        raise VideoError(f"{path}: cannot decode video, the file is truncated or corrupt ({exc})") from exc
    except BaseException:
        _close(opened)
        raise
    _OPEN_VIDEOS.give(key, opened)
    return [c if isinstance(c, VideoError) else outputs.result(k, c, rate, index.duration)
            for k, c in enumerate(chosen)]


def _nearest(times: np.ndarray, t: float, lo: int, hi: int) -> int:
    j = int(np.searchsorted(times, t, "left", sorter=None))
    j = min(max(j, lo), hi - 1)
    if j > lo and abs(times[j - 1] - t) <= abs(times[j] - t):
        return j - 1
    return j


def scaled_size(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """(width, height) shrunk, keeping the aspect ratio, to at most ``max_pixels`` pixels."""
    if not max_pixels or width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


class Converter:
    """Decoded frames to upright RGB arrays through one reused swscale context (a fresh one per frame,
    which ``to_ndarray(format=...)`` makes, costs more than the conversion at small sizes), scaled to
    ``max_pixels`` in the same pass (about 6 ms a 1080p frame, against 30 for full-size RGB and a
    resize), and turned as the stream's display matrix says (a phone video recorded upright)."""

    def __init__(self, max_pixels: int | None = None) -> None:
        self.max_pixels = max_pixels
        self.reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = scaled_size(frame.width, frame.height, self.max_pixels)
        if (width, height) == (frame.width, frame.height):
            rgb = self.reformatter.reformat(frame, format="rgb24")
        else:
            rgb = self.reformatter.reformat(frame, format="rgb24", width=width, height=height,
                                            interpolation="BICUBIC")
        array = rgb.to_ndarray()
        turns = quarter_turns(frame)
        return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns that show ``frame`` upright: its display matrix's rotation
    (rotate=90 metadata, a clockwise turn, reads as -90 here), to the nearest quarter."""
    rotation = getattr(frame, "rotation", 0) or 0
    return int(round(rotation / 90)) % 4


# Decoding on through the frames before the next wanted frame's keyframe, rather than seeking to that
# keyframe, when at most this many frames lie between: a seek flushes the decoder and re-reads the
# container, which costs about as much as decoding a few small frames (benchmarks/frame_sampling.py).
DECODE_ON_FRAMES = 4
# With closed GOPs reading on costs only the demuxing of the packets left out: seek only this far ahead.
SEEK_BEYOND_FRAMES = 300


def _decode_positions(container, stream, index: FrameIndex, wanted: list[int], path: Path, convert: Converter,
                      put) -> None:
    """Decode the frames at the (ascending) positions, seeking only when a keyframe lies well ahead.

    A seek that lands after the wanted frame, or on nothing (some MPEG-TS files), switches this file
    to decoding from the start without seeking: slower, never wrong.
    """
    tb = float(stream.time_base)
    decoder = None
    last_pts: int | None = None  # pts of the last frame the decoder returned
    seekable = True
    reopened: list = []
    keep = {int(index.pts[p]) for p in wanted}
    ref_filter = RefFilter(stream)
    # Closed GOPs: read on, leaving out what no wanted frame needs, and seek only far ahead.
    decode_on = SEEK_BEYOND_FRAMES if index.closed_gops else DECODE_ON_FRAMES
    try:
        for pos in wanted:
            want = int(index.pts[pos])
            key_pos = int(index.keyframe_of[pos])
            key_pts = int(index.pts[key_pos]) if key_pos >= 0 else index.t0
            if decoder is None or (seekable and _should_seek(index, key_pos, key_pts, last_pts, decode_on)):
                decoder, last_pts = None, None
                gops = GopSkipper(index, [p for p in wanted if p >= pos]) if index.closed_gops else None
                if seekable:
                    decoder = _seek_decoder(container, stream, key_pts, want, keep, ref_filter, gops)
                    seekable = decoder is not None
                if decoder is None:
                    reopened.append(av.open(str(path)))
                    fresh = reopened[-1].streams.video[0]
                    _one_thread(fresh)
                    gops = GopSkipper(index, [p for p in wanted if p >= pos]) if index.closed_gops else None
                    decoder = decode_only(reopened[-1], fresh, keep, RefFilter(fresh), gops)
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
            put(pos, (got.pts - index.t0) * tb, convert(got))
    finally:
        for extra in reopened:
            extra.close()


def _should_seek(index: FrameIndex, key_pos: int, key_pts: int, last_pts: int | None, decode_on: int) -> bool:
    """Seek when the wanted frame's keyframe lies more than ``decode_on`` frames ahead of the last
    decoded frame (a keyframe behind it: the decoder is already in the right GOP)."""
    if last_pts is None:
        return True
    if key_pts <= last_pts:
        return False
    last_pos = int(np.searchsorted(index.pts, last_pts, "left"))
    return key_pos - last_pos > decode_on


def _seek_decoder(container, stream, key_pts: int, want: int, keep: set[int], ref_filter: RefFilter,
                  gops: GopSkipper | None):
    """A decoder positioned at the keyframe before ``want``, or None when seeking missed."""
    container.seek(key_pts, stream=stream, backward=True, any_frame=False)
    decoder = decode_only(container, stream, keep, ref_filter, gops)
    for frame in decoder:
        if frame.pts is None:
            continue
        return itertools.chain([frame], decoder) if frame.pts <= want else None
    return None


def _sample_sequential(container, stream, rate: float, plans: list, path: Path,
                       max_pixels: int | None) -> list[SampledFrames | VideoError]:
    """For streams without timestamps: decode everything once, frame i at i / average rate."""
    kept: list[av.VideoFrame] = list(container.decode(stream))
    if not kept:
        raise VideoError(f"{path}: no decodable frame")
    _check_is_video(len(kept), path)
    times = np.arange(len(kept)) / rate
    duration = len(kept) / rate
    chosen = [_choose(times, plan, duration, path) for plan in plans]
    convert = Converter(max_pixels)
    outputs = _Outputs(chosen)
    for p in outputs.wanted():
        outputs.put(p, float(times[p]), convert(kept[p]))
    return [c if isinstance(c, VideoError) else outputs.result(k, c, rate, duration) for k, c in enumerate(chosen)]


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


def _visual_ask(visual: str, max_frames: int, fps: float | None) -> tuple[str, Ask]:
    start, end = getattr(visual, "start", 0.0), getattr(visual, "end", None)
    path = getattr(visual, "source", None) or str(visual)
    return path, Ask(None if fps else max_frames, float(start), None if end is None else float(end), fps, max_frames)


def sample_visual(visual: str, *, max_frames: int, fps: float | None = None,
                  max_pixels: int | None = None) -> SampledFrames:
    """Frames of one visual, only from its visible interval when it carries one (:class:`VisibleVideo`):
    ``max_frames`` spread evenly, or ``fps`` frames a second capped at ``max_frames``, each scaled to at
    most ``max_pixels`` while decoding. Adapters, finetuning and the app all sample through this."""
    path, ask = _visual_ask(visual, max_frames, fps)
    return _one(sample_many(path, [ask], max_pixels=max_pixels)[0])


def sample_visuals(visuals: list[str], *, max_frames: int, fps: float | None = None,
                   max_pixels: int | None = None) -> list[SampledFrames | VideoError]:
    """:func:`sample_visual` for many visuals at once: each video is decoded once, in one pass over the
    union of its visuals' frames, and identical intervals share their frames. Each visual gets its frames
    or its :class:`VideoError` (an unreadable file: every visual of it)."""
    asks = [_visual_ask(v, max_frames, fps) for v in visuals]
    by_path: dict[str, list[int]] = {}
    for i, (path, _) in enumerate(asks):
        by_path.setdefault(path, []).append(i)
    out: list[SampledFrames | VideoError] = [VideoError("not sampled")] * len(visuals)
    for path, members in by_path.items():
        try:
            results = sample_many(path, [asks[i][1] for i in members], max_pixels=max_pixels)
        except VideoError as exc:
            # A file broken part-way fails only the questions whose frames lie past the break.
            results = [exc] if len(members) == 1 else [_or_error(path, asks[i][1], max_pixels) for i in members]
        for i, result in zip(members, results, strict=True):
            out[i] = result
    return out
