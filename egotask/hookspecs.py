"""The hooks an egotask plugin can implement.

A plugin is a module with functions marked ``@hookimpl``, registered through the ``egotask``
entry-point group (``[project.entry-points.egotask] my_plugin = "my_package.plugin"``). Built-in
adapters and judges register the same way. Each hook returns a list; keep plugin modules cheap to
import and name heavy classes by import path (see ``plugins/egotask-ocr``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from egotask.judges.base import Judge

hookspec = pluggy.HookspecMarker("egotask")
hookimpl = pluggy.HookimplMarker("egotask")


@dataclass(frozen=True)
class ModelAdapter:
    """A model lmms-eval can run: ``class_path`` is ``"package.module.Class"`` of an ``lmms`` subclass."""

    name: str  # what --model takes
    class_path: str  # imported only when the model is run
    description: str  # one line, shown by `egotask plugins` and the unknown-model error
    aliases: tuple[str, ...] = ()  # other names --model accepts
    # True when the class samples inside VisibleVideo intervals itself (every FramesModel does); other
    # models are handed an exact cut of each real-time question's visible interval instead.
    reads_intervals: bool = False


@dataclass(frozen=True)
class JudgeBackend:
    """A judge: ``factory()`` builds the :class:`~egotask.judges.base.Judge` (called once per process)."""

    name: str
    factory: Callable[[], Judge]
    description: str
    llm: bool = True  # False for rule-based judges, which reports label as such
    env_vars: tuple[str, ...] = field(default=())  # variables that configure it, for --help and errors


@hookspec
def egotask_model_adapters() -> list[ModelAdapter]:
    """Return the model adapters this plugin provides."""


@hookspec
def egotask_judges() -> list[JudgeBackend]:
    """Return the judge backends this plugin provides."""
