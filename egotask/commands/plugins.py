"""`egotask plugins`: every model adapter and judge the installed plugins provide."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from egotask.plugins import DISABLE_VAR, provided_adapters, provided_judges


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list model adapters and judges, with the package providing each",
                       description="List the model adapters (for --model) and judges (for --judge / "
                                   f"EGOTASK_JUDGE) that installed plugins provide, and each model adapter's "
                                   f"--model_args. {DISABLE_VAR}=a,b blocks plugins by name.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    adapters = provided_adapters()
    rows = [["model", p.item.name, ", ".join(p.item.aliases), p.distribution, p.plugin, p.item.description]
            for p in adapters]
    rows += [["judge", p.item.name, "", p.distribution, p.plugin,
              p.item.description + ("" if p.item.llm else " [rule-based]")] for p in provided_judges()]
    print(tabulate(rows, headers=["kind", "name", "aliases", "package", "plugin", "description"]))
    args = [[p.item.name, ", ".join(f"{a} (required)" if a in p.item.required else a for a in p.item.model_args)
             or "(not declared)", p.item.example or "-"] for p in adapters]
    print("\nEach model adapter's --model_args (`lmms_eval --model NAME --model_args k=v,k=v`):\n")
    print(tabulate(args, headers=["model", "--model_args", "example"]))
    return 0
