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

from egotask.testing.local_server import LocalServer, ReplyHandler
from egotask.testing.vendor import FakeJudgeServer, FakeRequest, FakeVendorServer, FakeVLMServer

__all__ = ["FakeJudgeServer", "FakeRequest", "FakeVLMServer", "FakeVendorServer", "LocalServer", "ReplyHandler"]
