"""A threaded HTTP/1.1 server on 127.0.0.1 and a quiet request handler that sends whole replies: what
:mod:`egotask.testing.vendor`'s fake vendor API runs on, and any other local stand-in may."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

# typing.Self is Python 3.11+; the package supports 3.10.
_Server_T = TypeVar("_Server_T", bound="LocalServer")


class ReplyHandler(BaseHTTPRequestHandler):
    """Keep-alive, unlogged, and one reply per request in :meth:`reply`."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two writes stall ~40 ms on delayed ACKs

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a fault that hangs, or a killed run)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog (5) overflows when a client opens 32 connections at once on a busy
    # machine: the kernel resets some, and the client's retries (with backoff) then time the fake
    # server, not the client. A real endpoint accepts them.
    request_queue_size = 256


class LocalServer:
    """``with Subclass(...) as server: ... server.url ...``: serves :meth:`handler` on a free port."""

    thread_name = "fake-server"

    def __init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self: _Server_T) -> _Server_T:
        self._httpd = _Server(("127.0.0.1", 0), self.handler())
        threading.Thread(target=self._httpd.serve_forever, daemon=True, name=self.thread_name).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self: _Server_T) -> _Server_T:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
