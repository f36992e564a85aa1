"""The ``egotask`` command. Each subcommand lives in its own module under ``egotask.commands`` and
adds itself to the parser with ``add_parser(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from egotask import __version__

# Order is the order of `egotask --help`.
SUBCOMMANDS = [
    "egotask.commands.tasks_path",
    "egotask.commands.demo",
    "egotask.commands.data",
    "egotask.commands.plugins",
    "egotask.commands.report",
    "egotask.commands.import_legacy",
    "egotask.commands.judge",
    "egotask.commands.protocol",
    "egotask.commands.finetune",
    "egotask.commands.app",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egotask",
        description="Evaluate vision-language models on egocentric video QA (EgoTextVQA, EgoTempo) "
                    "with lmms-eval. Run `lmms_eval --tasks egotextvqa_indoor --model qwen3vl ...` to "
                    "evaluate; these subcommands prepare data, run the demo and report results.",
    )
    parser.add_argument("--version", action="version", version=f"egotask {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("egotask: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
