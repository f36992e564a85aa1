"""The benchmark's protocol for every lmms-eval model: a real-time question allows only the video
before its timestamp.

egotask's adapters read the original file and sample inside the visible interval (the interval travels
with the path, :class:`egotask.frames.VisibleVideo`). Any other lmms-eval model opens the path it is
given and decodes all of it, so for those the path is an exact cut of the visible interval: made once
per (video, interval) under ``EGOTASK_CACHE_DIR/visible_clips``, frame-accurately (no frame at or after
the end survives), in parallel with a progress bar, and reused on reruns. Where the source allows
(H.264, closed GOPs, yuv420p), the cut copies the source's packets up to the last keyframe before the
end and re-encodes only the tail from it (:mod:`egotask.data.splice`); otherwise it re-encodes the whole
interval. Each cut records the span it really holds, which becomes the record's ``seen``, and how it
was made (``method``: ``copy+tail`` or ``reencode``, with ``why`` the fast path was not taken).

Cuts made before copy+tail existed (whole re-encodes, their sidecar has no ``method``) stay valid and
are reused: they hold the same source frames at the same times, and only the copied part's pixels
differ (the source's own bits now, a CRF 18 re-encode then). The cache path is unchanged for that reason.

Whether the model in this process reads intervals itself is declared by egotask's ``lmms_eval`` entry
(:func:`declare_model_reads_intervals`), from the adapter's manifest. Without that declaration (plain
upstream ``lmms-eval``), cuts are always made: the protocol never depends on which model runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egotask.atomic import write_text
from egotask.settings import get_settings

CLIPS_DIR = "visible_clips"
_model_reads_intervals = False


def declare_model_reads_intervals(value: bool) -> None:
    """Say whether this process's model honours ``VisibleVideo`` intervals (egotask's adapters do)."""
    global _model_reads_intervals
    _model_reads_intervals = bool(value)


def clips_needed() -> bool:
    return not _model_reads_intervals


@dataclass(frozen=True)
class Cut:
    path: Path
    seen: tuple[float, float]  # first and last frame of the source that the cut holds, in source time
    method: str = "reencode"  # copy+tail or reencode (egotask.data.splice)


def clip_path(src: Path, start: float, end: float) -> Path:
    from egotask.answers import file_identity

    src.stat()  # a missing video is an OSError here, as before
    # The video as the answer cache sees it (a sample of its bytes included): a rewritten video is cut again.
    ident = json.dumps([*file_identity(src), round(start, 6), round(end, 6)])
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return get_settings().cache_dir / CLIPS_DIR / f"{src.stem}_{start:.3f}-{end:.3f}_{digest}.mp4"


def _sidecar(clip: Path) -> Path:
    return clip.with_suffix(".json")


def _seen_in_source(src: Path, start: float, end: float) -> tuple[float, float]:
    """First and last source frame inside [start, end), by the same plan the cut is made with."""
    from egotask.data.transcode import plan_frames
    from egotask.frames import VideoError, index_frames

    index = index_frames(src)
    if index is None:
        raise VideoError(f"{src}: the video stream has no timestamps")
    chosen = plan_frames(index.times, start, end - start, None)
    if not chosen:
        raise VideoError(f"{src}: no frame in [{start:.3f}, {end:.3f})")
    return round(float(index.times[min(chosen)]), 6), round(float(index.times[max(chosen)]), 6)


def cut_visible(jobs: list[tuple[Path, float, float]], workers: int | None = None) -> dict[tuple[str, float, float],
                                                                                           Cut | str]:
    """Make (or reuse) a cut of each ``(video, start, end)``; the value is the Cut, or why it failed."""
    from egotask.data.splice import cut_interval
    from egotask.data.transcode import TranscodeSpec, transcode_all

    out: dict[tuple[str, float, float], Cut | str] = {}
    todo = []
    for src, start, end in dict.fromkeys(jobs):
        key = (str(src), start, end)
        try:
            clip = clip_path(src, start, end)
        except OSError as exc:
            out[key] = f"{src}: {exc.strerror or exc}"
            continue
        sidecar = _sidecar(clip)
        if clip.is_file() and sidecar.is_file():
            recorded = json.loads(sidecar.read_text())
            out[key] = Cut(clip, tuple(recorded["seen"]), recorded.get("method", "reencode"))
            continue
        todo.append((key, src, clip, start, end))
    if todo:
        workers = workers or max(1, min(4, os.cpu_count() or 1))
        results = transcode_all([(src, clip, TranscodeSpec(start=start, end=end, crf=18))
                                 for _, src, clip, start, end in todo],
                                workers=min(workers, len(todo)), desc="cutting visible intervals", work=cut_interval)
        by_dst = {r.dst: r for r in results}
        for key, src, clip, start, end in todo:
            result = by_dst[str(clip)]
            if result.status == "failed":
                out[key] = result.message
                continue
            try:
                seen = _seen_in_source(src, start, end)
            except Exception as exc:  # noqa: BLE001 - reported per item
                out[key] = str(exc)
                continue
            method = result.method or "reencode"
            write_text(_sidecar(clip), json.dumps({"source": str(src), "start": start, "end": end, "seen": seen,
                                                   "method": method, "why": result.message}))
            out[key] = Cut(clip, seen, method)
    return out


def prepare_docs(docs: list[dict[str, Any]], resolve) -> tuple[list[dict[str, Any]], list[str]]:
    """Give each real-time doc the cut of its visible interval (``clip_path``, ``clip_seen``), when the
    model needs one. Returns the docs and a problem line for each doc whose cut could not be made."""
    if not clips_needed():
        return docs, []
    jobs = {}
    for doc in docs:
        if doc.get("visible_end") is None:
            continue
        jobs[id(doc)] = (Path(resolve(doc)), float(doc["visible_start"]), float(doc["visible_end"]))
    if not jobs:
        return docs, []
    cuts = cut_visible(list(jobs.values()))
    problems = []
    for doc in docs:
        job = jobs.get(id(doc))
        if job is None:
            continue
        cut = cuts[(str(job[0]), job[1], job[2])]
        if isinstance(cut, str):
            doc["clip_error"] = cut
            problems.append(f"{doc['video_id']}/{doc['question_id']}: {cut}")
        else:
            doc["clip_path"], doc["clip_seen"] = str(cut.path), list(cut.seen)
    return docs, problems
