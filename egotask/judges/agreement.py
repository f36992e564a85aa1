"""How far two verdict sets on the same items agree: Cohen's kappa on yes/no, and on the 0-5 scores
the quadratic-weighted kappa and Spearman's rank correlation. Items either judge failed are left out.

The statistics are computed here with numpy: importing ``sklearn.metrics`` and ``scipy.stats`` for
them took 2-3.5 s, several times what the whole of `egotask judge --judge heuristic` on 20 items may
take. tests/test_judge_agreement.py checks every value against scikit-learn's and scipy's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SCORES = list(range(6))


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _confusion(first: Sequence[Any], second: Sequence[Any], labels: Sequence[Any]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)))
    for a, b in zip(first, second, strict=True):
        counts[index[a], index[b]] += 1
    return counts


def cohen_kappa(first: Sequence[Any], second: Sequence[Any], labels: Sequence[Any],
                quadratic: bool = False) -> float:
    """Cohen's kappa of two raters over ``labels`` (quadratic weights for ordered labels); NaN when
    undefined (chance agreement is already perfect, e.g. one label only)."""
    observed = _confusion(first, second, labels)
    n = observed.sum()
    if n == 0:
        return float("nan")
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    i, j = np.indices(observed.shape)
    weights = (i - j) ** 2 if quadratic else (i != j).astype(float)
    chance = (weights * expected).sum()
    return float("nan") if chance == 0 else float(1 - (weights * observed).sum() / chance)


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    data = np.asarray(values, dtype=float)
    order = np.argsort(data, kind="mergesort")
    ranks = np.empty(len(data))
    ranks[order] = np.arange(1, len(data) + 1)
    for value in np.unique(data):
        tied = data == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(first: Sequence[float], second: Sequence[float]) -> float:
    """Spearman's rho (Pearson's r of the ranks); NaN when either side is constant."""
    a, b = _ranks(first), _ranks(second)
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt((a * a).sum() * (b * b).sum())
    return float("nan") if denominator == 0 else float((a * b).sum() / denominator)


def agreement(first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Agreement between two aligned lists of verdict dicts (``pred``, ``score``, judge provenance).

    A statistic is ``None`` when it is undefined (for example both judges gave one label only).
    """
    if len(first) != len(second):
        raise ValueError(f"verdict sets differ in length: {len(first)} vs {len(second)}")
    pairs = [(a, b) for a, b in zip(first, second, strict=True)
             if a.get("pred") is not None and b.get("pred") is not None]
    preds_a, preds_b = [a["pred"] for a, _ in pairs], [b["pred"] for _, b in pairs]
    scored = [(a["score"], b["score"]) for a, b in pairs if a.get("score") is not None and b.get("score") is not None]
    out: dict[str, Any] = {
        "n_compared": len(pairs),
        "n_left_out": len(first) - len(pairs),
        "verdict_agreement": _finite(sum(x == y for x, y in zip(preds_a, preds_b, strict=True)) / len(pairs))
        if pairs else None,
        "cohen_kappa": None,
        "score_weighted_kappa": None,
        "score_spearman": None,
    }
    if pairs:
        out["cohen_kappa"] = _finite(cohen_kappa(preds_a, preds_b, ["no", "yes"]))
    if len(scored) >= 2:
        xs, ys = [x for x, _ in scored], [y for _, y in scored]
        out["score_weighted_kappa"] = _finite(cohen_kappa(xs, ys, SCORES, quadratic=True))
        out["score_spearman"] = _finite(spearman(xs, ys))
    return out
