"""The server process of `egotask app`: Streamlit's own ``streamlit`` command line, plus a thread that
imports what the page needs (pandas and pyarrow for its tables, PyAV, egotask's modules) as soon as
the server listens.

Streamlit runs the page's script only when a browser connects, so without this the first visitor
waits for those imports (about a second here) after loading Streamlit's frontend. The thread starts
once the port is open, not before: run beside the server's own start-up it competed for the
interpreter and delayed it by more than it saved. A module the script imports meanwhile waits for
the thread's import instead of starting its own.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

PORT_OPTION = "--server.port"


def warm_imports(port: int | None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while port is not None and time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    try:
        import pandas  # noqa: F401 - st.dataframe converts through it, pyarrow tables too
        import pyarrow  # noqa: F401

        import egotask.app.page  # noqa: F401 - streamlit, the loaders, the media helpers (PyAV)
    except Exception:  # noqa: BLE001 - the script run imports them again and shows any error itself
        pass


def option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    port = option(argv, PORT_OPTION)
    threading.Thread(target=warm_imports, args=(int(port) if port else 8501,), name="egotask-app-warm-imports",
                     daemon=True).start()
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", *argv]
    return streamlit_main()


if __name__ == "__main__":
    sys.exit(main())
