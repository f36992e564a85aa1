"""Keeping API keys out of everything egotask writes: results, samples, the cache and logs."""

from __future__ import annotations

from egotask.settings import vendor_value

# Variables whose values are secrets; a plugin judge can add its own with ``SECRET_VARS.append``.
SECRET_VARS = ["GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"]
MASK = "[redacted]"


def redact(text: str | None) -> str | None:
    """``text`` with the value of every secret variable replaced by ``[redacted]``."""
    if not text:
        return text
    for var in SECRET_VARS:
        secret = vendor_value(var)
        if len(secret) >= 4 and secret in text:
            text = text.replace(secret, MASK)
    return text
