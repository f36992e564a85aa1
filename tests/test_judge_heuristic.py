"""The offline judge is labelled heuristic and gives sensible verdicts."""

from egotask.judges import JudgeItem, get_judge


def test_heuristic_judge_accepts_containment_and_labels_itself():
    judge = get_judge("heuristic")
    good = judge.judge(JudgeItem("speed limit?", "65 mph", "The speed limit on this road is 65 mph."))
    bad = judge.judge(JudgeItem("which shop?", "bakery", "a car wash"))
    assert (good.pred, bad.pred) == ("yes", "no")
    assert good.score >= 4 and bad.score <= 2
    assert good.judge == "heuristic" and good.prompt_version.startswith("heuristic")
