"""`egotask tasks-path`: where the task YAMLs are, for plain `lmms-eval --include_path`."""

from __future__ import annotations

import argparse

from egotask.paths import tasks_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks-path", help="print the folder of egotask's lmms-eval task YAMLs",
                       description="Print the folder of egotask's task YAMLs, for "
                                   'lmms-eval --include_path "$(egotask tasks-path)".')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(tasks_path())
    return 0
