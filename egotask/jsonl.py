"""Reading JSONL files line by line, with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def iter_jsonl(path: str | Path, error: type[Exception]) -> Iterator[tuple[str, Any]]:
    """(``file:line``, parsed JSON) for each non-blank line. A line that is not JSON, or a file that is
    not UTF-8, raises ``error`` naming where."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield f"{path}:{lineno}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise error(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a text file (not UTF-8: {exc.reason} at byte {exc.start})") from None
