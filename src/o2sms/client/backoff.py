"""Pure decisions for reconnecting: how long to wait, and which endpoint to try next."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TypeVar

from o2sms.client.config import Backoff

T = TypeVar("T")


def delay(attempt: int, backoff: Backoff, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt number ``attempt`` (0 = the first retry).

    ``initial * multiplier ** attempt``, capped at ``maximum``, then moved at random by up
    to ``jitter`` of itself (so sessions that lost their link together do not reconnect in
    lockstep), and never above ``maximum`` nor below 0. ``rng`` makes it deterministic.
    """
    base = min(backoff.maximum, backoff.initial * backoff.multiplier ** min(attempt, 64))
    spread = base * backoff.jitter
    value = base + (rng or random).uniform(-spread, spread)
    return max(0.0, min(backoff.maximum, value))


def rotation(endpoints: Sequence[T]) -> Iterator[T]:
    """Endpoints in order (primary, secondary, ...), starting over after the last."""
    while True:
        yield from endpoints
