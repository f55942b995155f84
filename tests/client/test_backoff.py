"""``o2sms.client.backoff.delay``: growth, cap, jitter bounds; deterministic with a seeded rng."""

from __future__ import annotations

import random

import pytest

from o2sms.client.backoff import delay, rotation
from o2sms.client.config import Backoff


def test_without_jitter_it_grows_exponentially_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, multiplier=2.0, jitter=0.0)
    assert [delay(n, backoff) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_huge_attempt_number_stays_at_the_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, jitter=0.0)
    assert delay(10_000, backoff) == 30.0


def test_jitter_stays_within_its_fraction_and_under_the_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=10.0, multiplier=2.0, jitter=0.2)
    rng = random.Random(7)
    for attempt in range(10):
        base = min(10.0, 2.0**attempt)
        values = [delay(attempt, backoff, rng) for _ in range(200)]
        assert all(base * 0.8 <= v <= min(10.0, base * 1.2) for v in values)
        assert len(set(values)) > 50  # it does vary: sessions do not reconnect in lockstep
    # Capped: jitter never pushes past the maximum, but does pull below it.
    capped = [delay(20, backoff, rng) for _ in range(200)]
    assert max(capped) <= 10.0
    assert min(capped) < 10.0


def test_the_same_seed_gives_the_same_delays() -> None:
    backoff = Backoff()
    first = [delay(n, backoff, random.Random(42)) for n in range(6)]
    second = [delay(n, backoff, random.Random(42)) for n in range(6)]
    assert first == second


def test_full_jitter_never_goes_below_zero() -> None:
    backoff = Backoff(initial=1.0, maximum=1.0, jitter=1.0)
    rng = random.Random(1)
    assert all(0.0 <= delay(0, backoff, rng) <= 1.0 for _ in range(500))


@pytest.mark.parametrize(
    "fields",
    [
        {"initial": -1.0},
        {"initial": 5.0, "maximum": 1.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_a_backoff_that_cannot_work_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**fields)


def test_rotation_goes_round_the_endpoints() -> None:
    endpoints = rotation(["primary", "secondary"])
    assert [next(endpoints) for _ in range(5)] == [
        "primary",
        "secondary",
        "primary",
        "secondary",
        "primary",
    ]
