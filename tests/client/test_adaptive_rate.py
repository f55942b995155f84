"""The pacing that follows a throttling SMSC, on an explicit clock (no sockets, no sleeping)."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


class DequeAdaptiveRate:
    """AdaptiveRate as first written: every accepted time in a deque, trimmed on each call."""

    def __init__(self, floor: float = 5.0, ceiling: float = 100_000.0) -> None:
        self.floor = floor
        self.ceiling = ceiling
        self.rate: float | None = None  # the limiter's rate; None without a limiter
        self.burst = 0.0
        self._accepted: deque[float] = deque()
        self._changed_at = 0.0

    def _trim(self, now: float) -> None:
        while self._accepted and self._accepted[0] < now - 1.0:
            self._accepted.popleft()

    def accepted(self, now: float) -> None:
        self._accepted.append(now)
        self._trim(now)
        if self.rate is not None and now - self._changed_at >= 1.0:
            self._changed_at = now
            self.rate *= 1.25
            self.burst = max(1.0, self.rate / 10)
            if self.rate > self.ceiling:
                self.rate = None

    def throttled(self, now: float) -> float:
        self._trim(now)
        rate = max(self.floor, 0.9 * len(self._accepted))
        if self.rate is None:
            self.rate, self.burst = rate, 1.0
        else:
            self.rate = min(self.rate, rate)
            self.burst = max(1.0, self.rate / 10)
        self._changed_at = now
        return rate


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["accepted"] * 9 + ["throttled"]),
            st.sampled_from([0, 0, 1, 1, 2, 5, 10, 25, 50, 99, 100, 101]),
        ),
        max_size=400,
    ),
    st.floats(1.0, 1000.0),
)
def test_pacing_agrees_with_the_deque_of_every_accepted_time(
    steps: list[tuple[str, int]], ceiling: float
) -> None:
    """Loop times only grow; with them the lazily trimmed times count exactly as a deque.

    Times step in hundredths of a second, so many land exactly a second apart.
    """
    rate, reference = AdaptiveRate(ceiling=ceiling), DequeAdaptiveRate(ceiling=ceiling)
    ticks = 10_000
    for action, step in steps:
        ticks += step
        now = ticks / 100
        if action == "accepted":
            rate.accepted(now)
            reference.accepted(now)
        else:
            assert rate.throttled(now) == reference.throttled(now)
        if reference.rate is None:
            assert rate.limiter is None
        else:
            assert rate.limiter is not None
            assert (rate.limiter.rate, rate.limiter.burst) == (reference.rate, reference.burst)
