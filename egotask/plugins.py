"""Owns the plugin manager: loads every ``egotask`` entry point, built-in or third-party, alike.

``EGOTASK_DISABLE_PLUGINS=name1,name2`` blocks plugins by entry-point name. A plugin that fails to
import, or whose hook raises, is reported with a warning naming it, and the others still load.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

import pluggy

from egotask import hookspecs
from egotask.hookspecs import JudgeBackend, ModelAdapter
from egotask.settings import get_settings

ENTRY_POINT_GROUP = "egotask"
DISABLE_VAR = "EGOTASK_DISABLE_PLUGINS"


class PluginWarning(UserWarning):
    """A plugin could not be loaded or its hook failed."""


@dataclass(frozen=True)
class Provided:
    """One thing a plugin provides, with where it came from (for `egotask plugins`)."""

    item: ModelAdapter | JudgeBackend
    plugin: str
    distribution: str


_warned: set[str] = set()  # messages already shown by this plugin manager


def warn(message: str) -> None:
    """Warn once per plugin manager, even though importing lmms-eval switches every warning off."""
    if message in _warned:
        return
    _warned.add(message)
    with warnings.catch_warnings():
        warnings.simplefilter("always", PluginWarning)
        warnings.warn(message, PluginWarning, stacklevel=3)


def disabled_plugins() -> set[str]:
    return set(get_settings().disable_plugins)


@cache
def get_plugin_manager() -> pluggy.PluginManager:
    _warned.clear()
    pm = pluggy.PluginManager("egotask")
    pm.add_hookspecs(hookspecs)
    blocked = disabled_plugins()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in blocked:
            pm.set_blocked(ep.name)
            continue
        if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            warn(f"egotask plugin {ep.name!r} ({ep.value}, from {_dist_name(ep)}) failed to load and is "
                 f"skipped: {exc!r}. {DISABLE_VAR}={ep.name} silences this.")
    _check_pending(pm)
    return pm


def _check_pending(pm: pluggy.PluginManager) -> None:
    """A hook implementation that matches no hookspec (a misspelled name) would silently provide
    nothing: name each such plugin and hook. pluggy's check_pending() finds them; it stops at the first,
    so the rest are listed from the same registry."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        for name in dir(pm.hook):
            hook = getattr(pm.hook, name)
            if name.startswith("_") or hook.has_spec():
                continue
            for impl in hook.get_hookimpls():
                if not impl.optionalhook:
                    known = ", ".join(n for n in dir(hookspecs) if n.startswith("egotask_"))
                    warn(f"egotask plugin {impl.plugin_name!r} implements {name!r}, which is no egotask hook "
                         f"(misspelled?), so it provides nothing there; the hooks are: {known}")


def _dist_name(ep) -> str:
    return ep.dist.name if ep.dist else "?"


def _distribution_of(plugin_name: str) -> str:
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=plugin_name):
        return _dist_name(ep)
    return "?"


def _collect(hook_name: str) -> list[Provided]:
    pm = get_plugin_manager()
    found: list[Provided] = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            items = impl.function() or []
        except Exception as exc:
            warn(f"egotask plugin {impl.plugin_name!r}: {hook_name}() failed and is skipped: {exc!r}")
            continue
        dist = _distribution_of(impl.plugin_name)
        found.extend(Provided(item, impl.plugin_name, dist) for item in items)
    return found


def provided_adapters() -> list[Provided]:
    return _collect("egotask_model_adapters")


def provided_judges() -> list[Provided]:
    return _collect("egotask_judges")


def model_adapters() -> dict[str, ModelAdapter]:
    """Adapters by name. A later plugin does not silently replace an earlier one's name."""
    out: dict[str, ModelAdapter] = {}
    for p in provided_adapters():
        if p.item.name in out:
            warn(f"model adapter {p.item.name!r} from plugin {p.plugin!r} ignored: another plugin "
                 "already provides that name")
            continue
        out[p.item.name] = p.item
    return out


def judge_backends() -> dict[str, JudgeBackend]:
    return {p.item.name: p.item for p in reversed(provided_judges())}
