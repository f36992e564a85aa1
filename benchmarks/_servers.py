"""The fake vendor servers the throughput benchmarks talk to, each in its own process so that its
work takes none of the measured client's GIL."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def fake_server(latency: float, judge: bool = False) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m egotask.testing.vendor --latency L [--judge]`` (a judge's replies, else a served
    model's), yielded as (its base URL, its process) once it prints the URL,
    and stopped afterwards. A server that does not start ends the benchmark with what it said."""
    command = [sys.executable, "-m", "egotask.testing.vendor", "--latency", str(latency)]
    server = subprocess.Popen(command + (["--judge"] if judge else []), stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit(f"the fake server did not start (exit status {server.poll()}, said {url!r})")
        yield url, server
    finally:
        server.terminate()
        server.wait()
