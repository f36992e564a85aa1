"""The hooks an egotask plugin can implement.

A plugin is a module with functions marked ``@hookimpl`` (or an object with such methods, named as
``"package.module:name"``), registered through the ``egotask`` entry-point group
(``[project.entry-points.egotask] my_plugin = "my_package.plugin"``). Built-in adapters and judges
register the same way. Each hook returns a list; keep plugin modules cheap to import (`egotask
plugins`, `egotask judge` and lmms-eval's model listing load them all, and must not wait for torch) and
name heavy classes by import path (see ``plugins/egotask-ocr`` and ``egotask.model_adapters.builtin``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from egotask.judges.base import Judge
    from egotask.settings import Settings

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
    # The --model_args the class takes (its __init__ keywords), shown by `egotask plugins`; `required`
    # ones are checked before anything loads, and the error shows `example` (a working --model_args).
    model_args: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    example: str = ""

    def missing_args(self, given: dict[str, str]) -> str | None:
        """Why ``given`` (parsed --model_args) cannot build this model, or None: an argument it does
        not take, or a required one that is absent or empty."""
        unknown = sorted(set(given) - set(self.model_args)) if self.model_args else []
        if unknown:
            return f"--model {self.name}: unknown --model_args {unknown}; it takes: {', '.join(self.model_args)}"
        missing = [arg for arg in self.required if not given.get(arg)]
        if not missing:
            return None
        example = f", for example --model_args {self.example}" if self.example else ""
        return (f"--model {self.name} needs {' and '.join(f'{a}=' for a in missing)} in --model_args{example}. "
                f"`egotask plugins` lists every adapter's arguments.")


@dataclass(frozen=True)
class JudgeBackend:
    """A judge: ``factory(settings)`` builds the :class:`~egotask.judges.base.Judge` from egotask's
    settings (a Judge subclass is such a factory)."""

    name: str
    factory: Callable[[Settings], Judge]
    description: str
    llm: bool = True  # False for rule-based judges, which reports label as such
    env_vars: tuple[str, ...] = field(default=())  # variables that configure it, for --help and errors


@hookspec
def egotask_model_adapters() -> list[ModelAdapter]:
    """Return the model adapters this plugin provides."""


@hookspec
def egotask_judges() -> list[JudgeBackend]:
    """Return the judge backends this plugin provides."""
