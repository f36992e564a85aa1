"""``egotask data trim-egotempo``: cut every EgoTempo clip out of its Ego4D source video.

EgoTempo names each clip ``{ego4d_video_uid}_{start}_{end}`` (seconds as floats); the clips are
read from ``egotempo_openQA.json`` with :func:`egotask.data.sources.read_egotempo_json` and written
as ``<clip_id>.mp4``, the layout ``EGOTEMPO_VIDEO_DIR`` expects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from egotask.data.sources import DataError, read_egotempo_json
from egotask.data.transcode import JobResult, TranscodeSpec, clean_stale_tmp, transcode_all


@dataclass(frozen=True)
class Clip:
    clip_id: str
    video_uid: str
    start: float
    end: float


def parse_clip_id(clip_id: str) -> Clip:
    """``0d270946-..._120.0_180.0`` -> Clip(uid, 120.0, 180.0).

    A few real clip ids start slightly before 0 (``..._-0.095..._110.4...``); trimming starts those at 0.
    """
    parts = clip_id.rsplit("_", 2)
    try:
        uid, start, end = parts[0], float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        raise DataError(f"clip id {clip_id!r} is not {{ego4d_video_uid}}_{{start}}_{{end}}") from None
    if not uid or end <= start:
        raise DataError(f"clip id {clip_id!r}: needs a uid and start < end")
    return Clip(clip_id, uid, start, end)


def clips_from_annotations(path: Path) -> list[Clip]:
    """Each distinct clip of the annotation file, sorted by id."""
    ids = sorted({doc["video_id"] for doc in read_egotempo_json(Path(path))})
    return [parse_clip_id(i) for i in ids]


def index_sources(videos_root: Path) -> dict[str, Path]:
    """Ego4D videos under ``videos_root`` (any depth: ``v2/full_scale/<uid>.mp4`` works), by uid."""
    videos_root = Path(videos_root)
    if not videos_root.is_dir():
        raise FileNotFoundError(f"Ego4D video folder not found: {videos_root}")
    found: dict[str, Path] = {}
    for path in sorted(videos_root.rglob("*.mp4")):
        if not path.name.startswith("."):
            found.setdefault(path.stem, path)
    return found


def trim_all(annotations: Path, videos_root: Path, out_dir: Path, *, spec: TranscodeSpec | None = None,
             workers: int = 1, force: bool = False) -> list[JobResult]:
    """Cut every clip; a clip whose source is missing or unreadable is reported, and the rest go on."""
    clips = clips_from_annotations(annotations)
    sources = index_sources(videos_root)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(out_dir)
    results: list[JobResult] = []
    jobs = []
    for clip in clips:
        dst = out_dir / f"{clip.clip_id}.mp4"
        src = sources.get(clip.video_uid)
        if src is None:
            results.append(JobResult(str(videos_root / f"{clip.video_uid}.mp4"), str(dst), "failed",
                                     f"source video {clip.video_uid}.mp4 not found under {videos_root}"))
            continue
        jobs.append((src, dst, replace(spec or TranscodeSpec(), start=max(clip.start, 0.0), end=clip.end)))
    return results + transcode_all(jobs, workers=workers, force=force, desc="trim-egotempo")

