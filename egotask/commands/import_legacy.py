"""`egotask import-legacy`: the predecessor's prediction/result files as egotask sample records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from egotask.reports.legacy import DEFAULT_MODEL_KEY, LEGACY_JUDGE

    p = sub.add_parser(
        "import-legacy", help="convert the predecessor's *_results.json / *_predictions.json into records",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert the predecessor project's files (<model>_results.json, <model>_predictions.json "
                    "and the _egotempo_test_ variants) into egotask sample records, one "
                    "<name>.records.jsonl per file in --output, for `egotask report`.\n"
                    "  - split: from the video id (Ego4D UUID = indoor, number = outdoor), or the file name "
                    "for EgoTempo;\n"
                    "  - verdicts: acc/score from results files, labelled judge "
                    f"{LEGACY_JUDGE['judge']!r}, prompt {LEGACY_JUDGE['prompt_version']!r}; a row without "
                    "a readable verdict is a failure, not a 'no';\n"
                    "  - a predictions file imports as unjudged records, unless its results file is given "
                    "too (then it is skipped).\n"
                    "The predecessor recorded failed judge calls as no/0; they cannot be told apart, so "
                    "imported numbers are lower bounds.",
        epilog="example, with the predecessor's result files copied into predecessor_results/:\n"
               "  egotask import-legacy predecessor_results/*_results.json --output legacy\n"
               "  egotask report legacy --output legacy.md")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="predecessor JSON files, or folders holding them")
    p.add_argument("--output", "-o", type=Path, required=True, help="folder for the records files")
    p.add_argument("--model-key", default=DEFAULT_MODEL_KEY,
                   help=f"the row field holding the model's answer (default: {DEFAULT_MODEL_KEY})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate
    from tqdm import tqdm

    from egotask.reports.legacy import LegacyError, choose_files, import_file

    try:
        files, skipped = choose_files(args.files)
    except LegacyError as exc:
        print(f"egotask import-legacy: {exc}", file=sys.stderr)
        return 2
    for f, why in skipped:
        print(f"egotask import-legacy: skipped {f.path.name}: {why}", file=sys.stderr)
    rows = []
    for f in tqdm(files, desc="importing", unit="file", disable=len(files) < 2):
        try:
            entry = import_file(f, args.output, args.model_key)
        except (LegacyError, OSError) as exc:  # files already converted stay written
            print(f"egotask import-legacy: {exc}", file=sys.stderr)
            return 2
        for split, c in sorted(entry["counts"].items()):
            rows.append([f.path.name, f.model, f.kind, split, c["n"], c["n"] - c["n_failed"], c["n_failed"]])
    print(tabulate(rows, headers=["file", "model", "kind", "split", "n", "judged", "failed"]))
    print(f"egotask import-legacy: records in {args.output}/ (report them with `egotask report {args.output}`)")
    return 0
