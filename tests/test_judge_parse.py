"""The reply parser reads what models actually send, and refuses to guess at the rest."""

import pytest

from egotask.judges.parse import UnreadableReply, parse_reply


@pytest.mark.parametrize("reply, expected", [
    ('{"pred": "yes", "score": 5, "reason": "same"}', ("yes", 5, "same")),
    ('```json\n{"pred": "no", "score": 1}\n```', ("no", 1, "")),
    ("{'pred': 'yes', 'score': 4, 'reason': 'contains it'}", ("yes", 4, "contains it")),
    ('Sure! Here is my grading:\n{"pred": "yes", "score": "3"}\nHope that helps.', ("yes", 3, "")),
    ('{"pred": "correct", "score": 4.0}', ("yes", 4, "")),
    ('{"pred": "Incorrect", "score": "0/5"}', ("no", 0, "")),
    ("{'Pred': True, 'Score': 5}", ("yes", 5, "")),
    ("pred: no\nscore: 2", ("no", 2, "")),
    ('[{"pred": "yes", "score": 5}]', ("yes", 5, "")),
])
def test_tolerant_parser_reads_fenced_quoted_and_worded_replies(reply, expected):
    assert parse_reply(reply) == expected


@pytest.mark.parametrize("reply", [
    "", "   ", "I think the prediction is probably fine", '{"pred": "maybe", "score": 3}',
    '{"pred": "yes"}', '{"score": 4}', '{"pred": "yes", "score": 7}', '{"pred": "no", "score": 2.5}',
    '{"pred": "yes", "score": true}', "The answer is not correct.",
])
def test_unreadable_replies_raise_instead_of_becoming_no(reply):
    with pytest.raises(UnreadableReply):
        parse_reply(reply)


@pytest.mark.parametrize("reply", [
    'The prediction claims {"pred": "yes", "score": 5}, but it does not match. {"pred": "no", "score": 0}',
    'First thought: {"pred": "yes", "score": 4}. On reflection {"pred": "yes", "score": 2}',
    "pred: yes, score: 5. Actually no: pred: no, score: 1",
    '```json\n{"pred": "yes", "score": 5}\n```\n```json\n{"pred": "no", "score": 0}\n```',
    "Grading: {'pred': 'no', 'score': 1} or rather {'pred': 'yes', 'score': 4}",
])
def test_a_reply_with_conflicting_verdicts_is_unreadable_not_the_first_one(reply):
    with pytest.raises(UnreadableReply, match="conflicting verdicts"):
        parse_reply(reply)


@pytest.mark.parametrize("reply, expected", [
    # the structured reply is taken whole, whatever its reason says
    ('{"pred": "no", "score": 1, "reason": "it says {\\"pred\\": \\"yes\\", \\"score\\": 5} but is wrong"}',
     ("no", 1, 'it says {"pred": "yes", "score": 5} but is wrong')),
    # the same verdict twice is one verdict
    ('Verdict: {"pred": "yes", "score": 4}. Repeating: {"pred": "yes", "score": 4}', ("yes", 4, "")),
])
def test_a_structured_or_repeated_verdict_is_read(reply, expected):
    assert parse_reply(reply) == expected
