"""Replace the generated results block of a README, and nothing else.

The markers count only on a line of their own, so prose that quotes them (as egotask's README does)
is left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from egotask.atomic import write_text

START = "<!-- egotask:results:start -->"
END = "<!-- egotask:results:end -->"


class ReadmeMarkerError(ValueError):
    """The README lacks the markers, or has them more than once or in the wrong order."""


def _marker_lines(text: str, marker: str) -> list[re.Match[str]]:
    return list(re.finditer(rf"^[ \t]*{re.escape(marker)}[ \t]*$", text, flags=re.MULTILINE))


def replace_block(text: str, block: str, where: str = "README") -> str:
    """``text`` with everything between the marker lines replaced by ``block``; idempotent."""
    starts, ends = _marker_lines(text, START), _marker_lines(text, END)
    if not starts or not ends:
        missing = " and ".join(m for m, found in ((START, starts), (END, ends)) if not found)
        raise ReadmeMarkerError(
            f"{where}: no {missing} marker line. Add these two lines where the results belong, then "
            f"rerun:\n{START}\n{END}")
    if len(starts) > 1 or len(ends) > 1:
        raise ReadmeMarkerError(f"{where}: the results marker lines must appear once each "
                                f"(found {len(starts)} start and {len(ends)} end markers)")
    start, end = starts[0], ends[0]
    if end.start() < start.end():
        raise ReadmeMarkerError(f"{where}: {END} comes before {START}")
    return f"{text[:start.end()]}\n{block.strip()}\n{text[end.start():]}"


def update_readme(path: str | Path, block: str) -> bool:
    """Write the block into the README at ``path``; True if the file changed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReadmeMarkerError(f"{path}: cannot read the README ({exc.strerror})") from None
    new = replace_block(text, block, str(path))
    if new == text:
        return False
    write_text(path, new)  # whole or not at all: a full disk must not cut the user's README
    return True
