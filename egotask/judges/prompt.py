"""The judge's reply schema, and reading back the item of a prompt built by egotask's judge prompt.

The prompts themselves belong to the protocol (:mod:`egotask.protocols`): egotask's own is
``egotask/protocols/egotask.yaml``, whose user prompt puts the item between the lines ``<<<ITEM`` and
``ITEM>>>`` as one JSON object, so quotes and newlines in a prediction are escaped and cannot close the
block or pass as instructions.
"""

from __future__ import annotations

import json
import re

from egotask.protocols.spec import ITEM_BEGIN, ITEM_END

__all__ = ["ITEM_BEGIN", "ITEM_END", "REPLY_SCHEMA", "parse_item_block"]

# Official protocols' user prompts name the fields in lines of their own ("Question: ...").
_LABELLED = {"question": re.compile(r"^Question:\s*(.*)$", re.M),
             "reference": re.compile(r"^(?:Correct Answer|Ground truth correct Answer|Reference):\s*(.*)$",
                                     re.M | re.I),
             "prediction": re.compile(r"^Predicted Answer:\s*(.*)$", re.M)}


def parse_item_block(text: str) -> dict[str, str]:
    """The item fields of a judge prompt (for the fake vendor servers and debugging): egotask's item
    block, else the labelled lines an official judge prompt holds."""
    lines = text.splitlines()
    if ITEM_BEGIN in lines:
        # JSON has no raw newlines, so the item is exactly the line after the opening marker, whatever
        # marker-like text the fields contain.
        return json.loads(lines[lines.index(ITEM_BEGIN) + 1])
    found = {name: pattern.search(text) for name, pattern in _LABELLED.items()}
    missing = [name for name, match in found.items() if match is None]
    if missing:
        raise ValueError(f"no item block and no labelled {', '.join(missing)} in the prompt")
    return {name: match.group(1).strip() for name, match in found.items() if match is not None}


# The reply schema as JSON Schema: Gemini's ``response_json_schema`` and OpenAI's ``json_schema``.
REPLY_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "pred": {"type": "string", "enum": ["yes", "no"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 5},
        "reason": {"type": "string"},
    },
    "required": ["pred", "score"],
}
