"""The offline judge is labelled heuristic, gives sensible verdicts, and is strict where scene text is."""

import pytest

from egotask.judges import JudgeItem, get_judge
from egotask.judges.heuristic import heuristic_verdict
from egotask.records import join_alternatives


def test_heuristic_judge_accepts_containment_and_labels_itself():
    judge = get_judge("heuristic")
    good = judge.judge(JudgeItem("speed limit?", "65 mph", "The speed limit on this road is 65 mph."))
    bad = judge.judge(JudgeItem("which shop?", "bakery", "a car wash"))
    assert (good.pred, bad.pred) == ("yes", "no")
    assert good.score >= 4 and bad.score <= 2
    assert good.judge == "heuristic" and good.prompt_version.startswith("heuristic")


@pytest.mark.parametrize("reference, prediction", [
    ("12", "13"),
    ("$4.99", "$5.99"),
    ("65 mph", "66 mph"),
    ("555-0134", "555-0143"),
    ("12", "12 or 13"),  # a hedge between numbers names a number the reference does not
    ("on the shelf above the sink", "on"),  # a short word inside a long reference is not the answer
    ("on", "one"),  # a short reference matches exactly or not at all
    ("no", "now"),
])
def test_numbers_prices_and_short_tokens_must_match_exactly(reference, prediction):
    verdict = heuristic_verdict(JudgeItem("what does the sign say?", reference, prediction))
    assert (verdict.pred, verdict.score) == ("no", 0), verdict.reason


@pytest.mark.parametrize("reference, prediction, score", [
    ("12", "12", 5),
    ("$4.99", "4.99", 5),
    ("$1,299", "1299 dollars", 4),
    ("65 mph", "The speed limit on this road is 65 mph.", 4),
    ("on", "the light is on", 4),
    ("Sunset Boulevard", "sunset blvd", 4),  # near misses on words still count by similarity
])
def test_exact_numbers_and_contained_answers_still_pass(reference, prediction, score):
    verdict = heuristic_verdict(JudgeItem("q?", reference, prediction))
    assert (verdict.pred, verdict.score) == ("yes", score), verdict.reason


def test_a_reference_listing_acceptable_answers_accepts_each_of_them():
    reference = join_alternatives(["windex", "window cleaner"])
    assert reference == "windex | window cleaner"
    verdicts = [heuristic_verdict(JudgeItem("what is in the bottle?", reference, p))
                for p in ("Windex", "a window cleaner", "dish soap")]
    assert [(v.pred, v.score) for v in verdicts] == [("yes", 5), ("yes", 5), ("no", 1)]
