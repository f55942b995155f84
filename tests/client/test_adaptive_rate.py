"""The pacing that follows a throttling SMSC, on an explicit clock (no sockets, no sleeping)."""

from __future__ import annotations

import pytest

from o2sms.client.pool import AdaptiveRate


def test_no_pacing_until_throttled() -> None:
    rate = AdaptiveRate()
    for n in range(500):
        rate.accepted(n / 1000)
    assert rate.limiter is None


def test_throttle_paces_below_what_was_accepted_then_speeds_up() -> None:
    rate = AdaptiveRate(floor=5.0, ceiling=1000.0)
    for n in range(100):  # 100 accepted within the last second
        rate.accepted(10.0 + n / 100)
    assert rate.throttled(11.0) == pytest.approx(90.0)
    assert rate.limiter is not None
    assert rate.limiter.rate == pytest.approx(90.0)
    rate.accepted(11.5)  # under a second since the throttle: unchanged
    assert rate.limiter.rate == pytest.approx(90.0)
    rate.accepted(12.1)
    assert rate.limiter.rate == pytest.approx(112.5)
    now = 12.1
    while rate.limiter is not None:
        now += 1.0
        rate.accepted(now)
    assert now < 25  # a quarter faster each quiet second: past the ceiling in seconds


def test_a_second_throttle_never_raises_the_pace_and_the_floor_holds() -> None:
    rate = AdaptiveRate(floor=5.0)
    for n in range(50):
        rate.accepted(n / 50)
    rate.throttled(1.0)
    assert rate.limiter is not None
    assert rate.limiter.rate == pytest.approx(45.0)
    rate.throttled(5.0)  # nothing accepted in the last second: the floor
    assert rate.limiter.rate == pytest.approx(5.0)
