"""Fault injection: switches a test flips at runtime to see how a client copes.

One :class:`Faults` object is global (``Simulator.faults``) and each account has its own
(``Simulator.faults_for(system_id)``). A switch left at None on the account takes the global
value, so ``smsc.faults.latency = 0.2`` slows everyone and
``smsc.faults_for("acct").withhold_responses = True`` only that account. A config file can
set the starting values (``[faults]``, and ``faults`` on an account), see :func:`faults_from`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from o2sms.simulator.checks import checked, scalar_types


@dataclass(slots=True)
class Faults:
    """Runtime switches; None means "not set here" (an account then follows the global one)."""

    latency: float | None = None  #: seconds added before every response to a request
    max_submit_rate: float | None = None  #: submit_sm/s above which ESME_RTHROTTLED answers
    queue_full: int | None = None  #: the next N submit_sm get ESME_RMSGQFUL (counts down)
    drop_after: int | None = None  #: close a session abruptly once it has sent N PDUs
    drop_probability: float | None = None  #: chance per received PDU of an abrupt close
    withhold_responses: bool | None = None  #: never answer submit_sm (the request times out)
    receipt_delay: float | None = None  #: seconds added to every receipt's delay
    #: the next N accepted submit_sm (counts down): the receipt goes out at once, on another
    #: receiving session when one is bound, and the submit_sm_resp once it is answered (or
    #: 0.2 s later, for a client that answers a receipt only after its submit_sm_resp)
    receipts_first: int | None = None

    _active: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Set :attr:`active` from the switches given to the constructor.

        ``_active`` is the last field ``__init__`` assigns (its default, False), after the
        switches, so ``Faults(latency=0.2)`` would otherwise look inactive.
        """
        active = any(getattr(self, switch) is not None for switch in _SWITCHES)
        object.__setattr__(self, "_active", active)

    def __setattr__(self, name: str, value: object) -> None:
        """Set a switch and keep :attr:`active` current (read on every PDU, set rarely)."""
        object.__setattr__(self, name, value)
        if name != "_active":
            active = any(getattr(self, switch, None) is not None for switch in _SWITCHES)
            object.__setattr__(self, "_active", active)

    def clear(self) -> None:
        """Switch every fault off (back to "not set")."""
        for switch in _SWITCHES:
            setattr(self, switch, None)

    def update(self, other: Faults) -> None:
        """Set every switch that ``other`` sets (starting values from a config)."""
        for switch in _SWITCHES:
            value = getattr(other, switch)
            if value is not None:
                setattr(self, switch, value)

    @property
    def active(self) -> bool:
        """True when any switch is set."""
        return self._active


_SWITCHES = (
    "latency",
    "max_submit_rate",
    "queue_full",
    "drop_after",
    "drop_probability",
    "withhold_responses",
    "receipt_delay",
    "receipts_first",
)


def faults_from(data: Mapping[str, Any], name: str = "faults") -> Faults:
    """Faults from plain data (a config file's ``[faults]`` table ``name``); unknown names or
    values of the wrong type raise ValueError.
    """
    unknown = set(data) - set(_SWITCHES)
    if unknown:
        raise ValueError(f"unknown fault switch(es): {', '.join(sorted(unknown))}")
    kinds = _FAULT_TYPES
    return Faults(
        **{key: checked(f"{name}.{key}", value, *kinds[key]) for key, value in data.items()}
    )


class TokenBucket:
    """A rate limit of ``rate`` events per second with a burst of one second's worth.

    The bucket holds at least one token: below 1/s one second's worth is less than a whole
    token, and a bucket that can never fill up to one would refuse every event. A rate of 0
    (or less) refuses every event.
    """

    __slots__ = ("_capacity", "_last", "_tokens", "rate")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self._capacity = max(rate, 1.0) if rate > 0 else 0.0
        self._tokens = self._capacity
        self._last = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means "over the rate"."""
        tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False


class FaultView:
    """The effective switches of one account: its own Faults over the global ones."""

    __slots__ = ("_account", "_bucket", "_bucket_rate", "_global")

    def __init__(self, account: Faults, global_: Faults) -> None:
        self._account = account
        self._global = global_
        self._bucket: TokenBucket | None = None
        self._bucket_rate: float | None = None

    @property
    def any_active(self) -> bool:
        """Cheap test for the hot path: is any switch set at all?"""
        return self._account._active or self._global._active

    def latency(self) -> float:
        """Seconds to wait before a response."""
        value = self._account.latency
        if value is None:
            value = self._global.latency
        return value or 0.0

    def receipt_delay(self) -> float:
        """Seconds added to a receipt's delay."""
        value = self._account.receipt_delay
        if value is None:
            value = self._global.receipt_delay
        return value or 0.0

    def withhold(self) -> bool:
        """True when submit_sm must go unanswered."""
        value = self._account.withhold_responses
        if value is None:
            value = self._global.withhold_responses
        return bool(value)

    def drop_after(self) -> int | None:
        """PDUs a session may send before it is dropped."""
        value = self._account.drop_after
        return self._global.drop_after if value is None else value

    def drop_probability(self) -> float:
        """Chance per PDU of dropping the connection."""
        value = self._account.drop_probability
        if value is None:
            value = self._global.drop_probability
        return value or 0.0

    def take_queue_full(self) -> bool:
        """True (and one less to go) while a queue-full burst lasts."""
        for faults in (self._account, self._global):
            if faults.queue_full is not None:
                if faults.queue_full <= 0:
                    return False
                faults.queue_full -= 1
                return True
        return False

    def take_receipts_first(self) -> bool:
        """True (and one less to go) while the receipts-first fault lasts."""
        for faults in (self._account, self._global):
            if faults.receipts_first is not None:
                if faults.receipts_first <= 0:
                    return False
                faults.receipts_first -= 1
                return True
        return False

    def throttled(self, now: float) -> bool:
        """True when this submit_sm is over the configured rate."""
        rate = self._account.max_submit_rate
        if rate is None:
            rate = self._global.max_submit_rate
        if rate is None:
            self._bucket = None
            return False
        if self._bucket is None or self._bucket_rate != rate:
            self._bucket = TokenBucket(rate, now)
            self._bucket_rate = rate
        return not self._bucket.take(now)


_FAULT_TYPES: dict[str, tuple[type, bool]] = scalar_types(Faults)

__all__ = ["FaultView", "Faults", "TokenBucket", "faults_from"]
