"""Named subsets of a benchmark's questions, shipped as id lists (no question text), like the default
split manifest.

``outdoor_realtime`` is the EgoTextVQA paper's real-time subset: the 623 outdoor questions of the
release's ``outdoor_real_time.json``, matched by ``(video_id, question_id)`` (question ids repeat
across videos). The release writes ids as JSON numbers (``11``, ``8.1``); the annotation files as
strings (``"11"``, ``"8.1"``); both are compared as the strings the annotations use. A question of a
subset that the loaded annotations lack is an error: the subset would silently shrink.

The packaged id file was made from the release with::

    python -m egotask.data.subsets ../shared/data/egotextvqa/outdoor_real_time.json \
        > egotask/data/outdoor_realtime.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from egotask.data.sources import DataError

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Subset:
    name: str
    benchmark: str
    ids_file: Path
    release_file: str  # the file of the benchmark's release it was made from
    about: str


SUBSETS = {
    "outdoor_realtime": Subset("outdoor_realtime", "egotextvqa_outdoor", HERE / "outdoor_realtime.json",
                               "outdoor_real_time.json", "the EgoTextVQA paper's real-time subset of the outdoor "
                               "questions (623 questions over 248 videos)"),
}


def get_subset(name: str) -> Subset:
    try:
        return SUBSETS[name]
    except KeyError:
        raise DataError(f"unknown subset {name!r}; known: {', '.join(SUBSETS)}") from None


def _id(value: Any) -> str:
    """A release id as the annotation files write it: 11 -> "11", 8.1 -> "8.1"."""
    return str(value)


def keys_from_release(path: str | Path) -> list[tuple[str, str]]:
    """``(video_id, question_id)`` of every question of a release file such as ``outdoor_real_time.json``
    (a list of ``{"data": [question, ...]}`` blocks)."""
    path = Path(path)
    try:
        blocks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(blocks, list):
        raise DataError(f"{path}: expected a list of {{'data': [...]}} blocks")
    keys = []
    for b, block in enumerate(blocks):
        rows = block.get("data") if isinstance(block, dict) else None
        if not isinstance(rows, list):
            raise DataError(f"{path}: block {b} has no 'data' list")
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or row.get("video_id") is None or row.get("question_id") is None:
                raise DataError(f"{path}: block {b}, data[{i}]: missing field(s) video_id or question_id")
            keys.append((_id(row["video_id"]), _id(row["question_id"])))
    if len(set(keys)) != len(keys):
        raise DataError(f"{path}: the same (video_id, question_id) appears twice")
    return keys


@cache
def subset_keys(name: str) -> tuple[tuple[str, str], ...]:
    """The packaged ``(video_id, question_id)`` list of a subset."""
    subset = get_subset(name)
    data = json.loads(subset.ids_file.read_text(encoding="utf-8"))
    return tuple((str(v), str(q)) for v, q in data["questions"])


def filter_subset(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The docs of a subset, in the docs' order; a subset question missing from ``docs`` is an error."""
    subset = get_subset(name)
    wanted = subset_keys(name)
    wanted_set = set(wanted)
    kept = [d for d in docs if (d["video_id"], d["question_id"]) in wanted_set]
    if len(kept) != len(wanted):
        have = {(d["video_id"], d["question_id"]) for d in kept}
        missing = [k for k in wanted if k not in have]
        shown = ", ".join(f"{v}/{q}" for v, q in missing[:5]) + (f" and {len(missing) - 5} more"
                                                                 if len(missing) > 5 else "")
        raise DataError(f"subset {name} ({subset.ids_file.name}): {len(missing)} of its {len(wanted)} questions "
                        f"are not in the {subset.benchmark} annotations: {shown} (video_id/question_id)")
    return kept


def ids_document(name: str, release: str | Path) -> dict[str, Any]:
    subset = get_subset(name)
    return {"subset": name, "benchmark": subset.benchmark, "about": subset.about,
            "source": f"{subset.release_file} of the benchmark's release",
            "questions": [list(k) for k in keys_from_release(release)]}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m egotask.data.subsets PATH/outdoor_real_time.json > egotask/data/outdoor_realtime.json",
              file=sys.stderr)
        return 2
    doc = ids_document("outdoor_realtime", args[0])
    head = json.dumps({k: v for k, v in doc.items() if k != "questions"}, ensure_ascii=False)[:-1]
    rows = ",\n".join("  " + json.dumps(q) for q in doc["questions"])
    print(f'{head}, "questions": [\n{rows}\n]}}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
