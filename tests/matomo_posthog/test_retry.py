import random

import pytest

from matomo_posthog.retry import backoff_seconds, parse_retry_after


def test_backoff_grows_with_attempts_and_stays_under_the_cap():
    rng = random.Random(1)
    ceilings = [min(30, 2**n) for n in range(1, 8)]
    delays = [backoff_seconds(n, None, 1, 30, rng) for n in range(1, 8)]
    assert all(1 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings))


def test_retry_after_wins_when_longer_but_never_past_the_cap():
    rng = random.Random(2)
    assert backoff_seconds(1, 10, 1, 30, rng) == 10
    assert backoff_seconds(1, 120, 1, 30, rng) == 30


@pytest.mark.parametrize("header, seconds", [("7", 7.0), ("0.5", 0.5), (None, None),
                                             ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("-3", 0.0)])
def test_retry_after_header_in_seconds(header, seconds):
    assert parse_retry_after(header) == seconds
