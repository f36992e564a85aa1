"""Aggregation never counts a judge failure as a wrong answer (unless asked to)."""

import pytest

from egotask.scoring import summarize


def rec(qtype, pred, score):
    verdict = {"pred": pred, "score": score, "judge": "gemini", "judge_model": "m", "prompt_version": "v1"}
    if pred is None:
        verdict["error"] = "unparseable reply"
    return {"video_id": "v", "question_id": qtype + str(score), "question_type": qtype, "verdict": verdict}


def test_failed_items_leave_the_denominator_and_are_listed():
    records = [rec("a", "yes", 5), rec("a", "no", 1), rec("b", "yes", 4), rec("b", None, None)]
    s = summarize(records, count_failed_as_wrong=False)
    assert (s["n"], s["n_judged"], s["n_failed"]) == (4, 3, 1)
    assert s["accuracy"] == pytest.approx(2 / 3) and s["score"] == pytest.approx(10 / 3)
    assert s["by_type"]["b"] == {"n": 2, "n_judged": 1, "n_failed": 1, "accuracy": 1.0, "score": 4.0}
    assert s["failed"] == ["v/bNone: unparseable reply"]
    assert (s["judge"], s["judge_model"], s["prompt_version"]) == ("gemini", "m", "v1")


def test_counting_failures_as_wrong_is_explicit():
    records = [rec("a", "yes", 5), rec("a", None, None)]
    s = summarize(records, count_failed_as_wrong=True)
    assert s["accuracy"] == 0.5 and s["score"] == 2.5 and s["failed_counted_as_wrong"] is True


def test_nothing_judged_is_no_number_not_zero():
    s = summarize([rec("a", None, None)], count_failed_as_wrong=False)
    assert s["accuracy"] is None and s["score"] is None
