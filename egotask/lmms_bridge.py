"""lmms-eval's ``lmms_eval.models`` entry point: a manifest for every adapter egotask's plugins
provide, so plain ``lmms-eval --model <adapter>`` finds third-party adapters too."""

from __future__ import annotations

import warnings
from pathlib import Path


def model_manifests() -> list:
    # lmms-eval drops *all* entry-point models if one entry point raises, so this never does.
    try:
        from lmms_eval.models.registry_v2 import ModelManifest

        from egotask.plugins import model_adapters

        return [ModelManifest(model_id=a.name, simple_class_path=a.class_path, aliases=a.aliases)
                for a in model_adapters().values()]
    except Exception as exc:  # pragma: no cover - defensive
        warnings.warn(f"egotask: could not list model adapters for lmms-eval: {exc!r}", stacklevel=2)
        return []


class UnknownModelError(ValueError):
    """``--model`` names no adapter egotask's plugins provide and no lmms-eval built-in."""


class ModelArgsError(ValueError):
    """``--model_args`` lack what an egotask adapter needs, or name what it does not take."""


class MissingWeightsError(ValueError):
    """``pretrained=`` names weights that are neither on disk nor obtainable; the message says how to get them."""


def _how_to_get(pretrained: str) -> str:
    return (f"Download it with `hf download {pretrained}` where the Hub is reachable (it lands in the Hugging Face "
            f"cache, which HF_HOME moves), or pass pretrained=<a local folder>; offline, check that HF_HUB_OFFLINE=1 "
            "is set only once the weights are in the cache.")


def check_weights(pretrained: str) -> None:
    """Fail before anything loads when ``pretrained`` is a path that does not exist, or a Hub id that is
    not in the local cache while the Hub is switched off (``HF_HUB_OFFLINE``)."""
    path = Path(pretrained).expanduser()
    if path.exists():
        return
    if pretrained.startswith(("/", "./", "../", "~")) or pretrained.count("/") > 1:
        raise MissingWeightsError(f"pretrained={pretrained}: no such folder")
    from huggingface_hub import constants, try_to_load_from_cache

    if any(isinstance(try_to_load_from_cache(pretrained, name), str)
           for name in ("config.json", "adapter_config.json")):
        return
    if constants.HF_HUB_OFFLINE:
        raise MissingWeightsError(f"pretrained={pretrained}: not a local folder and not in the Hugging Face cache "
                                  f"({constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE is set, so it cannot be "
                                  f"downloaded. {_how_to_get(pretrained)}")


def check_model_weights(name: str, model_args: str | None) -> None:
    """:func:`check_weights` for an egotask adapter that loads ``pretrained=`` (the last check before the
    model loads: the data and the judge are checked first)."""
    from egotask.plugins import model_adapters

    given = parse_model_args(model_args)
    for adapter in model_adapters().values():
        if name in (adapter.name, *adapter.aliases) and given.get("pretrained") and "pretrained" in adapter.model_args:
            check_weights(given["pretrained"])


def weights_hint(exc: BaseException, model_args: str | None) -> str | None:
    """A short explanation for a load that failed because the weights could not be found or fetched
    (transformers' "couldn't connect to huggingface.co" / "not a valid model identifier"), else None."""
    text = str(exc)
    markers = ("couldn't connect to", "not a valid model identifier", "does not appear to have a file named")
    if not isinstance(exc, OSError) or not any(m in text for m in markers):
        return None
    pretrained = parse_model_args(model_args).get("pretrained", "?")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"the weights of pretrained={pretrained} could not be loaded ({first}). {_how_to_get(pretrained)}"


def parse_model_args(text: str | None) -> dict[str, str]:
    """``k=v,k=v`` as lmms-eval splits ``--model_args`` (values stay strings)."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if part.strip():
            key, _, value = part.partition("=")
            out[key.strip()] = value.strip()
    return out


def check_model(name: str, model_args: str | None = None) -> None:
    """Fail before anything loads when ``--model`` is unknown (see :func:`check_model_name`) or, for an
    egotask adapter, when ``--model_args`` lack a required argument or name one it does not take."""
    from egotask.plugins import model_adapters

    for adapter in model_adapters().values():
        if name in (adapter.name, *adapter.aliases):
            given = parse_model_args(model_args)
            problem = adapter.missing_args(given)
            if problem:
                raise ModelArgsError(problem)
            _check_frame_args(given)
            return
    check_model_name(name)


def _check_frame_args(given: dict[str, str]) -> None:
    """Frame settings out of range are usage errors before anything loads (egotask.frames)."""
    from egotask.frames import FrameSettingsError, check_frame_args

    try:
        check_frame_args(given)
    except FrameSettingsError as exc:
        raise ModelArgsError(f"--model_args {exc}") from None


def check_model_name(name: str) -> None:
    """Fail before anything loads when ``name`` is not a model lmms-eval can build, listing
    egotask's adapters first (lmms-eval's own error lists its 100+ built-ins in one line)."""
    import difflib

    from lmms_eval.models import MODEL_REGISTRY_V2

    from egotask.plugins import model_adapters

    known = MODEL_REGISTRY_V2.list_model_names()
    if name in known:
        return
    adapters = model_adapters()
    listed = "\n".join(f"  {a.name:<14} {a.description}" + (f" (aliases: {', '.join(a.aliases)})" if a.aliases
                                                              else "") for a in adapters.values())
    close = difflib.get_close_matches(name, known, n=3)
    raise UnknownModelError(
        f"unknown --model {name!r}.\negotask's model adapters (from `egotask plugins`):\n"
        f"{listed or '  none: check EGOTASK_DISABLE_PLUGINS and the warnings above'}\n"
        + (f"Did you mean: {', '.join(close)}?\n" if close else "")
        + "lmms-eval's built-in models are accepted too, and a plugin package can add more "
        "(docs/models/adapters.md).")


def model_reads_intervals(name: str) -> bool:
    """Whether ``--model name`` is an egotask adapter that samples inside each question's visible
    interval itself; any other model (lmms-eval's own included) is handed exact cuts instead."""
    from egotask.plugins import model_adapters

    for adapter in model_adapters().values():
        if name == adapter.name or name in adapter.aliases:
            return adapter.reads_intervals
    return False
