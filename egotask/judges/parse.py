"""Reading a judge's reply into (pred, score, reason), tolerating the ways models stray from JSON.

Accepted: clean JSON; JSON in a code fence or surrounded by prose; Python-dict quoting
(``{'pred': 'yes'}``, ``True``); verdict words ``yes/no``, ``correct/incorrect``, ``right/wrong``,
``true/false``; scores as ``4``, ``"4"``, ``4.0`` or ``"4/5"``; and ``pred: yes`` / ``score: 4`` lines.
Anything else raises :class:`UnreadableReply`; the caller records it as a failure, never as "no".
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from egotask.records import Pred


class UnreadableReply(ValueError):
    """The reply holds no verdict and score that can be read with confidence."""


_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)
_YES = {"yes", "y", "correct", "right", "true", "1"}
_NO = {"no", "n", "incorrect", "wrong", "false", "0", "not correct"}
_PRED_KEYS = ("pred", "verdict", "judgement", "judgment", "correct", "is_correct")
_LINE_PRED = re.compile(r"\b(?:pred|verdict|judge?ment)\b[\"'*\s]*[:=][\s\"'*]*(not correct|incorrect|correct|"
                        r"yes|no|right|wrong|true|false)\b", re.I)
_LINE_SCORE = re.compile(r"\bscore\b[\"'*\s]*[:=][\s\"'*]*(\d+(?:\.\d+)?)(?:\s*/\s*5)?", re.I)


def parse_reply(text: str | None) -> tuple[Pred, int, str]:
    """``(pred, score, reason)`` from a judge reply, or :class:`UnreadableReply`."""
    if not text or not text.strip():
        raise UnreadableReply("empty reply")
    for candidate in _candidates(text):
        obj = _load_mapping(candidate)
        if obj is not None:
            return _from_mapping(obj)
    pred, score = _LINE_PRED.search(text), _LINE_SCORE.search(text)
    if pred and score:
        return _pred_value(pred.group(1)), _score_value(score.group(1)), ""
    raise UnreadableReply("no JSON object with 'pred' and 'score' in the reply")


def _candidates(text: str) -> list[str]:
    """Whole reply, fenced blocks, then the outermost ``{...}`` spans."""
    out = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        out.append(text[start:end + 1])
    return out


def _load_mapping(text: str) -> dict[str, Any] | None:
    for loader in (json.loads, ast.literal_eval):
        try:
            obj = loader(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(obj, list) and len(obj) == 1:
            obj = obj[0]
        if isinstance(obj, dict):
            return obj
    return None


def _from_mapping(obj: dict[str, Any]) -> tuple[Pred, int, str]:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    pred_key = next((k for k in _PRED_KEYS if k in lowered), None)
    if pred_key is None:
        raise UnreadableReply(f"no 'pred' field (fields: {', '.join(map(str, obj)) or 'none'})")
    if "score" not in lowered:
        raise UnreadableReply("no 'score' field")
    reason = lowered.get("reason") or lowered.get("explanation") or ""
    return _pred_value(lowered[pred_key]), _score_value(lowered["score"]), str(reason).strip()


def _pred_value(value: Any) -> Pred:
    if isinstance(value, bool):
        return "yes" if value else "no"
    word = " ".join(str(value).strip().strip(".!").lower().split())
    if word in _YES:
        return "yes"
    if word in _NO:
        return "no"
    raise UnreadableReply(f"'pred' is {value!r}, not yes/no")


def _score_value(value: Any) -> int:
    if isinstance(value, bool):
        raise UnreadableReply(f"'score' is {value!r}, not an integer 0-5")
    raw = str(value).strip()
    raw = raw.split("/", 1)[0].strip() if raw.endswith("5") and "/" in raw else raw
    try:
        number = float(raw)
    except ValueError:
        raise UnreadableReply(f"'score' is {value!r}, not an integer 0-5") from None
    if not number.is_integer() or not 0 <= number <= 5:
        raise UnreadableReply(f"'score' is {value!r}, not an integer 0-5")
    return int(number)
