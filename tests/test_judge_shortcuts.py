"""Shortcuts: egotask's protocol judges an exact match (after normalisation) or a shared abstention right
without asking the LLM, labelled with the rule; the official protocols ask every time."""

from __future__ import annotations

import pytest
from protocol_standins import write_egotextvqa_release

from egotask import settings
from egotask.cli import main as egotask_main
from egotask.judges import JudgeItem, build_judge, judge_answers
from egotask.judges.shortcuts import shortcut_rule


def test_exact_matches_and_shared_abstentions_need_no_request(fake_judge):
    server = fake_judge()
    items = [JudgeItem("Which shop?", "The Sunrise Bakery!", "sunrise bakery"),
             JudgeItem("Speed limit?", "i can't find it", "Unanswerable: no sign is visible."),
             JudgeItem("Which shop?", "wood glue,yes | glue", "Glue."),  # one of the listed answers
             JudgeItem("Where is this?", "car wash", "the road next to the car wash")]  # not a shortcut
    verdicts = judge_answers(build_judge("gemini"), items)
    assert [(v.judge, v.pred, v.score) for v in verdicts[:3]] == [
        ("gemini+exact", "yes", 5), ("gemini+abstain", "yes", 5), ("gemini+exact", "yes", 5)]
    assert all("no LLM request" in v.reason and v.prompt_version == "egotask-judge-v2" for v in verdicts[:3])
    assert verdicts[3].judge == "gemini" and server.requests == 1  # only the last was asked


@pytest.mark.parametrize("prediction, reference", [("65", "65 mph"), ("Unanswerable", "65 mph"),
                                                   ("65 mph", "not found"), ("", "")])
def test_anything_else_goes_to_the_judge(prediction, reference):
    assert shortcut_rule(JudgeItem("q", reference, prediction)) is None


def test_official_protocols_ask_the_llm_even_for_exact_matches(fake_judge, monkeypatch, tmp_path):
    server = fake_judge()
    monkeypatch.delenv("EGOTASK_JUDGE")
    settings.reset()
    assert egotask_main(["protocol", "import", str(write_egotextvqa_release(tmp_path / "r"))]) == 0
    settings.configure(protocol="egotextvqa-official")
    [verdict] = judge_answers(build_judge(), [JudgeItem("Which shop?", "bakery", "bakery")])
    assert server.requests == 1 and verdict.judge == "openai"


def test_shortcuts_on_the_predecessors_predictions(shared_data):
    """The saving measured on the predecessor's 6,147 judged predictions, and how its Gemini verdicts
    compare: every shortcut item it called wrong got "no" with score 0, the form in which it recorded
    failed judge calls; none got a "no" with a score above 0."""
    from egotask.reports.legacy import convert_file, parse_name

    records = [r for path in sorted((shared_data / "seed_results").glob("*_results.json"))
               for r in convert_file(parse_name(path))]
    rules = [(shortcut_rule(JudgeItem(r.question, r.answer, r.prediction)), r.verdict) for r in records]
    taken = [(rule[0], verdict) for rule, verdict in rules if rule]
    assert len(records) == 6147 and len(taken) == 54  # 0.9% of the requests saved
    assert sum(rule == "exact" for rule, _ in taken) == 52
    disagree = [v for _, v in taken if v.pred != "yes"]
    assert len(disagree) == 28 and {(v.pred, v.score) for v in disagree} == {("no", 0)}
