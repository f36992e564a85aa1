"""Built-in model adapters. :mod:`egotask.model_adapters.builtin` is the egotask plugin that lists them,
registered by entry point exactly like a third-party one; :mod:`egotask.model_adapters.base` holds what
the adapter classes share."""
