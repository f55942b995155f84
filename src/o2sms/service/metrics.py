"""Prometheus metrics of one service process (a registry of its own, so tests can run several).

Counters are per process; the queue depth comes from the shared store, so every instance on one
PostgreSQL reports the same value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from o2sms.store.models import FINAL_STATUSES, ReceiptResult

__all__ = ["CONTENT_TYPE", "WEBHOOK_OUTCOMES", "Metrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_RECEIPT_BUCKETS: Final = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)

WEBHOOK_OUTCOMES: Final = ("delivered", "retry", "failed")
"""The ``outcome`` label values of ``o2sms_webhook_attempts_total``."""


class _LiveGauges(Collector):
    """Gauges read when scraped: sessions by state, messages in flight, queue depth."""

    def __init__(
        self,
        sessions: Callable[[], dict[str, int]],
        in_flight: Callable[[], int],
        queue_depth: Callable[[], int],
    ) -> None:
        self._sessions = sessions
        self._in_flight = in_flight
        self._queue_depth = queue_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily(
            "o2sms_sessions", "SMPP sessions of this process by state", labels=["state"]
        )
        for state, count in sorted(self._sessions().items()):
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily(
            "o2sms_in_flight", "messages this process is submitting now", value=self._in_flight()
        )
        yield GaugeMetricFamily(
            "o2sms_queue_depth",
            "messages queued or scheduled in the shared store (last reading)",
            value=self._queue_depth(),
        )


class Metrics:
    """The service's counters and histograms; ``render()`` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.accepted = Counter(
            "o2sms_messages_accepted", "messages stored from the API", registry=r
        )
        self.submitted = Counter(
            "o2sms_messages_submitted", "messages whose every part the SMSC accepted", registry=r
        )
        self.final = Counter(
            "o2sms_messages_final",
            "messages reaching a final status, by status",
            ["status"],
            registry=r,
        )
        self.failed = Counter(
            "o2sms_submit_failures",
            "submit attempts that failed, by reason",
            ["reason"],
            registry=r,
        )
        self.retried = Counter(
            "o2sms_submit_retries",
            "messages put back in the queue after a retriable error",
            registry=r,
        )
        self.resends = Counter(
            "o2sms_resends",
            "messages sent again that may have gone out before (claimed again after a lease "
            "expired while another worker held them, or retried after some of their parts went "
            "out): an upper bound on duplicates",
            registry=r,
        )
        self.receipts = Counter(
            "o2sms_receipts", "delivery receipts stored, by result", ["result"], registry=r
        )
        self.inbound = Counter("o2sms_inbound_sms", "inbound SMS stored", registry=r)
        self.webhooks = Counter(
            "o2sms_webhook_attempts",
            "webhook POSTs by outcome (delivered, retry, failed)",
            ["outcome"],
            registry=r,
        )
        self.webhooks_held_back = Counter(
            "o2sms_webhooks_held_back",
            "webhooks handed back unsent because their receiver timed out and its slots are taken",
            registry=r,
        )
        self.submit_latency = Histogram(
            "o2sms_submit_latency_seconds",
            "from claiming a message to the SMSC's last submit_sm_resp",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.receipt_latency = Histogram(
            "o2sms_receipt_latency_seconds",
            "from submit_sm_resp to the final delivery receipt (this process's submits)",
            buckets=_RECEIPT_BUCKETS,
            registry=r,
        )
        # Every known label value starts at 0: a series born at 1 shows no rise to rate() and
        # increase(), so an alert on it would miss the first failure after a start.
        for status in sorted(FINAL_STATUSES):
            self.final.labels(status.value)
        for outcome in WEBHOOK_OUTCOMES:
            self.webhooks.labels(outcome)
        for result in (*(r.value for r in ReceiptResult), "unreadable"):
            self.receipts.labels(result)

    def watch(
        self,
        *,
        sessions: Callable[[], dict[str, int]],
        in_flight: Callable[[], int],
        queue_depth: Callable[[], int],
    ) -> None:
        """Register the gauges that are read from the running service at scrape time."""
        self.registry.register(_LiveGauges(sessions, in_flight, queue_depth))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
