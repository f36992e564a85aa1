"""Bootstrap confidence intervals (seeded, so reports reproduce), resampling clusters of questions.

Questions share videos (2,216 indoor questions come from 813 videos), and a model that fails on a
video tends to fail on all its questions, so questions are not independent draws. The intervals here
resample whole clusters (videos) with replacement and take the mean over all questions of the drawn
clusters: a percentile cluster bootstrap. With one question per cluster it is the ordinary
question-level bootstrap, which :func:`bootstrap_ci` keeps for comparison.

When every question of a video shares one verdict, the variance of the mean grows by the design
effect ``1 + (m - 1) * ICC`` with ``m`` questions per video and an intra-cluster correlation of 1,
so the clustered interval is ``sqrt(m)`` times as wide as the question-level one.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from egotask.records import SampleRecord

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
CHUNK = 256  # resamples drawn at once: bounds memory at CHUNK x clusters indices
METHOD = "percentile cluster bootstrap over videos"


def cluster_index(clusters: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Each item's cluster as 0..k-1 (in order of first appearance) and the number of clusters k."""
    ids: dict[Hashable, int] = {}
    index = np.fromiter((ids.setdefault(c, len(ids)) for c in clusters), dtype=np.int64, count=len(clusters))
    return index, len(ids)


def cluster_bootstrap_ci(values: Sequence[float], clusters: Sequence[Hashable],
                         n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                         level: float = 0.95) -> tuple[float, float] | None:
    """The ``level`` percentile interval of the mean of ``values`` when whole clusters are resampled:
    each resample draws as many clusters as there are, with replacement, and averages every value
    of the drawn clusters. ``clusters[i]`` names the cluster of ``values[i]``. None for no values, and
    for values of one cluster only: resampling it says nothing about the spread."""
    data = np.asarray(values, dtype=float)
    if len(clusters) != data.size:
        raise ValueError(f"{data.size} values but {len(clusters)} cluster ids")
    if data.size == 0:
        return None
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    index, k = cluster_index(clusters)
    if k < 2:
        return None
    sums = np.bincount(index, weights=data, minlength=k)
    counts = np.bincount(index, minlength=k).astype(float)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, CHUNK):
        size = min(CHUNK, n_resamples - start)
        draws = rng.integers(0, k, size=(size, k))
        means[start:start + size] = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1.0 - level) / 2 * 100
    # Endpoints are resampled means themselves (no interpolation between two of them): with few
    # distinct values, interpolating would invent an endpoint just off 0 and call a difference real.
    low, high = np.percentile(means, [tail, 100 - tail], method="inverted_cdf")
    return float(low), float(high)


def bootstrap_ci(values: Sequence[float], n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                 level: float = 0.95) -> tuple[float, float] | None:
    """The question-level percentile bootstrap: every value its own cluster (too narrow when
    questions share videos; kept to measure the design effect against)."""
    return cluster_bootstrap_ci(values, range(len(values)), n_resamples, seed, level)


def video_cluster(record: SampleRecord) -> tuple[str, str]:
    """A question's cluster: its video; for EgoTempo the Ego4D video its clip was cut from (clips of
    one video overlap), as the train/val/test splits group them."""
    from egotask.data.splits import split_group

    try:
        return record.setting, split_group(record.benchmark, record.video_id)
    except ValueError:  # a clip id not in the {uid}_{start}_{end} form: the clip is its own video
        return record.setting, record.video_id


def n_clusters(clusters: Sequence[Hashable]) -> int:
    return len(set(clusters))


def excludes_zero(interval: tuple[float, float] | None) -> bool:
    """Whether a difference's interval lies wholly above or below 0."""
    return interval is not None and (interval[0] > 0 or interval[1] < 0)
