"""Benchmark clips: H.264 with real motion (a textured scene panning under rendered text), so that
decoding costs what it costs on camera footage rather than on static frames."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEFAULT_WORKDIR = Path("/tmp/egotask-bench")


def _scene(width: int, height: int, seed: int) -> np.ndarray:
    """A scene twice the frame's width: smooth colour blobs plus fine noise and a few words."""
    rng = np.random.default_rng(seed)
    w2 = width * 2
    coarse = rng.integers(0, 255, (height // 40 + 2, w2 // 40 + 2, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(coarse).resize((w2, height), Image.BICUBIC), dtype=np.int16)
    big = np.clip(big + rng.integers(-12, 12, big.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(big)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, height // 8))
    for i, word in enumerate(("EXIT 9", "BAKERY", "ELM ST", "PARKING", "KORNFLAKE", "ODYSSEY")):
        draw.text((i * w2 // 6 + 20, (i % 3) * height // 3 + 20), word, fill=(250, 250, 250), font=font)
    return np.asarray(image)


def write_motion_clip(path: str | Path, seconds: float = 60.0, fps: int = 30, size: tuple[int, int] = (1280, 720),
                      keyframe_every_s: float = 2.0, seed: int = 0, preset: str = "veryfast") -> Path:
    """An H.264 mp4 (yuv420p, B-frames as libx264 chooses) with a keyframe every ``keyframe_every_s``."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    scene = _scene(width, height, seed)
    tmp = path.with_name(path.stem + ".partial.mp4")
    gop = max(1, int(round(keyframe_every_s * fps)))
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": preset, "g": str(gop),
                                                              "keyint_min": str(gop), "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        total = int(round(seconds * fps))
        for i in range(total):
            x = int((i * 7) % width)  # pan 7 px per frame, wrapping
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(scene[:, x:x + width]), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def _clip_set(workdir: Path, count: int, seconds: int, size: tuple[int, int]) -> list[Path]:
    clips = []
    for i in range(count):
        path = Path(workdir) / f"clip{seconds}_{size[1]}p30_gop2_{i}.mp4"
        if not path.exists():
            print(f"generating {path} ...", flush=True)
        clips.append(write_motion_clip(path, float(seconds), 30, size, 2.0, seed=i))
    return clips


def benchmark_clips(workdir: Path, count: int) -> list[Path]:
    """The shared benchmark set: ``count`` 60 s 1280x720 30 fps clips, keyframe every 2 s, cached in ``workdir``."""
    return _clip_set(workdir, count, 60, (1280, 720))


def quick_clips(workdir: Path, count: int) -> list[Path]:
    """``--quick``'s set: the same kind of clip (motion, text, 30 fps, keyframe every 2 s, so the same
    seeking and B-frame paths), 6 s at 320x180, so a whole check takes seconds."""
    return _clip_set(workdir, count, 6, (320, 180))


@contextlib.contextmanager
def bench_workdir(workdir: Path | None, quick: bool) -> Iterator[Path]:
    """``workdir`` if given; else the cached /tmp/egotask-bench, or for ``--quick`` a fresh folder
    removed afterwards (so CI also exercises clip generation and never trusts a stale cache)."""
    if workdir is not None:
        yield workdir
    elif quick:
        with tempfile.TemporaryDirectory(prefix="egotask-bench-quick-") as tmp:
            yield Path(tmp)
    else:
        yield DEFAULT_WORKDIR
