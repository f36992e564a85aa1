"""Aggregation never counts a judge failure as a wrong answer (unless asked to)."""

import dataclasses

import pytest

from egotask.records import SampleRecord, Verdict
from egotask.scoring import summarize


def rec(qtype, pred, score, generation_error=None):
    verdict = Verdict(pred, score, "gemini", "m", "v1", error=None if pred is not None else "unparseable reply")
    return SampleRecord(task="egotextvqa_indoor", benchmark="egotextvqa_indoor", setting="indoor", video_id="v",
                        question_id=qtype + str(score), question_type=qtype, question="q", answer="a",
                        prediction="p", verdict=verdict, generation_error=generation_error)


def test_failed_items_leave_the_denominator_and_are_listed():
    records = [rec("a", "yes", 5), rec("a", "no", 1), rec("b", "yes", 4), rec("b", None, None)]
    s = summarize(records, count_failed_as_wrong=False)
    assert (s["n"], s["n_judged"], s["n_failed"]) == (4, 3, 1)
    assert s["accuracy"] == pytest.approx(2 / 3) and s["score"] == pytest.approx(10 / 3)
    assert s["by_type"]["b"] == {"n": 2, "n_judged": 1, "n_failed": 1, "n_generation_failed": 0, "n_pending": 0,
                                 "accuracy": 1.0, "score": 4.0, "accuracy_judged": 1.0, "score_judged": 4.0,
                                 "accuracy_failed_as_wrong": 0.5, "score_failed_as_wrong": 2.0}
    assert s["failed"] == ["v/bNone: unparseable reply"]
    assert (s["judge"], s["judge_model"], s["prompt_version"]) == ("gemini", "m", "v1")


def test_counting_failures_as_wrong_is_explicit_and_both_conventions_are_always_there():
    records = [rec("a", "yes", 5), rec("a", None, None)]
    s = summarize(records, count_failed_as_wrong=True)
    assert s["accuracy"] == 0.5 and s["score"] == 2.5 and s["failed_counted_as_wrong"] is True
    both = {k: s[k] for k in ("accuracy_judged", "score_judged", "accuracy_failed_as_wrong", "score_failed_as_wrong")}
    assert both == {"accuracy_judged": 1.0, "score_judged": 5.0, "accuracy_failed_as_wrong": 0.5,
                    "score_failed_as_wrong": 2.5}
    assert {k: summarize(records)[k] for k in both} == both  # whatever the run chose


def test_pending_verdicts_are_neither_judged_nor_failed_and_leave_the_run_unscored():
    pending = dataclasses.replace(rec("a", None, None), question_id="p",
                                  verdict=Verdict.deferred(judge="gemini", judge_model="m", prompt_version="v1"))
    s = summarize([rec("a", "yes", 5), pending], count_failed_as_wrong=True)
    assert (s["n"], s["n_judged"], s["n_failed"], s["n_pending"]) == (2, 1, 0, 1)
    assert s["accuracy"] is None and s["accuracy_failed_as_wrong"] is None and s["failed"] == []
    # The record round-trips with its pending mark, which only deferred verdicts carry.
    from egotask.records import read_record

    assert read_record(pending.to_dict(), "x").pending
    assert pending.to_dict()["verdict"]["pending"] is True and "pending" not in rec("a", "yes", 5).to_dict()["verdict"]


def test_nothing_judged_is_no_number_not_zero():
    s = summarize([rec("a", None, None)], count_failed_as_wrong=False)
    assert s["accuracy"] is None and s["score"] is None


def test_generation_failures_are_counted_apart_from_judge_failures():
    records = [rec("a", "yes", 5), rec("a", None, None), rec("a", None, None, generation_error="video unreadable")]
    s = summarize(records)
    assert (s["n"], s["n_judged"], s["n_failed"], s["n_generation_failed"]) == (3, 1, 1, 1)
    assert s["accuracy"] == 1.0 and s["generation_failed"] == ["v/aNone: video unreadable"]
    wrong = summarize(records, count_failed_as_wrong=True)
    assert wrong["accuracy"] == pytest.approx(1 / 3) and wrong["score"] == pytest.approx(5 / 3)


def test_summaries_never_read_the_environment(monkeypatch):
    from egotask import settings

    records = [rec("a", "yes", 5), rec("a", None, None)]
    before = summarize(records)
    monkeypatch.setenv("EGOTASK_COUNT_FAILED_AS_WRONG", "1")
    settings.reset()
    assert summarize(records) == before and before["failed_counted_as_wrong"] is False
