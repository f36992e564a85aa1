"""Opening the SQLite files egotask keeps (the verdict cache, the answer cache) the one way they are
shared: WAL journal and a busy timeout, so several processes and threads may use one file."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_store(path: Path, schema: str, what: str, hint: str) -> sqlite3.Connection:
    """A connection to ``path`` with ``schema`` created; an OSError naming ``what`` and ``hint`` else."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(schema)
    except (OSError, sqlite3.Error) as exc:
        raise OSError(f"cannot open {what} {path} ({exc}); {hint}") from exc
    return conn
