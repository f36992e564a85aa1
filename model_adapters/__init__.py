"""Built-in model adapters. Each module is an egotask plugin registered by entry point, exactly
like a third-party one; :mod:`egotask.model_adapters.base` holds what they share."""
