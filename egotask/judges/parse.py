"""Reading a judge's reply into (pred, score, reason), tolerating the ways models stray from JSON.

Accepted: clean JSON; JSON in a code fence or surrounded by prose; Python-dict quoting
(``{'pred': 'yes'}``, ``True``); verdict words ``yes/no``, ``correct/incorrect``, ``right/wrong``,
``true/false``; scores as ``4``, ``"4"``, ``4.0`` or ``"4/5"``; and ``pred: yes`` / ``score: 4`` lines.
A reply holding two different verdicts (a quoted claim, then the real grade) is unreadable too: the
parser never guesses between them. Anything else raises :class:`UnreadableReply`; the caller records
it as a failure, never as "no".
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from egotask.records import Pred


class UnreadableReply(ValueError):
    """The reply holds no verdict and score that can be read with confidence."""


_YES = {"yes", "y", "correct", "right", "true", "1"}
_NO = {"no", "n", "incorrect", "wrong", "false", "0", "not correct"}
_PRED_KEYS = ("pred", "verdict", "judgement", "judgment", "correct", "is_correct")
_LINE_PRED = re.compile(r"\b(?:pred|verdict|judge?ment)\b[\"'*\s]*[:=][\s\"'*]*(not correct|incorrect|correct|"
                        r"yes|no|right|wrong|true|false)\b", re.I)
_LINE_SCORE = re.compile(r"\bscore\b[\"'*\s]*[:=][\s\"'*]*(\d+(?:\.\d+)?)(?:\s*/\s*5)?", re.I)


def parse_reply(text: str | None) -> tuple[Pred, int, str]:
    """``(pred, score, reason)`` from a judge reply, or :class:`UnreadableReply`.

    A reply that is one JSON object (what the schema asks for) is taken whole. Otherwise every
    verdict in it is read (objects in prose or code fences, ``pred: yes`` lines), and a reply whose
    verdicts disagree is unreadable: the parser never picks one of them.
    """
    if not text or not text.strip():
        raise UnreadableReply("empty reply")
    whole = _load_mapping(text.strip())
    if whole is not None:
        return _from_mapping(whole)
    found = [_from_mapping(obj) for obj in map(_load_mapping, _object_spans(text))
             if obj is not None and _mentions_verdict(obj)]
    line_preds = [_pred_value(m) for m in _LINE_PRED.findall(text)]
    line_scores = [_score_value(m) for m in _LINE_SCORE.findall(text)]
    preds = {p for p, _, _ in found} | set(line_preds)
    scores = {s for _, s, _ in found} | set(line_scores)
    if len(preds) > 1 or len(scores) > 1:
        raise UnreadableReply(f"conflicting verdicts in the reply (pred {sorted(preds)}, score {sorted(scores)})")
    if found:
        return found[0]
    if line_preds and line_scores:
        return line_preds[0], line_scores[0], ""
    raise UnreadableReply("no JSON object with 'pred' and 'score' in the reply")


def _object_spans(text: str) -> list[str]:
    """Every outermost ``{...}`` of the text, braces inside quoted strings aside."""
    spans: list[str] = []
    depth, start, quote, escaped = 0, 0, "", False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'" and depth:  # outside objects an apostrophe is prose, not a string
            quote = ch
        elif ch == "{":
            start = i if depth == 0 else start
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                spans.append(text[start:i + 1])
    return spans


def _mentions_verdict(obj: dict[str, Any]) -> bool:
    keys = {str(k).strip().lower() for k in obj}
    return bool(keys & {*_PRED_KEYS, "score"})


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
