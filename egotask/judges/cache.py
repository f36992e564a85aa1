"""The verdict cache: a SQLite file under ``EGOTASK_CACHE_DIR`` (default ``~/.cache/egotask``).

A verdict is keyed by (backend, judge model, prompt version, question, reference, prediction, and
the endpoint's base URL: one model name may be served differently at two endpoints) and is
written, committed, the moment it arrives, so a run killed mid-judging loses nothing and a rerun pays
only for the items it has not judged. Failures are never stored: a rerun tries them again. A verdict
that cannot be stored (a full disk) raises :class:`CacheStoreError` naming the file: the judge stops
at once rather than pay for verdicts it cannot keep.

``EGOTASK_JUDGE_CACHE`` (the ``judge_cache`` setting): ``on`` (default) reads and writes, ``refresh``
judges again and overwrites, ``off`` neither reads nor writes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from egotask.judges.base import JudgeItem
from egotask.records import Verdict
from egotask.settings import get_settings
from egotask.sqlite_store import open_store

CACHE_DIR_VAR = "EGOTASK_CACHE_DIR"
CACHE_MODE_VAR = "EGOTASK_JUDGE_CACHE"
FILENAME = "judge_cache.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    judge_model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    question TEXT NOT NULL,
    reference TEXT NOT NULL,
    prediction TEXT NOT NULL,
    verdict TEXT NOT NULL,
    created REAL NOT NULL
)"""


class CacheStoreError(OSError):
    """The verdict cache cannot be read or written; the message names the file and the way out."""


def cache_dir() -> Path:
    return get_settings().cache_dir


def cache_mode() -> str:
    return get_settings().judge_cache


def cache_key(backend: str, judge_model: str, prompt_version: str, item: JudgeItem,
              endpoint: str | None = None) -> str:
    fields = [backend, judge_model, prompt_version, item.question, item.answer, item.prediction]
    if endpoint:  # judges without one (heuristic) keep their keys
        fields.append(endpoint.rstrip("/"))
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


class VerdictCache:
    """Thread-safe; several processes may share the file (WAL journal, busy timeout)."""

    def __init__(self, path: Path | None = None, mode: str | None = None):
        self.mode = mode or cache_mode()
        self.path = path or cache_dir() / FILENAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def reads(self) -> bool:
        return self.mode == "on"

    @property
    def writes(self) -> bool:
        return self.mode in ("on", "refresh")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_store(
                self.path, _SCHEMA, "the judge cache",
                f"set {CACHE_DIR_VAR} to a writable folder or {CACHE_MODE_VAR}=off")
        return self._conn

    def check_writable(self) -> None:
        """Open the file and take its write lock once, so that a cache that cannot be written is found
        before any work, not after hours of generation (no-op when the mode writes nothing)."""
        if not self.writes:
            return
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise OSError(f"cannot write to the judge cache {self.path} ({exc}); set {CACHE_DIR_VAR} to a "
                              f"writable folder or {CACHE_MODE_VAR}=off") from exc

    def get(self, key: str) -> Verdict | None:
        if not self.reads:
            return None
        try:
            with self._lock:
                row = self._connection().execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from exc
        return Verdict.from_dict(json.loads(row[0])) if row else None

    def put(self, key: str, item: JudgeItem, verdict: Verdict) -> None:
        if not self.writes or verdict.pred is None:  # failures, and pending verdicts, are not verdicts to keep
            return
        row = (key, verdict.judge, verdict.judge_model, verdict.prompt_version, item.question, item.answer,
               item.prediction, json.dumps(verdict.to_dict(), ensure_ascii=False), time.time())
        try:
            with self._lock:
                self._connection().execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        except sqlite3.Error as exc:
            raise self._error("store a verdict in", exc) from exc

    def _error(self, doing: str, exc: sqlite3.Error) -> CacheStoreError:
        return CacheStoreError(f"cannot {doing} the judge cache {self.path} ({exc}); free space there, set "
                               f"{CACHE_DIR_VAR} to another folder, or {CACHE_MODE_VAR}=off")

    def __len__(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
