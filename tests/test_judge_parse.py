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
