"""Judges measured against people: `egotask judge agreement RUN --human LABELS.jsonl...`.

For each judge whose verdicts a run holds (each judge, judge model and prompt version: a run and its
re-judged outputs may hold several) and each person who labelled it (labels from the app's labelling
view, see :mod:`egotask.labels`): on the items both judged, the share of equal verdicts, Cohen's kappa
with a bootstrap CI, each side's yes-rate and the 2x2 confusion table; the 0-5 scores' quadratic-weighted
kappa. Where two people labelled the same items, their own kappa: the ceiling a judge can be held to.

The CIs resample videos, as the reports' do (:mod:`egotask.reports.stats`): questions on one video are
not independent draws. Runs are read by the reports' reader, records by :mod:`egotask.records`.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from egotask.judges.agreement import agreement
from egotask.labels import HumanLabel, LabelError, latest, read_labels
from egotask.records import SampleRecord
from egotask.reports.stats import CHUNK, DEFAULT_RESAMPLES, DEFAULT_SEED, cluster_index, video_cluster

Key = tuple[str, str, str]  # (task, video_id, question_id)
JudgeId = tuple[str, str, str]  # (judge, judge_model, prompt_version)
CELLS = (("yes", "yes"), ("yes", "no"), ("no", "yes"), ("no", "no"))  # (first rater, second rater)


@dataclass
class Agreement:
    """Two raters on the items both gave a yes/no: a judge and a person, or two people."""

    first: str
    second: str
    n: int
    n_left_out: int  # items the person labelled that the judge did not judge (failed, pending, no answer)
    agreement: float | None
    kappa: float | None
    kappa_ci: tuple[float, float] | None
    first_yes_rate: float | None
    second_yes_rate: float | None
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)  # (first's pred, second's) -> count
    score_weighted_kappa: float | None = None
    n_videos: int = 0


def kappa_from_counts(counts: np.ndarray) -> np.ndarray:
    """Cohen's kappa of 2x2 tables given as counts in :data:`CELLS` order along the last axis; NaN
    where it is undefined (chance agreement already perfect: both raters used one label)."""
    yy, yn, ny, nn = (counts[..., i].astype(float) for i in range(4))
    n = yy + yn + ny + nn
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (yy + nn) / n
        first_yes, second_yes = (yy + yn) / n, (yy + ny) / n
        chance = first_yes * second_yes + (1 - first_yes) * (1 - second_yes)
        kappa = (observed - chance) / (1 - chance)
    return np.where(np.isclose(chance, 1.0), np.nan, kappa)


def kappa_ci(first: Sequence[str], second: Sequence[str], clusters: Sequence[Hashable],
             n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
             level: float = 0.95) -> tuple[float, float] | None:
    """Percentile cluster bootstrap of Cohen's kappa (the reports' scheme: whole videos drawn with
    replacement, seeded). Resamples where kappa is undefined are left out; None for fewer than two
    clusters, or when no resample defines it."""
    if not (len(first) == len(second) == len(clusters)):
        raise ValueError(f"{len(first)}, {len(second)} and {len(clusters)} items: the lists must be aligned")
    index, k = cluster_index(clusters)
    if k < 2:
        return None
    cell = np.array([CELLS.index((a, b)) for a, b in zip(first, second, strict=True)], dtype=np.int64)
    per_cluster = np.zeros((k, 4))
    np.add.at(per_cluster, (index, cell), 1)
    rng = np.random.default_rng(seed)
    kappas = np.empty(n_resamples)
    for start in range(0, n_resamples, CHUNK):
        size = min(CHUNK, n_resamples - start)
        draws = rng.integers(0, k, size=(size, k))
        kappas[start:start + size] = kappa_from_counts(per_cluster[draws].sum(axis=1))
    kappas = kappas[~np.isnan(kappas)]
    if kappas.size == 0:
        return None
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(kappas, [tail, 100 - tail], method="inverted_cdf")
    return float(low), float(high)


def compare(first: str, second: str, pairs: list[tuple[dict[str, Any], dict[str, Any], Hashable]],
            n_left_out: int = 0, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Agreement:
    """The agreement of two raters from aligned (first's verdict, second's verdict, cluster) triples,
    every verdict a dict with ``pred`` yes/no and ``score``."""
    a = [p["pred"] for p, _, _ in pairs]
    b = [q["pred"] for _, q, _ in pairs]
    clusters = [c for _, _, c in pairs]
    stats = agreement([p for p, _, _ in pairs], [q for _, q, _ in pairs])
    n = len(pairs)
    return Agreement(
        first, second, n, n_left_out, stats["verdict_agreement"], stats["cohen_kappa"],
        kappa_ci(a, b, clusters, n_resamples, seed) if n else None,
        sum(x == "yes" for x in a) / n if n else None, sum(y == "yes" for y in b) / n if n else None,
        {cell: sum((x, y) == cell for x, y in zip(a, b, strict=True)) for cell in CELLS},
        stats["score_weighted_kappa"], len(set(clusters)))


# --------------------------------------------------------------------------- labels against a run

def read_all(paths: Sequence[str | Path]) -> list[HumanLabel]:
    return [label for path in paths for label in read_labels(path)]


def _judge_of(record: SampleRecord) -> JudgeId:
    v = record.verdict
    return (v.judge, v.judge_model, v.prompt_version)


def judge_name(judge: JudgeId) -> str:
    return f"{judge[0]} ({judge[1]}, prompt {judge[2]})"


def match(records: Sequence[SampleRecord], labels: Sequence[HumanLabel]) -> dict[JudgeId, dict[Key, SampleRecord]]:
    """Each judge's record of each labelled item: the record of the answer the label was made on (a
    folder may hold several models' runs of the same questions). A LabelError names the file and line of
    the first label whose item is not in the runs, or whose answer none of them gave."""
    by_answer: dict[JudgeId, dict[tuple[Key, str], SampleRecord]] = defaultdict(dict)
    predictions: dict[Key, set[str]] = defaultdict(set)
    for r in records:
        key = (r.task, r.video_id, r.question_id)
        predictions[key].add(r.prediction)
        if r.generation_error is None:
            by_answer[_judge_of(r)].setdefault((key, r.prediction), r)
    answer_of: dict[Key, str] = {}  # the answer each item was labelled on
    for label in labels:
        seen = predictions.get(label.key)
        item = "/".join(label.key)
        if seen is None:
            raise LabelError(f"{label.where}: item {item} (task/video_id/question_id) is not in the run; were "
                             "these labels made on another run?")
        if label.prediction is not None and label.prediction not in seen:
            raise LabelError(f"{label.where}: item {item} was labelled on the answer {label.prediction!r}, but "
                             f"the run answered {sorted(seen)[0]!r}; were these labels made on another model's run?")
        if label.prediction is None and len(seen) > 1:
            raise LabelError(f"{label.where}: item {item} has {len(seen)} different answers in the given runs and "
                             "the label does not say which it was made on (no prediction field); give one run")
        answer = label.prediction if label.prediction is not None else next(iter(seen))
        if answer_of.setdefault(label.key, answer) != answer:
            raise LabelError(f"{label.where}: item {item} was labelled on the answer {answer!r} here and on "
                             f"{answer_of[label.key]!r} before: these labels come from different models' runs")
    return {judge: {key: answers[(key, a)] for key, a in answer_of.items() if (key, a) in answers}
            for judge, answers in by_answer.items()}


def judge_agreement(records: Sequence[SampleRecord], labels: Sequence[HumanLabel],
                    n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
                    ) -> tuple[list[Agreement], list[Agreement]]:
    """(each judge against each labeller, each pair of labellers on the items both labelled). A judge
    is compared on the labelled answers it holds a record of; its failures count as not judged."""
    by_judge = match(records, labels)
    by_labeller: dict[str, dict[Key, HumanLabel]] = defaultdict(dict)
    for (labeller, key), label in latest(list(labels)).items():
        by_labeller[labeller][key] = label
    cluster = {key: video_cluster(r) for judged in by_judge.values() for key, r in judged.items()}
    for r in records:  # an answer no judge has a record of (a generation failure) still has a video
        cluster.setdefault((r.task, r.video_id, r.question_id), video_cluster(r))

    def human(label: HumanLabel) -> dict[str, Any]:
        return {"pred": label.pred, "score": label.score}

    judges = []
    for judge in sorted(by_judge):
        judged = by_judge[judge]
        if not judged or all(r.pending for r in judged.values()):
            continue  # none of the labelled answers, or deferred and never judged: nothing to compare
        for labeller in sorted(by_labeller):
            mine = [(key, label) for key, label in by_labeller[labeller].items() if key in judged]
            if not mine:
                continue
            pairs = [(judged[key].verdict.to_dict(), human(label), cluster[key]) for key, label in mine
                     if judged[key].verdict.pred is not None]
            judges.append(compare(judge_name(judge), labeller, pairs, len(mine) - len(pairs), n_resamples, seed))
    people = []
    for a, b in combinations(sorted(by_labeller), 2):
        common = sorted(set(by_labeller[a]) & set(by_labeller[b]))
        pairs = [(human(by_labeller[a][k]), human(by_labeller[b][k]), cluster[k]) for k in common]
        people.append(compare(a, b, pairs, 0, n_resamples, seed))
    return judges, people


# --------------------------------------------------------------------------- the command

def run_command(run_paths: Sequence[str], label_paths: Sequence[str] | None) -> int:
    """`egotask judge agreement RUN... --human LABELS.jsonl...`; exit 0, or 2 on bad input (named)."""
    from egotask.reports.collect import collect_runs
    from egotask.reports.judging import agreement_table

    if not run_paths or not label_paths:
        print("egotask judge agreement: give the run and its labels: egotask judge agreement RUN --human "
              "LABELS.jsonl [LABELS.jsonl ...]", file=sys.stderr)
        return 2
    try:
        runs = collect_runs(list(run_paths))
        missing = [str(run.source) for run in runs if run.records is None]
        if missing:
            raise ValueError(f"{', '.join(missing)}: no samples file beside it (run lmms_eval with --log_samples)")
        records = [r for run in runs for r in run.records or []]
        labels = read_all(label_paths)
        if not labels:
            raise LabelError(f"{', '.join(label_paths)}: no labels")
        judges, people = judge_agreement(records, labels)
    except (OSError, ValueError) as exc:  # LabelError, RecordError and PendingVerdicts are ValueErrors
        print(f"egotask judge agreement: {exc}", file=sys.stderr)
        return 2
    n_people = len({label.labeller for label in labels})
    print(f"egotask judge agreement: {len(records)} records from {len(runs)} run(s), {len(labels)} label lines "
          f"from {n_people} labeller(s) in {len(label_paths)} file(s)", file=sys.stderr)
    print("Judges (J) against people (H), on the items both judged. kappa: Cohen's, on right/wrong; 95% CI: "
          f"percentile cluster bootstrap over videos, {DEFAULT_RESAMPLES} resamples, seed {DEFAULT_SEED}; "
          "w-kappa: quadratic-weighted, on the 0-5 scores.")
    print(agreement_table(judges, "judge", "human", "J", "H"))
    if people:
        print("\nPeople against each other (on the items both labelled):")
        print(agreement_table(people, "labeller A", "labeller B", "A", "B", left_out=False))
    else:
        print("\nNo two people labelled the same items: no inter-annotator kappa (label the same sample, same "
              "seed and size, under a second name to get one).")
    return 0
