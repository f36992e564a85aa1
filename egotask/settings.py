"""egotask's settings: every ``EGOTASK_*`` and data-folder variable, read once per process into one
typed object.

No other module reads ``os.environ`` for egotask's own settings. Command-line flags override fields
with :func:`configure`, never by writing the environment. Vendors' variables (API keys, base URLs) are
left to their clients; :func:`vendor_value` is the one place egotask looks at them itself (to say early
that a key is missing).

The documentation's settings page (docs/reference/settings.md) is :func:`variables_markdown`; a test keeps the
two equal.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A variable (or flag) with a value egotask cannot use; the message names it."""


# --------------------------------------------------------------------------- parsers

def _text(raw: str) -> str:
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a number >= 0")
    return value


def _flag(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1/true/yes/on or 0/false/no/off")


def _names(raw: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    parse.choices = choices  # type: ignore[attr-defined]
    return parse


def _setting(var: str, default: Any, parse: Callable[[str], Any], doc: str) -> Any:
    return field(default=default, metadata={"var": var, "parse": parse, "doc": doc})


# --------------------------------------------------------------------------- the object

@dataclass(frozen=True)
class Settings:
    """What egotask reads from the environment. Each field's metadata names its variable."""

    # the judge
    protocol: str = _setting("EGOTASK_PROTOCOL", "egotask", _text,
                             "evaluation protocol: the prompt, the answer extraction and the judge prompt "
                             "(`egotask protocol list`), by name or as a YAML file; `--protocol` overrides it")
    prompt_family: str | None = _setting("EGOTASK_PROMPT_FAMILY", None, _text,
                                         "which of the protocol's per-model prompts to ask with (default: the "
                                         "family the model's name matches, else the protocol's first)")
    judge: str | None = _setting("EGOTASK_JUDGE", None, _text,
                                 "judge backend (`egotask plugins` lists them; `heuristic` is offline); "
                                 "`--judge` overrides it (default: the protocol's, `gemini` for egotask's)")
    judge_model: str | None = _setting("EGOTASK_JUDGE_MODEL", None, _text,
                                       "judging model (default: the protocol's, else the backend's: "
                                       "gemini-2.5-flash for gemini)")
    judge_concurrency: int = _setting("EGOTASK_JUDGE_CONCURRENCY", 16, _positive_int,
                                      "judge requests in flight at once")
    judge_rpm: float | None = _setting("EGOTASK_JUDGE_RPM", None, _positive_float,
                                       "at most this many judge requests per minute (default: no limit)")
    judge_timeout: float = _setting("EGOTASK_JUDGE_TIMEOUT", 60.0, _positive_float,
                                    "seconds a judge request may wait for the server at any one moment "
                                    "(connecting, each read)")
    judge_deadline: float | None = _setting("EGOTASK_JUDGE_DEADLINE", None, _positive_float,
                                            "seconds one judge request may take in all, however slowly the "
                                            "server sends (default: `EGOTASK_JUDGE_TIMEOUT`)")
    judge_max_attempts: int = _setting("EGOTASK_JUDGE_MAX_ATTEMPTS", 6, _positive_int,
                                       "attempts per item on 408/409/429/5xx, timeouts and connection errors")
    judge_backoff: float = _setting("EGOTASK_JUDGE_BACKOFF", 1.0, _non_negative_float,
                                    "first retry delay in seconds (doubles, with jitter, never before Retry-After)")
    judge_retry_after_max: float = _setting("EGOTASK_JUDGE_RETRY_AFTER_MAX", 60.0, _non_negative_float,
                                            "longest wait in seconds before a retry: a longer `Retry-After` is "
                                            "cut to this, and the log says so")
    judge_budget: float | None = _setting("EGOTASK_JUDGE_BUDGET", None, _positive_float,
                                          "seconds the judging of a run may take in all, from its first request; "
                                          "then the items left fail (never counted as wrong; a rerun asks only "
                                          "for them) (default: no limit)")
    judge_mode: str = _setting("EGOTASK_JUDGE_MODE", "sync", _choice("sync", "defer"),
                               "`sync` judges each answer as the model run goes; `defer` writes the samples with "
                               "verdicts pending, for `egotask judge RUN_DIR --batch` later; `--judge-mode` "
                               "overrides it")
    judge_cache: str = _setting("EGOTASK_JUDGE_CACHE", "on", _choice("on", "off", "refresh"),
                                "verdict cache: `on` reuses, `refresh` judges again and overwrites, `off` "
                                "neither reads nor writes; `--judge-cache` overrides it")
    plan_latency: float = _setting("EGOTASK_PLAN_LATENCY", 3.0, _positive_float,
                                   "seconds one judge request is assumed to take, for `--plan`'s time estimate "
                                   "(an assumption, not a measurement); `--plan-latency` overrides it")
    plan_output_tokens: int = _setting("EGOTASK_PLAN_OUTPUT_TOKENS", 300, _positive_int,
                                       "output tokens one verdict is assumed to cost (its JSON and any thinking "
                                       "tokens), for `--plan`'s cost estimate")
    cache_dir: Path = _setting("EGOTASK_CACHE_DIR", Path.home() / ".cache" / "egotask", _path,
                               "folder of the verdict and answer caches (SQLite), of the visible-interval "
                               "clips made for lmms-eval's own models and of the Hub video repo's file listing")
    # the model under test
    answer_cache: str = _setting("EGOTASK_ANSWER_CACHE", "on", _choice("on", "off", "refresh"),
                                 "answers of egotask's adapters, kept as they are made: `on` reuses them (a "
                                 "killed run, rerun, generates only what is missing), `refresh` generates again, "
                                 "`off` neither reads nor writes")
    # scoring
    count_failed_as_wrong: bool = _setting("EGOTASK_COUNT_FAILED_AS_WRONG", False, _flag,
                                           "a run counts items that failed to be judged as no/0 (recorded with "
                                           "its results; reports never re-read it)")
    # data
    missing_videos: str = _setting("EGOTASK_MISSING_VIDEOS", "error", _choice("error", "skip"),
                                   "`skip` leaves out questions whose video file is missing (counted in the "
                                   "results) instead of stopping before the model loads")
    split_manifest: Path | None = _setting("EGOTASK_SPLIT_MANIFEST", None, _path,
                                           "train/val/test split manifest for the `*_test` tasks and finetuning "
                                           "(default: egotask's packaged one)")
    egotextvqa_annotations: Path | None = _setting("EGOTEXTVQA_ANNOTATIONS", None, _path,
                                                   "folder with `egotextvqa_{indoor,outdoor}_annotation.jsonl` "
                                                   "(default: the Hub)")
    egotextvqa_dataset: Path | None = _setting("EGOTEXTVQA_DATASET", None, _path,
                                               "a folder written by `egotask data build-qa`; wins over "
                                               "`EGOTEXTVQA_ANNOTATIONS`")
    egotextvqa_video_dir: Path | None = _setting("EGOTEXTVQA_VIDEO_DIR", None, _path,
                                                 "folder with `EgoTextVQA-Indoor/` and `EgoTextVQA-Outdoor/` "
                                                 "(default: download from the Hub)")
    egotempo_annotations: Path | None = _setting("EGOTEMPO_ANNOTATIONS", None, _path,
                                                 "EgoTempo's `egotempo_openQA.json` (default: the Hub)")
    egotempo_video_dir: Path | None = _setting("EGOTEMPO_VIDEO_DIR", None, _path,
                                               "folder of `<clip_id>.mp4` files (`egotask data trim-egotempo`)")
    # plugins
    disable_plugins: tuple[str, ...] = _setting("EGOTASK_DISABLE_PLUGINS", (), _names,
                                                "comma-separated plugin (entry-point) names not to load")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; an empty variable means its default."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["var"], "").strip()
            if raw:
                values[f.name] = _parse(f, raw)
        return cls(**values)

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some fields set (``None`` for an optional field resets it)."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        values: dict[str, Any] = {}
        for name, value in overrides.items():
            if name not in fields:
                raise TypeError(f"unknown setting {name!r}")
            # Strings and numbers go through the variable's parser, so they are checked the same way.
            checked = isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))
            values[name] = _parse(fields[name], str(value)) if checked else value
        return dataclasses.replace(self, **values)

    def value_of(self, var: str) -> Any:
        """The value of the field a variable sets (for code that carries variable names, like the
        benchmark table)."""
        return getattr(self, field_of(var).name)


def _parse(f: dataclasses.Field, raw: str) -> Any:
    try:
        return f.metadata["parse"](raw.strip())
    except ValueError as exc:
        raise SettingsError(f"{f.metadata['var']}={raw!r}: {exc}") from None


def field_of(var: str) -> dataclasses.Field:
    for f in dataclasses.fields(Settings):
        if f.metadata["var"] == var:
            return f
    raise KeyError(f"{var} is not an egotask setting")


VARIABLES: tuple[str, ...] = tuple(f.metadata["var"] for f in dataclasses.fields(Settings))

# --------------------------------------------------------------------------- the process's settings

_lock = threading.Lock()
_current: Settings | None = None


def get_settings() -> Settings:
    """The process's settings: read from the environment on first use, then fixed."""
    global _current
    with _lock:
        if _current is None:
            _current = Settings.from_env()
        return _current


def configure(**overrides: Any) -> Settings:
    """Override fields of the process's settings (what command-line flags do)."""
    global _current
    new = get_settings().replace(**overrides)
    with _lock:
        _current = new
    return new


def reset() -> None:
    """Forget the process's settings, so the next :func:`get_settings` reads the environment again
    (for tests, which change variables between cases)."""
    global _current
    with _lock:
        _current = None


def child_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """The environment for an egotask child process: this one's, with the settings written back as
    variables so the child sees the same choices (flags included), plus ``extra``."""
    settings = settings or get_settings()
    env = dict(os.environ)
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        var = f.metadata["var"]
        if value is None or value == ():
            env.pop(var, None)
        else:
            env[var] = ",".join(value) if isinstance(value, tuple) else str(int(value) if isinstance(value, bool)
                                                                              else value)
    env.update(extra)
    return env


def vendor_value(var: str) -> str:
    """A vendor's own variable (API key, base URL), which its client reads itself; egotask only
    checks it is there."""
    return os.environ.get(var, "").strip()


def set_vendor_value(var: str, value: str | None) -> None:
    """Set a vendor's variable for this process and the children it starts (the vLLM backend gives
    each data-parallel rank's engine its own GPUs through ``CUDA_VISIBLE_DEVICES``); ``None`` unsets it."""
    if value is None:
        os.environ.pop(var, None)
    else:
        os.environ[var] = value


def variables_markdown() -> str:
    """The settings page's table of variables, one row per setting."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    home = str(Path.home())
    for f in dataclasses.fields(Settings):
        default = f.default
        if default is None or default == ():
            shown = "unset"
        elif isinstance(default, bool):
            shown = f"`{int(default)}`"
        else:
            shown = f"`{str(default).replace(home, '~')}`"
        rows.append(f"| `{f.metadata['var']}` | {shown} | {f.metadata['doc']} |")
    return "\n".join(rows)
