"""How far two verdict sets on the same items agree: Cohen's kappa on yes/no, and on the 0-5 scores
the quadratic-weighted kappa and Spearman's rank correlation. Items either judge failed are left out."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def agreement(first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Agreement between two aligned lists of verdict dicts (``pred``, ``score``, judge provenance).

    A statistic is ``None`` when it is undefined (for example both judges gave one label only).
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined statistics come back as NaN, reported as None
        if pairs:
            out["cohen_kappa"] = _finite(cohen_kappa_score(preds_a, preds_b, labels=["no", "yes"]))
        if len(scored) >= 2:
            xs, ys = [x for x, _ in scored], [y for _, y in scored]
            out["score_weighted_kappa"] = _finite(cohen_kappa_score(xs, ys, labels=list(range(6)),
                                                                    weights="quadratic"))
            out["score_spearman"] = _finite(spearmanr(xs, ys).statistic)
    return out
