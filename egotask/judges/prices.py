"""Estimated judging cost from the tokens the replies' usage reported and the price table in
``prices.json`` (the one place prices are kept; edit it when the vendors' prices change)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).resolve().parent / "prices.json"


@functools.cache
def price_table() -> dict[str, Any]:
    return json.loads(PRICES_FILE.read_text(encoding="utf-8"))


def prices_checked() -> str:
    """The date (YYYY-MM-DD) the prices in ``prices.json`` were copied from the vendors' pages."""
    checked = price_table().get("checked")
    if not checked:
        raise ValueError(f"{PRICES_FILE}: no \"checked\" date; add the date the prices were copied")
    return str(checked)


def estimate_cost(backend: str, model: str, tokens_in: int, tokens_out: int, batch: bool = False) -> dict[str, Any]:
    """``{"usd": ..., "input_per_million": ..., "output_per_million": ..., "batch_discount": ..., "source": ...}``;
    ``usd`` is None (with a ``note``) for a model the table does not price."""
    if tokens_in == 0 and tokens_out == 0:  # a rule-based judge, or every verdict from the cache
        return {"usd": 0.0, "source": None, "note": "no tokens were sent or received"}
    table = price_table()
    price = table["per_million_tokens"].get(backend, {}).get(model)
    source = table["sources"].get(backend)
    if price is None:
        return {"usd": None, "source": source,
                "note": f"no price for {backend} model {model!r} in {PRICES_FILE.name}; add it there"}
    discount = table["batch_discount"].get(backend, 1.0) if batch else 1.0
    usd = (tokens_in * price["input"] + tokens_out * price["output"]) / 1e6 * discount
    return {"usd": round(usd, 6), "input_per_million": price["input"], "output_per_million": price["output"],
            "batch_discount": discount, "source": source}
