"""Helpers for judge tests (the ``fake_judge`` fixture is in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FAKE_JUDGE_KEY as KEY  # noqa: F401 - re-exported for tests

from egotask.judges import JudgeItem
from egotask.records import SETTING_OF_BENCHMARK, SampleRecord
from egotask.testing.vendor import fake_verdict


def make_items(n: int) -> list[JudgeItem]:
    """Items the fake judge grades yes (containment), yes (containment) or no. None is an exact match or
    an abstention, which egotask's protocol settles without a request (see test_judge_shortcuts.py)."""
    items = []
    for i in range(n):
        ref = f"{60 + i} mph"
        pred = [f"The speed limit on this road is {ref}.", f"{ref} here", "next to the car wash"][i % 3]
        items.append(JudgeItem(f"What is the speed limit on sign {i}?", ref, pred, "reading"))
    return items


def expected_verdicts(items: list[JudgeItem]) -> list[tuple[str, int]]:
    out = []
    for item in items:
        v = fake_verdict({"question": item.question, "reference": item.answer, "prediction": item.prediction})
        out.append((v["pred"], v["score"]))
    return out


def write_samples(path: Path, items: list[JudgeItem], task: str = "egotextvqa_indoor") -> Path:
    """An lmms-eval-style samples file whose records were judged by the heuristic judge (``task`` is
    one of the benchmarks' own tasks)."""
    from egotask.judges.heuristic import heuristic_verdict

    with open(path, "w") as fh:
        for i, item in enumerate(items):
            record = SampleRecord(task=task, benchmark=task, setting=SETTING_OF_BENCHMARK[task],
                                  video_id=f"v{i // 4}", question_id=str(i), question_type=item.question_type,
                                  question=item.question, answer=item.answer, prediction=item.prediction,
                                  verdict=heuristic_verdict(item), timestamp=1.0, visible=(0.0, 1.0))
            fh.write(json.dumps({"doc_id": i, "details": record.to_dict()}) + "\n")
    return path
