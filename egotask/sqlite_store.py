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


def check_intact(path: Path, what: str) -> None:
    """Raise OSError naming ``path`` and the fix when the SQLite file at ``path`` is damaged (SQLite's
    ``quick_check``: every page and b-tree, in one pass); a file not made yet is intact, and what is not
    a file at all is left to :func:`open_store` to report."""
    if not path.is_file():
        return
    problem = None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
        finally:
            conn.close()
        if rows != ["ok"]:
            problem = " ".join("; ".join(rows).replace("*** in database main ***", "").split())[:300]
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    if problem:
        raise OSError(f"{what} {path} is damaged ({problem}). Move it aside (mv {path} {path}.damaged) and run "
                      "again: what it held is asked for again, nothing else is lost")



def values_for(path: Path, table: str, keys: list[str], column: str = "key") -> dict[str, str]:
    """``{key: column}`` for those of ``keys`` the store at ``path`` holds, read without writing anything
    (for ``--plan``); a file not made yet holds none. A read-only open of a WAL database would create its
    ``-wal`` and ``-shm`` files, so a file without a ``-wal`` beside it (every writer closed, all in the
    main file) is read as immutable; one with it (a writer is open, or was killed) is read through it,
    read-only."""
    if not keys or not path.is_file():
        return {}
    found: dict[str, str] = {}
    wal = path.with_name(path.name + "-wal").exists()
    conn = sqlite3.connect(f"file:{path}?{'mode=ro' if wal else 'immutable=1'}", uri=True, timeout=30)
    try:
        for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[i:i + 500]
            found.update(conn.execute(f"SELECT key, {column} FROM {table} WHERE key IN "
                                      f"({','.join('?' * len(chunk))})", chunk).fetchall())
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise OSError(f"cannot read {path} ({exc})") from exc
    finally:
        conn.close()
    return found


def keys_present(path: Path, table: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` the store at ``path`` holds (read as :func:`values_for` reads)."""
    return set(values_for(path, table, keys))
