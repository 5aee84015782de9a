"""Defensive reading of Matomo values.

Matomo sends numbers as JSON numbers or as strings depending on the server's PHP version and database adapter
(``"idVisit": 68536`` or ``"68536"``), latitude and longitude always as strings, ``""`` or ``null`` for absent
values, and ``"Unknown"`` for what device detection or GeoIP could not tell. Every reader here returns ``None``
for anything it cannot read, so a malformed value drops one property instead of the visit.
"""

from __future__ import annotations

import math
import re
from typing import Any

# Labels Matomo prints for a value it could not detect; they carry no information, so they become absent.
UNKNOWN_LABELS = frozenset({"unknown", "unk", "xx", "keyword not defined"})

_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_NESTING_LIMIT = 32


def text(value: Any) -> str | None:
    """A non-empty string (numbers are written out), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        result = value.strip()
    elif isinstance(value, int):
        result = str(value)
    elif isinstance(value, float) and math.isfinite(value):
        result = str(int(value)) if value.is_integer() else repr(value)
    else:
        return None
    return _utf8(result) if result else None


def label(value: Any) -> str | None:
    """Like :func:`text`, but Matomo's placeholders for undetected values (``Unknown``, ``UNK``, ``xx``) are absent."""
    result = text(value)
    return None if result is None or result.lower() in UNKNOWN_LABELS else result


def number(value: Any) -> int | float | None:
    """A finite number; numeric strings are parsed; whole numbers stay ints as Matomo sent them."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        stripped = value.strip()
        if _INTEGER_TEXT.fullmatch(stripped):
            return int(stripped)
        try:
            parsed = float(stripped)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def integer(value: Any) -> int | None:
    """A whole number (``13``, ``"13"``, ``13.0``), or None."""
    parsed = number(value)
    if isinstance(parsed, float):
        return int(parsed) if parsed.is_integer() else None
    return parsed


def decimal(value: Any) -> float | None:
    """A float, for values PostHog stores as floats whatever Matomo sent (``"48.924000"``)."""
    parsed = number(value)
    return None if parsed is None else float(parsed)


def _utf8(value: str) -> str:
    # A lone surrogate (possible in JSON, impossible in UTF-8) would make the event unwritable.
    return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")


def json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of a JSON-like value that ``json.dumps(..., allow_nan=False)`` accepts; non-finite floats become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _utf8(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if depth >= _NESTING_LIMIT:
        return None
    if isinstance(value, dict):
        return {str(key): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, depth + 1) for item in value]
    return text(value)
