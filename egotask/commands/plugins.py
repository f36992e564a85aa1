"""`egotask plugins`: every model adapter and judge the installed plugins provide."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from egotask.plugins import DISABLE_VAR, provided_adapters, provided_judges


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list model adapters and judges, with the package providing each",
                       description="List the model adapters (for --model) and judges (for --judge / "
                                   f"EGOTASK_JUDGE) that installed plugins provide. {DISABLE_VAR}=a,b "
                                   "blocks plugins by name.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = [["model", p.item.name, ", ".join(p.item.aliases), p.distribution, p.plugin, p.item.description]
            for p in provided_adapters()]
    rows += [["judge", p.item.name, "", p.distribution, p.plugin,
              p.item.description + ("" if p.item.llm else " [rule-based]")] for p in provided_judges()]
    print(tabulate(rows, headers=["kind", "name", "aliases", "package", "plugin", "description"]))
    return 0
