"""`egotask plugins`: every model adapter and judge the installed plugins provide."""

from __future__ import annotations

import argparse
import shutil

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
    print(fitted(rows, ["kind", "name", "aliases", "package", "plugin", "description"]))
    args = [[p.item.name, ", ".join(f"{a} (required)" if a in p.item.required else a for a in p.item.model_args)
             or "(not declared)", p.item.example or "-"] for p in adapters]
    print("\nEach model adapter's --model_args (`lmms_eval --model NAME --model_args k=v,k=v`):\n")
    print(fitted(args, ["model", "--model_args", "example"]))
    judges = [[p.item.name, ", ".join(p.item.env_vars) or "(none declared)"] for p in provided_judges()]
    print("\nEach judge's settings (environment variables; docs/reference/settings.md explains each):\n")
    print(fitted(judges, ["judge", "environment variables"]))
    return 0


def fitted(rows: list[list[str]], headers: list[str], width: int | None = None) -> str:
    """A table no wider than the terminal (``width``, default its columns): the widest columns' text
    wraps onto more lines, keeping at least 24 characters of each per line."""
    width = (width or shutil.get_terminal_size((100, 24)).columns) - 2  # tabulate may pad a wrapped cell
    caps = [max(len(str(v)) for v in [h, *(r[i] for r in rows)]) for i, h in enumerate(headers)]
    for _ in headers:
        excess = sum(caps) + 2 * (len(caps) - 1) - width
        widest = max(range(len(caps)), key=caps.__getitem__)
        if excess <= 0 or caps[widest] <= 24:
            break
        caps[widest] = max(24, caps[widest] - excess)
    # "pretrained (required)" stays on one line: a no-break space, which the wrapping does not split at.
    kept = [[str(v).replace(" (", "\u00a0(") for v in row] for row in rows]
    return tabulate(kept, headers=headers, maxcolwidths=caps).replace("\u00a0", " ")
