"""What is worth retrying against Matomo and PostHog, and how long to wait before the next attempt."""

from __future__ import annotations

import random

# Timeouts, rate limits and server errors pass; anything else will fail the same way again.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def backoff_seconds(attempt: int, retry_after: float | None, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter; a server's ``Retry-After`` wins when it asks for longer (up to ``cap``)."""
    delay = rng.uniform(base, min(cap, base * 2**attempt))
    return max(delay, min(retry_after, cap)) if retry_after is not None else delay


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, or None when absent or an HTTP date (then plain backoff applies)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
