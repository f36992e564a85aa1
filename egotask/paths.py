"""Where egotask's packaged files are."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def tasks_path() -> Path:
    """The folder of task YAMLs, for ``lmms-eval --include_path``."""
    return PACKAGE_DIR / "tasks"
