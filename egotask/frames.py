"""The one frame sampler: N frames spread over a time interval of a video, read by seeking.

Every model adapter and data tool goes through :func:`sample_frames`, so a model sees exactly the
frames (and timestamps) that evaluation and finetuning agree on.
"""

from __future__ import annotations

import math
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
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def sample_frames(path: str | Path, num_frames: int | None = 8, start: float = 0.0, end: float | None = None,
                  *, fps: float | None = None, max_frames: int | None = None) -> SampledFrames:
    """Sample frames uniformly from ``[start, end)`` of a video (``end=None``: to the end).

    An ``end`` past the video's end is clamped to it. With ``fps`` instead of ``num_frames`` the count
    follows the interval's length, capped by ``max_frames``.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            avg_rate = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
            duration = probe_duration(stream, container)
            stop = duration if end is None else (min(end, duration) if duration else end)
            if stop is None:  # no duration in the container: one decode pass finds it
                stop = _decoded_duration(container, stream)
                container.seek(0)
            start_t = min(max(start, 0.0), stop)
            count = frames_for(start_t, stop, num_frames=None if fps else num_frames, fps=fps,
                               max_frames=max_frames)
            frames, stamps = _read_at(container, stream, target_times(start_t, stop, count), path)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: cannot decode video ({exc})") from exc
    return SampledFrames(np.stack(frames), stamps, avg_rate, duration, start_t, stop)


def _decoded_duration(container: av.container.InputContainer, stream) -> float:
    last = 0.0
    for frame in container.decode(stream):
        if frame.time is not None:
            last = max(last, frame.time)
    return last


# A target closer than this to the last decoded frame is reached by decoding on, not seeking.
_SEEK_GAP_S = 1.0


def _read_at(container, stream, targets: list[float], path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Decode the frame nearest to each (ascending) target time, seeking between distant targets."""
    out: list[np.ndarray] = []
    stamps: list[float] = []
    decoder = None
    prev = None  # (time, frame) of the last decoded frame
    for target in targets:
        if decoder is None or prev is None or target - prev[0] > _SEEK_GAP_S:
            if prev is None or target > prev[0]:
                container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
                decoder = container.decode(stream)
                prev = None
        best = None
        for frame in decoder:
            t = frame.time if frame.time is not None else (prev[0] if prev else 0.0)
            if t + 1e-6 >= target:
                # Pick whichever of this frame and the one before is nearer to the target.
                best = prev if prev is not None and target - prev[0] < t - target else (t, frame)
                prev = (t, frame)
                break
            prev = (t, frame)
        if best is None:  # stream ended before the target: the last frame is the nearest
            if prev is None:
                raise VideoError(f"{path}: no decodable frame near {target:.2f}s")
            best = prev
        out.append(best[1].to_ndarray(format="rgb24"))
        stamps.append(round(best[0], 6))
    return out, stamps


def downscale(frames: np.ndarray, max_pixels: int | None) -> np.ndarray:
    """Shrink frames (keeping the aspect ratio) so each has at most ``max_pixels`` pixels."""
    n, h, w, _ = frames.shape
    if not max_pixels or h * w <= max_pixels:
        return frames
    from PIL import Image

    scale = math.sqrt(max_pixels / (h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BICUBIC)) for f in frames])
