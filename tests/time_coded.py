"""Clips whose every frame shows its own frame number, so whoever receives a frame (a fake server, a
test) can tell which frame of the source it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np

# Time-coded clips: frame i shows its number in binary, as 8 vertical black/white stripes (most
# significant first), so whoever receives a frame (a fake server, a test) can tell which frame of the
# source it is, after any codec, colour-range or JPEG round trip.
TIME_CODE_BITS = 8


def write_time_coded_clip(path: str | Path, seconds: float = 6.0, fps: int = 10,
                          size: tuple[int, int] = (64, 48)) -> Path:
    """A clip of ``seconds * fps`` frames, each showing its frame number as stripes (at most 256 frames)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = int(round(seconds * fps))
    if total > 2 ** TIME_CODE_BITS:
        raise ValueError(f"a time-coded clip holds at most {2 ** TIME_CODE_BITS} frames")
    stripe = size[0] // TIME_CODE_BITS
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(total):
            image = np.zeros((size[1], size[0], 3), dtype=np.uint8)
            for bit in range(TIME_CODE_BITS):
                if i >> (TIME_CODE_BITS - 1 - bit) & 1:
                    image[:, bit * stripe:(bit + 1) * stripe] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def time_code_of(image: Any, fps: int = 10) -> float:
    """The source time (seconds) of a frame of a time-coded clip, read from its stripes."""
    grey = np.asarray(image, dtype=np.float64)
    grey = grey.mean(axis=2) if grey.ndim == 3 else grey
    stripe = grey.shape[1] // TIME_CODE_BITS
    number = 0
    for bit in range(TIME_CODE_BITS):
        # the middle of each stripe: edges blur under scaling and compression
        middle = grey[:, bit * stripe + stripe // 4:(bit + 1) * stripe - stripe // 4]
        number = number * 2 + int(middle.mean() > 127)
    return round(number / fps, 6)
