"""Videos for the app: found through the tasks' own data sources (same variables), and the frames
a model saw, re-sampled with the adapters' own sampler over the record's visible interval."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from egotask.data.sources import DataError, get_benchmark, local_video_path, resolve_video
from egotask.frames import SampledFrames, VideoError, probe_duration
from egotask.records import SampleRecord


@dataclass(frozen=True)
class VideoLocation:
    path: Path | None
    problem: str | None = None  # why there is no path, naming the file or variable
    downloadable: bool = False  # no local folder is set, and the benchmark's videos are on the Hub


def video_doc(record: SampleRecord) -> dict[str, Any]:
    """The doc fields :mod:`egotask.data.sources` needs to find a record's video."""
    return {"benchmark": record.benchmark, "video_id": record.video_id, "question_id": record.question_id}


def locate_video(record: SampleRecord) -> VideoLocation:
    """Where a record's video is on disk, or why it is not there. Never downloads."""
    bench = get_benchmark(record.benchmark)
    try:
        path = local_video_path(video_doc(record))
    except DataError as exc:  # an id that would lead outside the video folder: never opened
        return VideoLocation(None, str(exc))
    if path is None:
        return VideoLocation(None, f"{bench.video_dir_var} is not set: set it to the folder holding "
                                   f"{bench.video_relpath('<video_id>')} (as for the tasks) and restart "
                                   "`egotask app`", downloadable=bench.video_hub_repo is not None)
    if not path.is_file():
        return VideoLocation(None, f"video not found: {path} (folder from {bench.video_dir_var})")
    return VideoLocation(path)


def download_video(record: SampleRecord) -> Path:
    """Fetch a record's video from the Hub as the tasks do; raises DataError naming what failed."""
    return resolve_video(video_doc(record))


def video_duration(path: Path) -> float | None:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            return probe_duration(container.streams.video[0], container)
    except (av.error.FFmpegError, OSError):
        return None


def frames_seen(path: Path, visible: tuple[float, float | None] | list[float | None], max_frames: int,
                fps: float | None = None) -> SampledFrames:
    """The frames a model adapter takes for a record: ``sample_visual`` over its visible interval.

    The adapters' module imports torch, so it loads on first use, not when the app starts.
    """
    from egotask.frames import VisibleVideo, sample_visual

    start, end = (list(visible) + [None, None])[:2]
    try:
        return sample_visual(VisibleVideo(str(path), start or 0.0, end), max_frames=max_frames, fps=fps)
    except ValueError as exc:  # e.g. an empty frame stack from an unreadable stream
        raise VideoError(f"{path}: {exc}") from exc
