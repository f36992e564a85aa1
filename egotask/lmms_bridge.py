"""lmms-eval's ``lmms_eval.models`` entry point: a manifest for every adapter egotask's plugins
provide, so plain ``lmms-eval --model <adapter>`` finds third-party adapters too."""

from __future__ import annotations

import warnings


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
