"""Abstentions ("i can't find it", "Unanswerable") are one class: an abstaining answer is right exactly
when its reference abstains too, for the heuristic judge and in egotask's judge prompt."""

from __future__ import annotations

import json

import pytest

from egotask.abstention import is_abstention
from egotask.judges import JudgeItem
from egotask.judges.heuristic import heuristic_verdict
from egotask.protocols import load_protocol

ABSTAINING_PREDICTIONS = ["Unanswerable. The sign is not in the frames.", "I cannot see any speed limit sign.",
                          "The video does not show it.", "Not visible.", "I don't know.",
                          "It is not possible to determine from these frames."]
ANSWERS = ["65 mph", "turn right when you see the metro sign", "you cannot turn right", "no, do not block free left",
           "find the cybercity building", "Starbucks", "no"]


@pytest.mark.parametrize("text", ["i can't find it", "not found", "there are no speed limit signs here",
                                  "I can’t see it", "no motorcycle found", "it's too blurry to see",
                                  "the pharmacy hours are not displayed", "have no idea", *ABSTAINING_PREDICTIONS])
def test_abstentions_are_recognised(text):
    assert is_abstention(text)


@pytest.mark.parametrize("text", [*ANSWERS, "", "no, there are other road instructions visible", "not now",
                                  "You could try Garden & Co. The video does not show what it sells, though."])
def test_answers_are_not_abstentions(text):
    assert not is_abstention(text)


def test_heuristic_judge_scores_abstentions_as_one_class():
    def verdict(reference, prediction):
        v = heuristic_verdict(JudgeItem("Is there a speed limit?", reference, prediction))
        return v.pred, v.score

    assert verdict("i can't find it", "Unanswerable") == ("yes", 5)
    assert verdict("there are no speed limit signs here", "I cannot see a speed limit sign.") == ("yes", 5)
    assert verdict("65 mph", "Unanswerable") == ("no", 0)
    assert verdict("not found", "65 mph") == ("no", 0)
    assert verdict("65 mph", "The limit is 65 mph.") == ("yes", 4)  # the usual rules still apply


def test_egotask_judge_prompt_counts_matching_abstentions_right():
    judge = load_protocol("egotask").judge
    assert judge.version == "egotask-judge-v2"
    text = " ".join(judge.system.split())
    assert "is right exactly when the reference says so too, and wrong when the reference gives an answer" in text
    assert "An empty answer, a refusal or \"I don't know\" is wrong." not in text  # v1's rule 4 is gone


def test_real_time_subset_abstention_references_are_scored_right_only_for_abstaining_predictions(shared_data):
    """The real annotations: the paper's real-time subset (623 outdoor questions), whose references
    include 'i can't find it' (54 in all outdoor), 'not found' (47) and 'there are no ... here'."""
    from egotask.data.subsets import subset_keys

    keys = set(subset_keys("outdoor_realtime"))
    rows = [json.loads(line) for line in
            (shared_data / "egotextvqa" / "egotextvqa_outdoor_annotation.jsonl").read_text().splitlines()]
    subset = [r for r in rows if (str(r["video_id"]), str(r["question_id"])) in keys]
    assert len(subset) == 623
    abstaining = [r for r in subset if is_abstention(r["correct_answer"])]
    answered = [r for r in subset if not is_abstention(r["correct_answer"])]
    # 178 of 623 (28.6%) by egotask's rules; the narrower count was 165 (26.5%).
    assert len(abstaining) == 178
    assert {"i can't find it", "not found"} <= {r["correct_answer"].lower() for r in abstaining}
    for prediction in ABSTAINING_PREDICTIONS:
        right = [heuristic_verdict(JudgeItem(r["question"], r["correct_answer"], prediction)).pred
                 for r in abstaining]
        wrong = [heuristic_verdict(JudgeItem(r["question"], r["correct_answer"], prediction)).pred
                 for r in answered]
        assert right.count("yes") == len(abstaining), prediction
        assert wrong.count("no") == len(answered), prediction
    # The LLM judge is asked with egotask's v2 prompt, whose rule 4 decides these items, and each item
    # reaches it whole (the reference untouched, so the judge can see that it abstains).
    from egotask.judges import build_judge

    judge = build_judge("gemini")
    for r in abstaining:
        system, user = judge.prompts(JudgeItem(r["question"], r["correct_answer"], "Unanswerable"))
        assert "is right exactly when the reference says so too" in " ".join(system.split())
        assert json.dumps(r["correct_answer"], ensure_ascii=False) in user
    # Across the benchmark: outdoor 204 of 4,848 and indoor 5 of 2,216 references abstain.
    indoor = [json.loads(line) for line in
              (shared_data / "egotextvqa" / "egotextvqa_indoor_annotation.jsonl").read_text().splitlines()]
    assert (sum(is_abstention(r["correct_answer"]) for r in rows),
            sum(is_abstention(r["correct_answer"]) for r in indoor)) == (204, 5)
