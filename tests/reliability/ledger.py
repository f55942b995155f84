"""The loss ledger of a reliability run: what went in, what the SMSC saw, what came out.

Built from the store's public API (``list_messages`` pages, then ``get`` for each message's
parts and timeline, ``list_receipts`` for receipts no part claimed) and from the simulators'
view (their received messages and counters). :meth:`Ledger.check` fails the test when a
message is lost or a count does not add up; :meth:`Ledger.render` is printed by every suite.

A message here is single-part and identified at the SMSC by (destination, text): the suites
give every message its own destination, so copies of one message at the SMSC are duplicates.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from o2sms.receipts import ReceiptStat
from o2sms.simulator import Simulator, StoredMessage
from o2sms.store import EventKind, Message, MessageStatus, MessageStore

__all__ = ["Ledger", "all_messages", "build_ledger", "wait_final", "wait_quiet"]

_FINAL_STATS = frozenset(s.value for s in ReceiptStat if s is not ReceiptStat.ENROUTE) - {
    ReceiptStat.ACCEPTD.value
}


def _key(destination: str, text: str | None) -> tuple[str, str]:
    return destination.lstrip("+"), text or ""


@dataclass
class Ledger:
    """Counts of one run; ``problems`` lists every check that failed (empty: all add up)."""

    title: str
    accepted: int = 0  #: message ids the API answered 202 for
    stored: int = 0  #: messages in the store
    submitted: int = 0  #: stored messages the SMSC(s) received at least once
    acknowledged: int = 0  #: stored messages whose submit_sm_resp was recorded (SMSC ids)
    smsc_accepted: int = 0  #: submit_sm the SMSC(s) accepted (copies included)
    receipts_sent: int = 0  #: deliver_sm receipts the SMSC(s) sent (redeliveries included)
    receipts_acknowledged: int = 0  #: ... and the service acknowledged
    receipts_applied: int = 0  #: final receipt entries in the messages' timelines
    receipts_unmatched: int = 0  #: receipts stored that no part claimed (for duplicate copies)
    final: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0  #: extra copies the SMSC(s) received
    duplicate_messages: int = 0  #: messages sent more than once
    lost: int = 0
    problems: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The ledger as a few lines, for the test output."""
        finals = ", ".join(f"{k} {v}" for k, v in sorted(self.final.items())) or "none"
        return (
            f"ledger [{self.title}]\n"
            f"  accepted {self.accepted}, stored {self.stored}, submitted {self.submitted},"
            f" acknowledged {self.acknowledged}\n"
            f"  SMSC: accepted {self.smsc_accepted} submit_sm, receipts sent"
            f" {self.receipts_sent}, acknowledged {self.receipts_acknowledged}\n"
            f"  receipts applied {self.receipts_applied}, unmatched {self.receipts_unmatched}\n"
            f"  final: {finals}\n"
            f"  duplicates {self.duplicates} (over {self.duplicate_messages} messages),"
            f" lost {self.lost}\n"
            f"  problems: {'; '.join(self.problems[:10]) or 'none'}"
        )

    def check(self) -> None:
        """Print the ledger; fail when something was lost or a count does not add up."""
        print(self.render())
        assert self.lost == 0, self.render()
        assert not self.problems, self.render()


async def all_messages(store: MessageStore) -> list[Message]:
    """Every stored message (summary rows), through ``list_messages`` pages."""
    found: list[Message] = []
    cursor = None
    while True:
        page = await store.list_messages(limit=1000, cursor=cursor)
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found


async def wait_final(store: MessageStore, count: int, timeout: float) -> list[Message]:
    """Poll until ``count`` messages are stored and all are final; the messages."""
    messages: list[Message] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                messages = await all_messages(store)
                if len(messages) >= count and all(m.status.is_final for m in messages):
                    return messages
                await asyncio.sleep(0.2)
    except TimeoutError:
        statuses = Counter(m.status.value for m in messages)
        raise AssertionError(
            f"not every message became final in {timeout} s: {dict(statuses)}"
        ) from None


def _quiet(smsc: Simulator) -> bool:
    pending = sum(smsc.pending_receipts(a.system_id) for a in smsc.config.accounts)
    outstanding = sum(s.outstanding_deliver_sm for s in smsc.sessions())
    return smsc.scheduled == 0 and pending == 0 and outstanding == 0


async def wait_quiet(smscs: Iterable[Simulator], timeout: float = 20.0) -> None:
    """Wait until no SMSC has a receipt due, waiting for a session, or unanswered."""
    smscs = list(smscs)
    async with asyncio.timeout(timeout):
        while not all(_quiet(s) for s in smscs):
            await asyncio.sleep(0.05)


async def _details(store: MessageStore, ids: Sequence[str]) -> list[Message]:
    found: list[Message] = []
    for start in range(0, len(ids), 50):
        chunk = await asyncio.gather(*(store.get(i) for i in ids[start : start + 50]))
        found.extend(m for m in chunk if m is not None)
    return found


async def build_ledger(
    title: str,
    store: MessageStore,
    accepted: Collection[str],
    smscs: Sequence[Simulator],
    *,
    stored_beyond_accepted: int = 0,
    receipts: bool = True,
) -> Ledger:
    """The ledger of a run whose API accepted ``accepted`` against SMSCs ``smscs``.

    ``stored_beyond_accepted``: messages that may be stored without a 202 (answered 503 while
    their batch was committing). ``receipts``: every SMSC-accepted copy got a final receipt
    (check it reached the store, applied to its part or kept unmatched).
    """
    ledger = Ledger(title, accepted=len(set(accepted)))
    summaries = await all_messages(store)
    messages = await _details(store, [m.id for m in summaries])
    by_id = {m.id: m for m in messages}
    ledger.stored = len(messages)
    copies: dict[tuple[str, str], list[StoredMessage]] = defaultdict(list)
    for smsc in smscs:
        ledger.smsc_accepted += smsc.counters["submit_sm_accepted"]
        ledger.receipts_sent += smsc.counters["receipts_sent"]
        ledger.receipts_acknowledged += smsc.counters["receipts_acknowledged"]
        for received in smsc.messages():
            copies[_key(received.destination_addr, received.text)].append(received)
    seen_at_smsc = sum(len(c) for c in copies.values())
    if seen_at_smsc != ledger.smsc_accepted:
        ledger.problems.append(
            f"the SMSCs accepted {ledger.smsc_accepted} submit_sm but keep {seen_at_smsc}"
            " (raise store_size)"
        )

    missing = set(accepted) - by_id.keys()
    if missing:
        ledger.lost += len(missing)
        ledger.problems.append(f"{len(missing)} accepted messages are not stored")
    extra = ledger.stored - ledger.accepted
    if extra > stored_beyond_accepted:
        ledger.problems.append(
            f"stored {ledger.stored} for {ledger.accepted} accepted"
            f" (at most {stored_beyond_accepted} more allowed)"
        )

    for message in messages:
        ledger.final[message.status.value] += 1
        if not message.status.is_final:
            ledger.lost += 1
            ledger.problems.append(f"{message.id} is still {message.status.value}")
            continue
        sent = copies.get(_key(message.recipient, message.text), [])
        smsc_ids = {p.smsc_id for p in message.parts if p.smsc_id}
        if sent:
            ledger.submitted += 1
        if message.parts and len(smsc_ids) == len(message.parts):
            ledger.acknowledged += 1
        applied = [
            e
            for e in message.events
            if e.kind is EventKind.RECEIPT and e.detail.get("stat") in _FINAL_STATS
        ]
        ledger.receipts_applied += len(applied)
        if message.status in {MessageStatus.FAILED, MessageStatus.CANCELLED}:
            continue
        # Reached a network verdict: it must have reached the SMSC, under the recorded id.
        if not sent:
            ledger.lost += 1
            ledger.problems.append(f"{message.id} is {message.status.value} but no SMSC has it")
            continue
        if not smsc_ids <= {c.message_id for c in sent}:
            ledger.problems.append(f"{message.id}: recorded SMSC ids {smsc_ids} are not its copies")
        # One receipt per part decides it; a resent copy's receipt is kept but marked ignored.
        per_part = Counter(
            int(e.detail.get("part", 0)) for e in applied if not e.detail.get("ignored")
        )
        if sorted(per_part) != list(range(1, message.parts_count + 1)) or any(
            n != 1 for n in per_part.values()
        ):
            ledger.problems.append(f"{message.id}: final receipts per part {dict(per_part)}")
        ignored = len(applied) - sum(per_part.values())
        if ignored > (len(sent) - 1) * message.parts_count:
            ledger.problems.append(
                f"{message.id}: {ignored} receipts ignored for {len(sent) - 1} extra copies"
            )
        if len(sent) > 1:
            ledger.duplicates += len(sent) - 1
            ledger.duplicate_messages += 1
            # A copy is only allowed for a claim whose submit_sm_resp never got recorded:
            # the recorded SMSC id is one copy; every other copy cost an attempt.
            if len(sent) - 1 > message.attempts - 1:
                ledger.problems.append(
                    f"{message.id}: {len(sent)} copies at the SMSC in {message.attempts} attempts"
                )

    if receipts:
        unmatched = await store.list_receipts(unmatched=True, limit=1_000_000)
        ledger.receipts_unmatched = len(unmatched)
        if ledger.receipts_applied + ledger.receipts_unmatched != ledger.smsc_accepted:
            ledger.problems.append(
                f"{ledger.smsc_accepted} copies accepted by the SMSCs but"
                f" {ledger.receipts_applied} receipts applied + {ledger.receipts_unmatched}"
                " unmatched"
            )
        if ledger.receipts_acknowledged < ledger.smsc_accepted:
            ledger.problems.append(
                f"only {ledger.receipts_acknowledged} receipts acknowledged for"
                f" {ledger.smsc_accepted} copies"
            )
    return ledger
