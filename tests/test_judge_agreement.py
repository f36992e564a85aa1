"""egotask's agreement statistics (numpy, so `egotask judge` starts fast) give scikit-learn's and
scipy's values, including where those are undefined."""

from __future__ import annotations

import math
import random
import warnings

import pytest

from egotask.judges.agreement import SCORES, cohen_kappa, spearman


def _same(ours: float, theirs: float) -> bool:
    return (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("seed", range(30))
def test_kappas_and_spearman_equal_sklearn_and_scipy_on_random_verdicts(seed):
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(seed)
    n = rng.randint(2, 60)
    # Correlated raters, sometimes constant: agreement from perfect to none, ties everywhere.
    a = [rng.choice(SCORES[: rng.randint(1, 6)]) for _ in range(n)]
    b = [x if rng.random() < 0.6 else rng.choice(SCORES) for x in a]
    yes_a, yes_b = ["yes" if x >= 3 else "no" for x in a], ["yes" if x >= 3 else "no" for x in b]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined values: NaN with a warning there
        assert _same(cohen_kappa(yes_a, yes_b, ["no", "yes"]), cohen_kappa_score(yes_a, yes_b, labels=["no", "yes"]))
        assert _same(cohen_kappa(a, b, SCORES, quadratic=True),
                     cohen_kappa_score(a, b, labels=SCORES, weights="quadratic"))
        assert _same(spearman(a, b), spearmanr(a, b).statistic)


def test_undefined_statistics_are_nan():
    assert math.isnan(cohen_kappa(["yes"] * 3, ["yes"] * 3, ["no", "yes"]))
    assert math.isnan(spearman([2, 2, 2], [1, 4, 5]))
    assert cohen_kappa(["yes", "no"], ["yes", "no"], ["no", "yes"]) == 1.0
