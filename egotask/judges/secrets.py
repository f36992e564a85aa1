"""Keeping API keys out of everything egotask writes: results, samples, the cache and logs."""

from __future__ import annotations

import re

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


# ``key=value`` pairs whose key names a secret (api_key, openai_api_key, access_token, client_secret,
# password, key, ...), as --model_args and keyword arguments spell them, and values that look like a
# vendor key wherever they appear (OpenAI ``sk-``, Hugging Face ``hf_``, Google ``AIza``).
_SECRET_PAIR = re.compile(r"(?i)(^|[\s,;(&?'\"])([\w.-]*(?:api[_-]?key|(?:\b|_)key|token|secret|password|passwd|"
                          r"credentials?))(\s*[=:]\s*['\"]?)([^,\s'\"&)]+)")
_SECRET_VALUE = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_-]{30,})")


def redact_secrets(text: str | None) -> str | None:
    """``text`` with secret variables' values, the values of secret-looking ``key=value`` arguments and
    vendor-key-looking strings replaced by ``[redacted]``: for anything egotask prints or writes that
    may hold --model_args or an error about them."""
    if not text:
        return text
    text = redact(text) or text
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)
    return _SECRET_VALUE.sub(MASK, text)
