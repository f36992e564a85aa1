"""Replace the generated results block of a README, and nothing else."""

from __future__ import annotations

from pathlib import Path

START = "<!-- egotask:results:start -->"
END = "<!-- egotask:results:end -->"


class ReadmeMarkerError(ValueError):
    """The README lacks the markers, or has them more than once or in the wrong order."""


def replace_block(text: str, block: str, where: str = "README") -> str:
    """``text`` with everything between the markers replaced by ``block``; idempotent."""
    starts, ends = text.count(START), text.count(END)
    if starts == 0 or ends == 0:
        missing = " and ".join(m for m, c in ((START, starts), (END, ends)) if c == 0)
        raise ReadmeMarkerError(
            f"{where}: no {missing} marker. Add these two lines where the results belong, then rerun:\n"
            f"{START}\n{END}")
    if starts > 1 or ends > 1:
        raise ReadmeMarkerError(f"{where}: the results markers must appear once each "
                                f"(found {starts} start and {ends} end markers)")
    head, rest = text.split(START, 1)
    if END not in rest:
        raise ReadmeMarkerError(f"{where}: {END} comes before {START}")
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block.strip()}\n{END}{tail}"


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
    path.write_text(new, encoding="utf-8")
    return True
