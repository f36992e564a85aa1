"""``egotask data build-qa``: the EgoTextVQA questions joined with their videos, as a Hugging Face
``datasets`` dataset, plus a validation report.

Rows are read with :func:`egotask.data.sources.read_egotextvqa_jsonl` (the one parser); videos are
looked up in the Hub's layout (``EgoTextVQA-Indoor/<id>.mp4``, ``EgoTextVQA-Outdoor/<id>.mp4``) and
their durations measured from their packets (a cut-off file, whose header promises more than it holds,
is reported unreadable). Point ``EGOTEXTVQA_DATASET`` at the saved folder and the
tasks read it (questions and video paths).
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from egotask.atomic import write_text
from egotask.data.sources import EGOTEXTVQA_FILES, get_benchmark, read_egotextvqa_jsonl
from egotask.frames import VideoError, probe_video

COLUMNS = ("video_id", "subset", "question_id", "question_type", "timestamp", "question", "answer", "video_path")
SUBSETS = ("indoor", "outdoor")
REPORT_NAME = "validation_report.json"


@dataclass
class QAReport:
    rows: int = 0
    videos: int = 0
    videos_found: int = 0
    missing_videos: list[str] = field(default_factory=list)  # paths, one per video
    questions_without_video: int = 0
    unreadable_videos: list[dict[str, str]] = field(default_factory=list)
    duplicate_keys: list[dict[str, Any]] = field(default_factory=list)
    timestamps_past_end: list[dict[str, Any]] = field(default_factory=list)
    unknown_question_types: list[dict[str, str]] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return (len(self.missing_videos) + len(self.unreadable_videos) + len(self.duplicate_keys)
                + len(self.timestamps_past_end) + len(self.unknown_question_types))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": self.problems}

    def render(self, limit: int = 10) -> str:
        lines = [f"{self.rows} questions over {self.videos} videos; {self.videos_found} videos found."]
        sections = [
            (f"{len(self.missing_videos)} videos missing ({self.questions_without_video} questions)",
             self.missing_videos),
            (f"{len(self.unreadable_videos)} videos unreadable",
             [f"{u['path']}: {u['error']}" for u in self.unreadable_videos]),
            (f"{len(self.duplicate_keys)} duplicate (video_id, question_id) keys",
             [f"{d['video_id']} / {d['question_id']} x{d['count']}" for d in self.duplicate_keys]),
            (f"{len(self.timestamps_past_end)} timestamps past the video's end",
             [f"{p['video_id']} / {p['question_id']}: {p['timestamp']}s > {p['duration']:.2f}s"
              for p in self.timestamps_past_end]),
            (f"{len(self.unknown_question_types)} unknown question types",
             [f"{u['subset']} {u['video_id']} / {u['question_id']}: {u['question_type']!r}"
              for u in self.unknown_question_types]),
        ]
        for title, items in sections:
            lines.append(("OK    " if not items else "CHECK ") + title)
            lines += [f"        {item}" for item in items[:limit]]
            if len(items) > limit:
                lines.append(f"        ... and {len(items) - limit} more (see {REPORT_NAME})")
        return "\n".join(lines)


def build_rows(annotations_dir: Path, video_dir: Path, *, relative_paths: bool = False,
               workers: int = 8, progress: bool = True) -> tuple[list[dict[str, Any]], QAReport]:
    """Every question of both subsets, with its video's path, and what is wrong with the join."""
    annotations_dir, video_dir = Path(annotations_dir), Path(video_dir)
    rows: list[dict[str, Any]] = []
    for subset in SUBSETS:
        bench = get_benchmark(f"egotextvqa_{subset}")
        # Duplicates are listed in the report rather than stopping at the first.
        for doc in read_egotextvqa_jsonl(annotations_dir / EGOTEXTVQA_FILES[subset], subset, allow_duplicates=True):
            rel = bench.video_relpath(doc["video_id"])
            rows.append({
                "video_id": doc["video_id"], "subset": subset, "question_id": doc["question_id"],
                "question_type": doc["question_type"], "timestamp": doc["timestamp"],
                "question": doc["question"], "answer": doc["answer"],
                "video_path": rel if relative_paths else str((video_dir / rel).resolve()),
                "_file": video_dir / rel, "_types": bench.question_types,
            })
    report = QAReport(rows=len(rows))
    files = sorted({row["_file"] for row in rows})
    report.videos = len(files)
    durations = _durations([f for f in files if f.is_file()], workers, progress, report)
    report.missing_videos = [str(f) for f in files if not f.is_file()]
    report.videos_found = len(files) - len(report.missing_videos)
    missing = set(report.missing_videos)
    report.questions_without_video = sum(str(row["_file"]) in missing for row in rows)
    counts = Counter((row["video_id"], row["question_id"]) for row in rows)
    report.duplicate_keys = [{"video_id": v, "question_id": q, "count": n}
                             for (v, q), n in sorted(counts.items()) if n > 1]
    for row in rows:
        duration = durations.get(row["_file"])
        if duration is not None and row["timestamp"] > duration + 1e-3:
            report.timestamps_past_end.append({"video_id": row["video_id"], "question_id": row["question_id"],
                                               "timestamp": row["timestamp"], "duration": duration})
        if row["question_type"] not in row["_types"]:
            report.unknown_question_types.append({"subset": row["subset"], "video_id": row["video_id"],
                                                  "question_id": row["question_id"],
                                                  "question_type": row["question_type"]})
    for row in rows:
        del row["_file"], row["_types"]
    return rows, report


def _durations(files: list[Path], workers: int, progress: bool, report: QAReport) -> dict[Path, float]:
    """Durations from the packets (demuxed, not decoded), read in threads. Counting the packets is
    what lets the frame sampler's own check flag a cut-off file whose header promises more video."""
    from tqdm import tqdm

    def one(path: Path) -> tuple[Path, float | None, str | None]:
        try:
            return path, probe_video(path, exact=True).duration, None
        except VideoError as exc:
            return path, None, str(exc)

    out: dict[Path, float] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for path, duration, error in tqdm(pool.map(one, files), total=len(files), desc="probe videos",
                                          unit="video", disable=not progress):
            if error is not None:
                report.unreadable_videos.append({"path": str(path), "error": error})
            elif duration is not None:
                out[path] = duration
    return out


def to_dataset(rows: list[dict[str, Any]]):
    """A ``DatasetDict`` with one ``test`` split (these are evaluation questions)."""
    import datasets

    features = datasets.Features({c: datasets.Value("float64" if c == "timestamp" else "string") for c in COLUMNS})
    table = {c: [row[c] for row in rows] for c in COLUMNS}
    return datasets.DatasetDict({"test": datasets.Dataset.from_dict(table, features=features)})


def save(dataset, report: QAReport, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    dataset.save_to_disk(str(out_dir))
    write_text(out_dir / REPORT_NAME, json.dumps(report.to_dict(), indent=1) + "\n")
    return out_dir
