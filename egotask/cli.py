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
    "egotask.commands.plan",
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
    # A command that hands its arguments on (`egotask plan` to lmms_eval's parser) takes the ones it
    # does not know; any other command rejects them as before.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "pass_through", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.lmms_eval_args = [*getattr(args, "lmms_eval_args", []), *extra]
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
