"""What the app's labelling view needs besides layout: the seeded, stratified sample of a run's items a
person labels, and the labels already made (so a reopened browser resumes where the person stopped).

The sample is an ordering of all the run's answered items whose every prefix is stratified by setting
and question type (each stratum in proportion to its size, within one item): the first ``n`` items
are the sample of size ``n``, so raising ``n`` later extends the same sample, and two people with the
same seed and size label the same items (which inter-annotator agreement needs).
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from egotask.labels import HumanLabel, labels_path, read_labels
from egotask.records import SampleRecord

DEFAULT_SIZE = 100
DEFAULT_SEED = 0


def item_key(record: SampleRecord) -> tuple[str, str, str]:
    """The key a label names its item by (see :attr:`egotask.labels.HumanLabel.key`)."""
    return (record.task, record.video_id, record.question_id)


def stratum(record: SampleRecord) -> tuple[str, str]:
    return (record.setting, record.question_type)


def stratified_order(records: list[SampleRecord], seed: int = DEFAULT_SEED) -> list[SampleRecord]:
    """Every answered item (one with a prediction to label) in a seeded order whose every prefix holds
    each (setting, question type) stratum in proportion to its size.

    Each stratum is shuffled, and its i-th item of m placed at (i + u) / m on [0, 1) with one random
    offset u per stratum: sorting by that position interleaves the strata proportionally (systematic
    sampling within each stratum). Input order does not matter: items are sorted by key first.
    """
    rng = random.Random(f"egotask-labelling-{seed}")
    strata: dict[tuple[str, str], list[SampleRecord]] = defaultdict(list)
    seen: set[tuple[str, str, str]] = set()
    for record in sorted(records, key=lambda r: (item_key(r), r.setting)):
        if record.generation_error is not None or item_key(record) in seen:
            continue  # no answer to label; a second copy of an item (re-judged files) is the same answer
        seen.add(item_key(record))
        strata[stratum(record)].append(record)
    placed = []
    for name in sorted(strata):
        items = strata[name]
        rng.shuffle(items)
        offset = rng.random()
        placed += [((i + offset) / len(items), name, r) for i, r in enumerate(items)]
    placed.sort(key=lambda t: (t[0], t[1]))
    return [r for _, _, r in placed]


def sample(records: list[SampleRecord], size: int, seed: int = DEFAULT_SEED) -> list[SampleRecord]:
    return stratified_order(records, seed)[:max(0, size)]


def run_labels_path(sources: list[Path], labeller: str, model: str | None) -> Path:
    """A labeller's labels file for a run read from ``sources`` (next to the first)."""
    return labels_path(sources[0], labeller, model)


def done_labels(path: Path, labeller: str) -> dict[tuple[str, str, str], HumanLabel]:
    """The items ``labeller`` already labelled in a labels file (the later label of an item wins; two
    names that make the same file name share the file, not their labels); none when the file is not
    there yet."""
    if not path.exists():
        return {}
    return {label.key: label for label in read_labels(path) if label.labeller == labeller}
