"""The retry schedule: exponential, full jitter, capped, reset, Retry-After as a floor."""

from __future__ import annotations

import email.utils
import random

import pytest

from atlasd.sync.backoff import RETRY_AFTER_MAX, Backoff
from atlasd.sync.remote import parse_retry_after


def test_delays_stay_within_a_doubling_ceiling_capped_at_the_cap() -> None:
    """The n-th failure waits at most min(cap, base*2^n), never less than zero."""
    backoff = Backoff(0.5, 8.0, random.Random(1))
    for n in range(12):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= min(8.0, 0.5 * 2**n)
    assert backoff.failures == 12


def test_jitter_spreads_delays_across_the_whole_range() -> None:
    """Full jitter: many draws at the cap cover both low and high parts of [0, cap]."""
    rng = random.Random(7)
    delays = []
    for _ in range(400):
        backoff = Backoff(1.0, 4.0, rng)
        backoff.failures = 10
        delays.append(backoff.next_delay())
    assert min(delays) < 0.5
    assert max(delays) > 3.5
    assert len(set(delays)) == len(delays)


def test_reset_returns_the_failure_count_and_restarts_from_base() -> None:
    """After a success the next failure waits at most base again."""
    backoff = Backoff(0.25, 100.0, random.Random(3))
    for _ in range(6):
        backoff.next_delay()
    assert backoff.reset() == 6
    assert backoff.failures == 0
    assert backoff.next_delay() <= 0.25


def test_retry_after_is_a_floor_under_the_jittered_delay() -> None:
    """A remote asking for 7 s is never retried sooner, even with a 1 s cap."""
    backoff = Backoff(0.1, 1.0, random.Random(5))
    assert backoff.next_delay(retry_after=7.0) == 7.0
    assert backoff.next_delay(retry_after=10**9) == RETRY_AFTER_MAX


def test_a_cap_below_the_base_is_refused() -> None:
    """Bad settings fail loudly instead of producing a silent schedule."""
    with pytest.raises(ValueError, match="base"):
        Backoff(2.0, 1.0)
    with pytest.raises(ValueError, match="base"):
        Backoff(0.0, 1.0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_retry_after_seconds_are_parsed(header: str | None, expected: float | None) -> None:
    """Retry-After given as delta-seconds; junk means 'not given'."""
    assert parse_retry_after(header) == expected


def test_retry_after_http_dates_count_from_now() -> None:
    """Retry-After given as an HTTP date is the time left until then (past: zero)."""
    now = 1_800_000_000.0
    later = email.utils.formatdate(now + 42, usegmt=True)
    earlier = email.utils.formatdate(now - 42, usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(42.0)
    assert parse_retry_after(earlier, now=now) == 0.0
