"""How long a person waits for the first page of `egotask app`, measured in a real browser.

Fresh `egotask app` servers on example outputs (the demo's generated clips, made-up answers judged by
the heuristic judge: docs/app_screenshot.py's), one after another on one port, and headless Chromium,
driven over the DevTools protocol, opening the page:

- server up: from starting `egotask app` to its health check answering;
- first page: from the browser's request to the page showing the run's summary (its header, metrics
  and first table: the script has run, imports and loading included), on the fresh server. The very
  first visit also loads Streamlit's frontend into an empty browser cache; later servers are opened
  with those files cached, at once and 3 s after the server is up (a person opening the link);
- next visit: the same in a new tab, once the server has run the script before.

--quick runs one server and checks the page: the run's header, its questions count and accuracy. The
checks gate the exit status; the times do not (this machine is shared). Without Chromium (Debian:
apt-get install chromium) it says so and exits 0.

    python benchmarks/app_first_page.py            # 1 + 3 + 3 fresh servers
    python benchmarks/app_first_page.py --quick    # one; what CI runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "docs"))
from _checks import Checks  # noqa: E402

from egotask.fixtures import build_sample_data  # noqa: E402
from egotask.testing.app_server import app_server, free_port, stop_process  # noqa: E402

RUN_NAME = "example-base"
TIMEOUT_S = 120
# When the browser asks for the page after the server is up: at once (a script), or after a person
# has read the address and opened it.
DELAYS_S = (0.0, 3.0)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local servers only
        return response.read().decode()


def wait_until(probe, what: str, proc: subprocess.Popen | None = None) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < TIMEOUT_S:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        try:
            if probe():
                return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what}: nothing after {TIMEOUT_S} s")


class Browser:
    """Headless Chromium and one DevTools connection per tab."""

    def __init__(self, chromium: str, workdir: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tempfile.mkdtemp(dir=workdir)}", f"--remote-debugging-port={self.port}",
             "--window-size=1400,1000", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: get(f"http://127.0.0.1:{self.port}/json/version"), "chromium", self.proc)

    def open(self, url: str, done: str) -> tuple[float, str]:
        """Seconds from asking for ``url`` in a new tab until the JavaScript expression ``done`` is true,
        and the page's text then."""
        from websockets.sync.client import connect

        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local browser
            target = json.loads(response.read())
        with connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
            ids = iter(range(1, 1_000_000))

            def call(method: str, **params) -> dict:
                n = next(ids)
                ws.send(json.dumps({"id": n, "method": method, "params": params}))
                while True:
                    reply = json.loads(ws.recv(timeout=30))
                    if reply.get("id") == n:
                        return reply.get("result", {})

            def value(expression: str):
                return call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

            start = time.perf_counter()
            call("Page.navigate", url=url)
            end = wait_until(lambda: value(done), f"page {url}")
            return end - start, value("document.body.innerText")

    def close(self) -> None:
        stop_process(self.proc)


def one_server(paths: list[Path], env: dict[str, str], browser: Browser, port: int,
               delay: float) -> tuple[list[float], str]:
    start = time.perf_counter()
    with app_server(paths, env, port) as (url, _):
        up = time.perf_counter() - start
        # Done when the run's summary is on the page: its header, the five metrics and the first table.
        done = (f"[...document.querySelectorAll('h2')].some(h => h.innerText.includes({json.dumps(RUN_NAME)}))"
                " && document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 5"
                " && document.querySelector('[data-testid=\"stDataFrame\"]') !== null")
        time.sleep(delay)
        first, text = browser.open(f"{url}/", done)
        again, _ = browser.open(f"{url}/", done)
        return [up, first, again], text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one fresh server (checks; times printed)")
    parser.add_argument("--servers", type=int, default=3, help="fresh servers to time per delay (default 3)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args()
    if not args.chromium:
        print("app_first_page: skipped, no Chromium found (Debian: apt-get install chromium)")
        return 0
    from app_screenshot import example_docs, write_outputs

    checks = Checks("app_first_page")
    with tempfile.TemporaryDirectory(prefix="egotask-app-bench-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        env = {**os.environ, **build_sample_data(root / "data")}
        os.environ.update(env)  # example_docs reads the annotations the sample data set points to
        paths = write_outputs(root, example_docs())
        browser = Browser(args.chromium, root)
        port = free_port()  # one port for every server, so the browser's cache of Streamlit's files applies
        empty_cache: list[float] = []
        times: dict[float, list[list[float]]] = {}
        try:
            for delay in DELAYS_S[:1] if args.quick else DELAYS_S:
                for _ in range(1 if args.quick else args.servers):
                    measured, text = one_server(paths, env, browser, port, delay)
                    if not empty_cache:
                        empty_cache = measured
                    else:
                        times.setdefault(delay, []).append(measured)
        finally:
            browser.close()
    checks.expect(RUN_NAME in text, f"the first page does not name the run {RUN_NAME!r}:\n{text[:2000]}")
    for label in ("questions", "accuracy", "score (0-5)"):
        checks.expect(label in text, f"the first page lacks the {label!r} metric:\n{text[:2000]}")
    rows = [["server up (egotask app -> health check)", f"{empty_cache[0]:.2f}", "1"],
            ["first page, browser opened at once, its cache empty", f"{empty_cache[1]:.2f}", "1"],
            ["next visit (new tab)", f"{empty_cache[2]:.2f}", "1"]]
    for delay, runs in times.items():
        when = "at once" if delay == 0 else f"{delay:g} s after the server is up"
        rows.append([f"first page, browser opened {when}, Streamlit's files cached",
                     f"{statistics.median(t[1] for t in runs):.2f}", str(len(runs))])
    every = [t for runs in times.values() for t in runs]
    if every:
        for i, label in ((0, "server up, every later server"), (2, "next visit, every later server")):
            rows.append([label, f"{statistics.median(t[i] for t in every):.2f}", str(len(every))])
    print(tabulate(rows, headers=["", "median s", "servers"]))
    return checks.exit_code()


if __name__ == "__main__":
    sys.exit(main())
