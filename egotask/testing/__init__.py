"""Test doubles for the outside world egotask talks to, shipped so that plugin authors, the
benchmarks and ``egotask demo`` can use them too (as httpx ships ``MockTransport``).

- :class:`~egotask.testing.vendor.FakeVendorServer`: one local stand-in for the Gemini API
  (generateContent, Batch, Files) and the OpenAI chat-completions API, with injected latency and
  faults, reached by the real clients through their base-URL settings; its presets
  :class:`~egotask.testing.vendor.FakeVLMServer` (a served model that says how many images it was
  shown) and :class:`~egotask.testing.vendor.FakeJudgeServer` (a judge with a simple verdict rule);
- :class:`~egotask.testing.local_server.LocalServer`: the threaded 127.0.0.1 server they run on;
- :func:`~egotask.testing.app_server.app_server`: ``egotask app`` served on a free local port (the
  app's tests, the first-page benchmark, the docs' screenshot).

Nothing in egotask imports this package but ``egotask demo``'s offline served model. See docs/testing.md.
"""

from typing import Any

# Imported on first use, so that ``python -m egotask.testing.vendor`` runs the module once.
_WHERE = {"FakeJudgeServer": "vendor", "FakeRequest": "vendor", "FakeVLMServer": "vendor", "FakeVendorServer": "vendor",
          "LocalServer": "local_server", "ReplyHandler": "local_server"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'egotask.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"egotask.testing.{_WHERE[name]}"), name)
