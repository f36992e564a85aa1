"""Percentile-bootstrap confidence intervals over per-sample values (seeded, so reports reproduce)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
CHUNK = 256  # resamples drawn at once: bounds memory at CHUNK x n indices


def bootstrap_ci(values: Sequence[float], n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                 level: float = 0.95) -> tuple[float, float] | None:
    """The ``level`` percentile-bootstrap interval of the mean of ``values``; None for no values."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, CHUNK):
        size = min(CHUNK, n_resamples - start)
        idx = rng.integers(0, data.size, size=(size, data.size))
        means[start:start + size] = data[idx].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
