"""Writing a file whole or not at all: every file egotask writes goes through here.

The text goes to a temporary file in the same folder, is flushed to disk, and is renamed over the
target only when all of it is there; a failed write (a full disk, a missing folder) removes the
temporary file, leaves the target as it was, and raises :class:`WriteError` naming the file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class WriteError(OSError):
    """A file could not be written; the message names it, and the file is as it was before."""

    @classmethod
    def of(cls, path: Path, exc: OSError, kept: str) -> WriteError:
        error = cls(f"cannot write {path}: {exc.strerror or exc}; {kept}")
        error.errno = exc.errno
        return error


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """``with atomic_open(path) as fh: fh.write(...)``: ``path`` holds what was written once the block
    ends, or (on any error inside it or while writing) is left untouched."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode {mode!r}: only 'w' and 'wb'")
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError.of(path, exc, "nothing was written") from exc
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        with open(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            kept = "the file is left as it was" if path.exists() else "nothing was written"
            raise WriteError.of(path, exc, kept) from exc
        raise


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """``path`` holds ``text``, or, on a failure, what it held before (:class:`WriteError`)."""
    with atomic_open(path, "w", encoding) as fh:
        fh.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)
