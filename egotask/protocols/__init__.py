"""Evaluation protocols: the prompt a model is asked with, how its answer is read, and how it is judged.

The benchmark owns the protocol, not the model adapter. ``EGOTASK_PROTOCOL`` (or ``--protocol`` on
``lmms_eval`` and ``egotask judge``) names one:

- ``egotask`` (the default), packaged here as ``egotask.yaml``;
- a protocol imported with ``egotask protocol import`` (``egotextvqa-official``, ``egotempo-official``),
  kept under ``EGOTASK_CACHE_DIR/protocols``: the official releases' prompts are their authors' text, so
  egotask never ships them;
- or the path of a YAML file of one's own.

Every record names the protocol it was asked and judged under (:meth:`Protocol.record`).
"""

from __future__ import annotations

import threading
from pathlib import Path

from egotask.protocols.spec import JudgeSpec, Prompt, Protocol, ProtocolError, dump_protocol, read_protocol
from egotask.settings import Settings, get_settings

BUILTIN_DIR = Path(__file__).resolve().parent
DEFAULT_PROTOCOL = "egotask"
IMPORTED_DIR = "protocols"  # under EGOTASK_CACHE_DIR
# What `egotask protocol import` writes, and the release each comes from.
OFFICIAL = {
    "egotextvqa-official": "git clone https://github.com/zhousheng97/EgoTextVQA (mllm_prompt.json, gpt_eval.py)",
    "egotempo-official": "git clone https://github.com/google-research-datasets/egotempo (gemini_eval.ipynb)",
}

_lock = threading.Lock()
_loaded: dict[tuple[str, int], Protocol] = {}
_model_identity: str | None = None


def imported_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).cache_dir / IMPORTED_DIR


def available(settings: Settings | None = None) -> dict[str, Path]:
    """Every protocol by name: the packaged ones, then the imported ones (which never shadow them)."""
    found = {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}
    folder = imported_dir(settings)
    if folder.is_dir():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def _is_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or Path(ref).is_file()


def load_protocol(ref: str, settings: Settings | None = None) -> Protocol:
    """A protocol by name or by file path; the error says what exists and how to get the official ones."""
    if _is_path(ref):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ProtocolError(f"protocol file {path} does not exist (EGOTASK_PROTOCOL or --protocol)")
    else:
        known = available(settings)
        if ref not in known:
            how = (f" Import it first from a local clone of the release: {OFFICIAL[ref]}, then "
                   f"`egotask protocol import PATH`." if ref in OFFICIAL else "")
            raise ProtocolError(f"unknown protocol {ref!r} (EGOTASK_PROTOCOL or --protocol); available: "
                                f"{', '.join(known)}; or give the path of a protocol YAML file.{how}")
        path = known[ref]
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _lock:
        if key not in _loaded:
            _loaded[key] = read_protocol(path)
        return _loaded[key]


def active_protocol() -> Protocol:
    """The protocol this process evaluates under (the ``protocol`` setting)."""
    return load_protocol(get_settings().protocol)


def declare_model(identity: str | None) -> None:
    """The model under test, by name and arguments (egotask's ``lmms_eval`` entry says it), so the
    protocol's prompt for its family is chosen. Without it, the ``prompt_family`` setting or the
    protocol's default prompt is used."""
    global _model_identity
    _model_identity = identity


def active_prompt() -> Prompt:
    return active_protocol().prompt_for(get_settings().prompt_family, _model_identity)


def failures_counted_as_wrong(settings: Settings | None = None) -> bool:
    """Whether this run counts items that failed to be judged as no/0: the user's choice
    (``EGOTASK_COUNT_FAILED_AS_WRONG``), or the protocol's own rule (the official EgoTextVQA scorer's)."""
    settings = settings or get_settings()
    return settings.count_failed_as_wrong or load_protocol(settings.protocol, settings).judge.failures == "wrong"


__all__ = ["DEFAULT_PROTOCOL", "OFFICIAL", "JudgeSpec", "Prompt", "Protocol", "ProtocolError", "active_prompt",
           "active_protocol", "available", "declare_model", "dump_protocol", "failures_counted_as_wrong",
           "imported_dir", "load_protocol", "read_protocol"]
