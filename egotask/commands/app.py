"""`egotask app`: the error-analysis app (Streamlit) on lmms-eval outputs or record files."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app", help="browse predictions, verdicts and videos, and compare runs (Streamlit)",
        description="Start the error-analysis app: filter questions by task, type, verdict, score and text; "
                    "play each video with its questions captioned at their timestamps; see the frames the "
                    "model saw; compare two runs on the same questions; summary per question type. Videos "
                    "come from the tasks' variables (EGOTEXTVQA_VIDEO_DIR, EGOTEMPO_VIDEO_DIR). "
                    "Needs the `app` extra: pip install -e \".[app]\" in the egotask clone (make install "
                    "installs it).")
    p.add_argument("paths", nargs="*", metavar="OUTPUT",
                   help="lmms-eval output folders (run with --log_samples), results or samples files, or "
                        "JSONL files of sample records (from `egotask import-legacy`); more can be added or "
                        "uploaded in the app")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default: 8501)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for all)")
    p.add_argument("--browser", action="store_true", help="open a browser tab once the app is up")
    p.set_defaults(func=run)


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The `streamlit run` command line for these arguments (paths made absolute)."""
    paths = [str(Path(p).expanduser().resolve()) for p in args.paths]
    # egotask.app.serve is `python -m streamlit` that imports the page's libraries while it starts.
    return [sys.executable, "-m", "egotask.app.serve", "run", str(PAGE),
            "--server.port", str(args.port), "--server.address", args.host,
            "--server.headless", "false" if args.browser else "true",
            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer",
            "--", *paths]


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        print("egotask app: Streamlit is not installed; install the app extra: pip install -e \".[app]\" in the "
              "egotask "
              "clone (make install installs it)",
              file=sys.stderr)
        return 2
    for path in args.paths:
        if not Path(path).expanduser().exists():
            print(f"egotask app: warning: {path}: no such file or folder (the app will say so too)",
                  file=sys.stderr)
    cmd = streamlit_command(args)
    print(f"egotask app: serving on http://{args.host}:{args.port} (Ctrl+C stops it)", flush=True)
    if os.name == "posix":
        os.execv(cmd[0], cmd)  # become the server: signals reach it and nothing is left running
    return subprocess.call(cmd)
