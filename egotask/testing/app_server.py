"""`egotask app` served on a free local port, for the app's tests, the first-page benchmark and the
docs' screenshot script."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate, and kill what does not leave within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def app_server(paths: Sequence[str | Path], env: dict[str, str], port: int | None = None,
               output: Any = subprocess.DEVNULL, timeout: float = 120) -> Iterator[tuple[str, subprocess.Popen]]:
    """`egotask app PATHS --port N` in a subprocess, yielded as (its URL, the process) once Streamlit's
    health check answers, and stopped afterwards. ``output``: where its stdout and stderr go."""
    port = port or free_port()
    egotask = Path(sys.executable).with_name("egotask")
    cmd = [str(egotask)] if egotask.exists() else [sys.executable, "-m", "egotask.cli"]
    proc = subprocess.Popen([*cmd, "app", *map(str, paths), "--port", str(port)], env=env, stdout=output,
                            stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5):  # noqa: S310 - the local app
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"egotask app did not come up on port {port} (exit status "
                                       f"{proc.poll()})") from None
                time.sleep(0.05)
        yield url, proc
    finally:
        stop_process(proc)
