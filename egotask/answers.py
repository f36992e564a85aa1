"""What a model answered, kept as it is made: the answer cache (resume without regenerating) and the
per-item outcome (frames actually seen, frame settings, generation failures, tokens and timings) that
the task's ``process_results`` writes into each record.

The cache is a SQLite file beside the verdict cache (``EGOTASK_CACHE_DIR/answers.sqlite3``). An answer
is keyed by everything that decides it: the model's identity (adapter, checkpoint, backend), the
prompt, the video file (path, size, modification time and a hash of a sample of its bytes, so a file
rewritten with the same size and time is a new key), the interval, the frame settings and the
generation settings. Only greedy answers are kept, and only successes: a failed item is tried again
on the next run. ``EGOTASK_ANSWER_CACHE``: ``on`` (default), ``refresh`` (generate again and
overwrite) or ``off``.

Outcomes travel from the adapter to ``process_results`` in this process: lmms-eval hands
``process_results`` only the answer text, so the adapter notes each item's outcome under the item's
key, and the task takes it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from egotask.records import Generation
from egotask.settings import get_settings
from egotask.sqlite_store import open_store

FILENAME = "answers.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL
)"""


@dataclass(frozen=True)
class Outcome:
    """What happened to one item on the model's side."""

    text: str  # the reply ("" when generation failed)
    seen: tuple[float, float] | None = None  # first and last frame time shown to the model
    frames: dict[str, Any] | None = None  # frame settings, and how many frames were shown
    model: str | None = None
    error: str | None = None  # a generation failure: the model produced no answer
    generation: Generation | None = None  # tokens and timings (None: not measured)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        """An outcome as the cache kept it (answers cached before timings were measured have none)."""
        data = json.loads(text)
        data["seen"] = tuple(data["seen"]) if data.get("seen") else None
        generation = data.get("generation")
        data["generation"] = None if generation is None else Generation.from_dict(generation, "the answer cache")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def from_cache(self) -> Outcome:
        """This outcome reused by a later run: its tokens and timings are the run's that made it, so it is
        marked cached (and left out of the reusing run's throughput and latency)."""
        return dataclasses.replace(self, generation=dataclasses.replace(self.generation or Generation(), cached=True))


def item_key(doc: dict[str, Any]) -> tuple[str, str, str]:
    """How an item is named between the adapter and ``process_results``."""
    return (str(doc.get("task") or doc.get("benchmark")), str(doc.get("video_id")), str(doc.get("question_id")))


# --------------------------------------------------------------------------- outcomes in this process

_outcomes: dict[tuple[str, str, str], Outcome] = {}
_outcomes_lock = threading.Lock()


def note(doc: dict[str, Any], outcome: Outcome) -> None:
    with _outcomes_lock:
        _outcomes[item_key(doc)] = outcome


def take(doc: dict[str, Any]) -> Outcome | None:
    """The outcome an egotask adapter noted for this item (None for other lmms-eval models)."""
    with _outcomes_lock:
        return _outcomes.pop(item_key(doc), None)


# --------------------------------------------------------------------------- the answer cache

SAMPLE_CHUNK = 64 * 1024  # bytes read at each of SAMPLES evenly spread places of a larger file
SAMPLES = 8
_sampled: dict[tuple[Any, ...], str] = {}  # per process: a video is asked about many times


def sampled_hash(path: Path, stat: os.stat_result) -> str:
    """A hash of the file's bytes: all of a small file, SAMPLES chunks (first, last, and evenly between)
    of a larger one, so that a video of many GB costs half a MB of reading. Remembered per process
    while the file's stat (ctime included, which no tool can set back) is unchanged."""
    memo = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    found = _sampled.get(memo)
    if found is not None:
        return found
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        if stat.st_size <= SAMPLE_CHUNK * SAMPLES:
            digest.update(fh.read())
        else:
            for i in range(SAMPLES):
                fh.seek((stat.st_size - SAMPLE_CHUNK) * i // (SAMPLES - 1))
                digest.update(fh.read(SAMPLE_CHUNK))
    _sampled[memo] = digest.hexdigest()
    return _sampled[memo]


def file_identity(path: str | Path) -> list[Any]:
    """A file (a video, a checkpoint's file) as the cache sees it: a changed file is a new key."""
    path = Path(path)
    try:
        stat = path.stat()
        sampled = sampled_hash(path, stat)
    except OSError:
        return [str(path), None, None]
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns, sampled]


def answer_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


class AnswerStore:
    """Thread-safe; several processes (ranks) may share the file (WAL journal, busy timeout)."""

    def __init__(self, path: Path | None = None, mode: str | None = None):
        settings = get_settings()
        self.mode = mode or settings.answer_cache
        self.path = path or settings.cache_dir / FILENAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_store(
                self.path, _SCHEMA, "the answer cache",
                "set EGOTASK_CACHE_DIR to a writable folder or EGOTASK_ANSWER_CACHE=off")
        return self._conn

    def get(self, key: str) -> Outcome | None:
        if self.mode != "on":
            return None
        try:
            with self._lock:
                row = self._connection().execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from exc
        return Outcome.from_json(row[0]) if row else None

    def put(self, key: str, outcome: Outcome) -> None:
        if self.mode == "off" or outcome.error is not None:
            return
        try:
            with self._lock:
                self._connection().execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)",
                                           (key, outcome.model or "", outcome.to_json(), time.time()))
        except sqlite3.Error as exc:
            raise self._error("store an answer in", exc) from exc

    def _error(self, doing: str, exc: sqlite3.Error) -> OSError:
        return OSError(f"cannot {doing} the answer cache {self.path} ({exc}); free space there, set "
                       "EGOTASK_CACHE_DIR to another folder, or EGOTASK_ANSWER_CACHE=off")

    def __len__(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
