"""Paired comparison of two runs on the same questions: what a reader needs to say one model beats
another.

Questions are paired by their key (setting, video id, question id). Only pairs that both runs judged
are compared (a question either run failed on, or got no answer for, is left out and counted). For
those pairs:

- the difference in accuracy and in mean score (A minus B), with a paired cluster-bootstrap interval:
  videos are resampled, and both runs' answers to a drawn video's questions move together;
- an exact McNemar test on the yes/no verdicts: under "no difference", the questions only one run got
  right split 50/50 between the runs (a two-sided binomial test on the discordant pairs);
- the counts of questions each run alone got right.

The report's tables and the app's compare view both call :func:`compare_records`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from egotask.records import SampleRecord
from egotask.reports.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    cluster_bootstrap_ci,
    excludes_zero,
    n_clusters,
    video_cluster,
)


@dataclass(frozen=True)
class BootstrapOptions:
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    level: float = 0.95


@dataclass(frozen=True)
class PairedStats:
    n: int  # pairs compared: questions both runs judged
    n_clusters: int  # videos those questions come from
    n_left_out: int  # common questions at least one run has no verdict for
    accuracy_a: float | None
    accuracy_b: float | None
    accuracy_diff: float | None  # A - B, as a fraction
    accuracy_diff_ci: tuple[float, float] | None
    score_a: float | None
    score_b: float | None
    score_diff: float | None
    score_diff_ci: tuple[float, float] | None
    a_only: int  # questions A got right and B wrong
    b_only: int
    both_right: int
    both_wrong: int
    mcnemar_p: float | None  # exact, two-sided; None without pairs

    @property
    def accuracy_significant(self) -> bool:
        """The accuracy difference's interval excludes 0."""
        return excludes_zero(self.accuracy_diff_ci)

    @property
    def score_significant(self) -> bool:
        return excludes_zero(self.score_diff_ci)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accuracy_significant": self.accuracy_significant,
                "score_significant": self.score_significant}


@dataclass
class Comparison:
    """Run A against run B on the questions both hold."""

    n_a: int  # questions in A
    n_b: int
    n_common: int  # questions in both (before leaving out unjudged ones)
    overall: PairedStats
    by_type: dict[str, PairedStats] = field(default_factory=dict)

    @property
    def same_questions(self) -> bool:
        return self.n_a == self.n_b == self.n_common


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value: a binomial test of the discordant pairs against 1/2."""
    if a_only + b_only == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


def _judged(record: SampleRecord) -> bool:
    return record.generation_error is None and record.verdict.pred is not None


def paired_stats(pairs: Sequence[tuple[SampleRecord, SampleRecord]],
                 opts: BootstrapOptions | None = None) -> PairedStats:
    """The paired numbers over ``(a, b)`` records of the same questions."""
    opts = opts or BootstrapOptions()
    kept = [(a, b) for a, b in pairs if _judged(a) and _judged(b)]
    clusters: list[Hashable] = [video_cluster(a) for a, _ in kept]
    ya = [int(a.verdict.pred == "yes") for a, _ in kept]
    yb = [int(b.verdict.pred == "yes") for _, b in kept]
    scored = [(i, a.verdict.score, b.verdict.score) for i, (a, b) in enumerate(kept)
              if a.verdict.score is not None and b.verdict.score is not None]
    a_only = sum(x and not y for x, y in zip(ya, yb, strict=True))
    b_only = sum(y and not x for x, y in zip(ya, yb, strict=True))
    both_right = sum(x and y for x, y in zip(ya, yb, strict=True))

    def mean(values: Sequence[float]) -> float | None:
        return sum(values) / len(values) if values else None

    def ci(diffs: Sequence[float], ids: Sequence[Hashable]) -> tuple[float, float] | None:
        return cluster_bootstrap_ci(diffs, ids, opts.n_resamples, opts.seed, opts.level)

    score_diffs = [float(sa - sb) for _, sa, sb in scored]
    return PairedStats(
        n=len(kept), n_clusters=n_clusters(clusters), n_left_out=len(pairs) - len(kept),
        accuracy_a=mean(ya), accuracy_b=mean(yb),
        accuracy_diff=mean([x - y for x, y in zip(ya, yb, strict=True)]),
        accuracy_diff_ci=ci([x - y for x, y in zip(ya, yb, strict=True)], clusters),
        score_a=mean([sa for _, sa, _ in scored]), score_b=mean([sb for _, _, sb in scored]),
        score_diff=mean(score_diffs), score_diff_ci=ci(score_diffs, [clusters[i] for i, _, _ in scored]),
        a_only=a_only, b_only=b_only, both_right=both_right, both_wrong=len(kept) - a_only - b_only - both_right,
        mcnemar_p=mcnemar_exact(a_only, b_only) if kept else None,
    )


def _by_key(records: Sequence[SampleRecord]) -> dict[tuple[str, str, str], SampleRecord]:
    out: dict[tuple[str, str, str], SampleRecord] = {}
    for r in records:
        out.setdefault(r.key, r)  # a key held twice: the first is compared
    return out


def compare_records(a: Sequence[SampleRecord], b: Sequence[SampleRecord],
                    opts: BootstrapOptions | None = None) -> Comparison:
    """A against B on the questions both hold (A's order), overall and per question type (A's types)."""
    a_keys, b_keys = _by_key(a), _by_key(b)
    pairs = [(ra, b_keys[k]) for k, ra in a_keys.items() if k in b_keys]
    by_type: dict[str, list[tuple[SampleRecord, SampleRecord]]] = defaultdict(list)
    for pair in pairs:
        by_type[pair[0].question_type].append(pair)
    return Comparison(n_a=len(a_keys), n_b=len(b_keys), n_common=len(pairs), overall=paired_stats(pairs, opts),
                      by_type={t: paired_stats(ps, opts) for t, ps in sorted(by_type.items())})


def same_questions(a: Sequence[SampleRecord], b: Sequence[SampleRecord]) -> bool:
    """Whether two runs hold exactly the same questions (and at least one)."""
    keys_a = {r.key for r in a}
    return bool(keys_a) and keys_a == {r.key for r in b}
