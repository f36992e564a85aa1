"""`egotask protocol`: list, show and import evaluation protocols (prompt, answer extraction, judge)."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
from pathlib import Path

from egotask.protocols import OFFICIAL, ProtocolError, available, dump_protocol, imported_dir, load_protocol


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "protocol", help="list, show and import evaluation protocols (prompt, answer extraction, judge prompt)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A protocol is what a benchmark number depends on besides the model: the prompt the model is "
                    "asked with\n(per model family), how its answer is read from the reply, and the judge: its "
                    "prompts, model,\ntemperature, lowercasing and what a failed judge call counts as. "
                    "`lmms_eval --protocol NAME|FILE`\nand `egotask judge --protocol` choose one (default "
                    "$EGOTASK_PROTOCOL or 'egotask'); every record\nnames the protocol it was asked and judged "
                    "under, with the sha256 of its prompts.\n\n"
                    "The official releases' prompts are their authors' text, so egotask ships none of them: "
                    "import\nthem from local clones of the releases:\n"
                    + "".join(f"  {name}: {how}\n" for name, how in OFFICIAL.items()),
        epilog="examples:\n"
               "  egotask protocol list\n"
               "  egotask protocol show egotask\n"
               "  git clone https://github.com/zhousheng97/EgoTextVQA ~/src/EgoTextVQA\n"
               "  egotask protocol import ~/src/EgoTextVQA\n"
               "  lmms_eval --tasks egotextvqa_outdoor --model openai_vlm ... --protocol egotextvqa-official")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.add_parser("list", help="every protocol this egotask can use, packaged and imported")
    show = verbs.add_parser("show", help="print a protocol's YAML and its prompts' sha256")
    show.add_argument("protocol", metavar="NAME|FILE")
    imp = verbs.add_parser("import", help="read the official releases' prompts from local clones",
                           description="Read a clone of the EgoTextVQA release (mllm_prompt.json, gpt_eval.py) "
                                       "and/or of the EgoTempo release (gemini_eval.ipynb), parsing their code "
                                       "without running it, and write egotextvqa-official / egotempo-official "
                                       "under $EGOTASK_CACHE_DIR/protocols.")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                     help="a clone's folder, or the release files themselves")
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    try:
        if args.verb == "list":
            print(listing())
        elif args.verb == "show":
            protocol = load_protocol(args.protocol)
            print(dump_protocol(protocol), end="")
            print(f"# judge prompt sha256: {protocol.judge.sha256}")
            for prompt in protocol.prompts:
                print(f"# inference prompt sha256 ({prompt.family}): {prompt.sha256}")
        elif args.verb == "import":
            return do_import(args.paths)
        else:
            args.parser.print_help()
            return 2
    except ProtocolError as exc:
        print(f"egotask protocol: {exc}", file=sys.stderr)
        return 2
    return 0


def do_import(paths: list[Path]) -> int:
    from egotask.protocols.official import import_releases

    dest = imported_dir()
    for protocol in import_releases(paths, dest):
        verdict = ("identical to the published release" if protocol.release_verified else
                   "NOT identical to the published release egotask knows (a fork or a later commit): runs under it "
                   "are never set beside the paper's numbers as the same protocol")
        print(f"wrote {dest / (protocol.name + '.yaml')}: {len(protocol.prompts)} prompt(s), judge "
              f"{protocol.judge.backend} {protocol.judge.model}; sources {verdict}:")
        for source in protocol.sources:
            print(f"  {source['path']}  sha256 {source['sha256']}")
    return 0


def listing() -> str:
    from tabulate import tabulate

    width = max(60, shutil.get_terminal_size((100, 20)).columns - 70)
    rows = []
    for name, path in available().items():
        try:
            protocol = load_protocol(str(path))
        except ProtocolError as exc:
            rows.append([name, "unreadable", "-", "-", textwrap.fill(str(exc), width)])
            continue
        judge = f"{protocol.judge.backend or 'gemini (or --judge)'} {protocol.judge.model or '(its default)'}"
        where = "packaged" if path.parent == Path(__file__).resolve().parents[1] / "protocols" else "imported"
        if protocol.sources:
            where += ", release" if protocol.release_verified else ", NOT the release"
        families = ", ".join(p.family for p in protocol.prompts)
        rows.append([name, where, judge, textwrap.fill(families, 30), textwrap.fill(protocol.description, width)])
    missing = [name for name in OFFICIAL if name not in available()]
    note = ("\nnot imported yet: " + ", ".join(missing) + " (see `egotask protocol import --help`)") if missing else ""
    return tabulate(rows, headers=["protocol", "from", "judge", "prompt families", "about"]) + note
