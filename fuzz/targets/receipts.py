"""Receipt parser: ``receipts.parse``, ``from_deliver_sm``, ``format`` and the message-id keys.

Input: octet 0 picks the mode, the rest feeds a FuzzedDataProvider (or is the text itself).

Oracles:
- parse / from_deliver_sm raise only ReceiptParseError, and a receipt has a non-empty id, a
  ReceiptStat, counts that are None or small, and err_code/is_final that compute;
- parse(bytes) equals parse of the same octets read as Latin-1 text;
- format() either refuses its arguments with ValueError or writes a text that parse() reads
  back to the same fields (its docstring's promise);
- message_id_keys / normalise_message_id never raise in "auto" mode, an id matches itself.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

import atheris  # type: ignore[import-untyped]

from fuzz.targets import OracleError
from o2sms import receipts
from o2sms.receipts import DeliveryReceipt, ReceiptParseError, ReceiptStat
from o2sms.smpp.constants import TlvTag
from o2sms.smpp.tlv import Tlv, TlvValue

_STATS = list(ReceiptStat)
_STAT_SPELLINGS = ["REJECTED", "DELIVERY UNKNOWN", "delivered", "Undeliverable", "ENROUTE"]
_TAGS = [
    TlvTag.RECEIPTED_MESSAGE_ID,
    TlvTag.MESSAGE_STATE,
    TlvTag.NETWORK_ERROR_CODE,
    TlvTag.MESSAGE_PAYLOAD,
    0x1400,
]


@dataclass(frozen=True, slots=True)
class _DeliverSm:
    short_message: bytes
    esm_class: int
    data_coding: int
    tlvs: tuple[Tlv, ...]


def _check(receipt: DeliveryReceipt) -> None:
    if not isinstance(receipt, DeliveryReceipt) or not receipt.id:
        raise OracleError(f"bad receipt {receipt!r}")
    if not isinstance(receipt.stat, ReceiptStat):
        raise OracleError(f"stat {receipt.stat!r} is not a ReceiptStat")
    for count in (receipt.sub, receipt.dlvrd, receipt.err_code):
        if count is not None and not 0 <= count < 10**18:
            raise OracleError(f"count {count} out of range in {receipt!r}")
    if receipt.is_final != (receipt.stat is not ReceiptStat.ENROUTE):
        raise OracleError(f"is_final wrong for {receipt!r}")


def _parse(text: str | bytes) -> DeliveryReceipt | None:
    try:
        receipt = receipts.parse(text)
    except ReceiptParseError:
        return None
    _check(receipt)
    return receipt


def _value(fdp: atheris.FuzzedDataProvider) -> TlvValue:
    kind = fdp.ConsumeIntInRange(0, 2)
    if kind == 0:
        return int(fdp.ConsumeIntInRange(-2, 300))
    if kind == 1:
        return str(fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 70)))
    return bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 70)))


def _from_deliver_sm(fdp: atheris.FuzzedDataProvider) -> None:
    esm_class = fdp.ConsumeIntInRange(0, 255)
    data_coding = fdp.ConsumeIntInRange(0, 255)
    tlvs = tuple(
        Tlv(_TAGS[fdp.ConsumeIntInRange(0, len(_TAGS) - 1)], _value(fdp))
        for _ in range(fdp.ConsumeIntInRange(0, 5))
    )
    short_message = bytes(fdp.ConsumeBytes(254))
    try:
        receipt = receipts.from_deliver_sm(_DeliverSm(short_message, esm_class, data_coding, tlvs))
    except ReceiptParseError:
        return
    _check(receipt)


def _date(fdp: atheris.FuzzedDataProvider) -> datetime | None:
    try:
        return datetime(
            fdp.ConsumeIntInRange(1999, 2100),
            fdp.ConsumeIntInRange(1, 12),
            fdp.ConsumeIntInRange(1, 31),
            fdp.ConsumeIntInRange(0, 23),
            fdp.ConsumeIntInRange(0, 59),
            fdp.ConsumeIntInRange(0, 59),
        )
    except ValueError:
        return None


def _format_round_trip(fdp: atheris.FuzzedDataProvider) -> None:
    message_id = str(fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40)))
    sub = fdp.ConsumeIntInRange(-1, 1200)
    dlvrd = fdp.ConsumeIntInRange(-1, 1200) if fdp.ConsumeBool() else None
    stat = _STATS[fdp.ConsumeIntInRange(0, len(_STATS) - 1)]
    err: int | str = (
        fdp.ConsumeIntInRange(-1, 2000)
        if fdp.ConsumeBool()
        else str(fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 8)))
    )
    seconds = fdp.ConsumeBool()
    stat_text: str | None = None
    choice = fdp.ConsumeIntInRange(0, 2)
    if choice == 1:
        stat_text = _STAT_SPELLINGS[fdp.ConsumeIntInRange(0, len(_STAT_SPELLINGS) - 1)]
    elif choice == 2:
        stat_text = str(fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 20)))
    submit_date, done_date = _date(fdp), _date(fdp)
    text = str(fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 30)))
    if submit_date is None or done_date is None:
        return
    try:
        written = receipts.format(
            message_id,
            sub=sub,
            dlvrd=dlvrd,
            submit_date=submit_date,
            done_date=done_date,
            stat=stat,
            err=err,
            text=text,
            seconds=seconds,
            stat_text=stat_text,
        )
    except ValueError:
        return  # refused, as documented (ReceiptParseError is a ValueError too)
    read = receipts.parse(written)
    expected = (
        message_id,
        sub,
        dlvrd if dlvrd is not None else int(stat is ReceiptStat.DELIVRD),
        submit_date if seconds else submit_date.replace(second=0),
        done_date if seconds else done_date.replace(second=0),
        stat,
        f"{err:03d}" if isinstance(err, int) else err,
        # parse drops trailing NUL/CR/LF from text: SMSC padding, the parser's normalisation
        text[: receipts.TEXT_LIMIT].rstrip("\x00\r\n"),
    )
    got = (read.id, read.sub, read.dlvrd, read.submit_date, read.done_date, read.stat, read.err)
    if (*got, read.text) != expected:
        raise OracleError(f"format wrote {written!r}, parse read {read!r}, expected {expected!r}")


def _ids(fdp: atheris.FuzzedDataProvider) -> None:
    a = str(fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 80)))
    b = str(fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 80)))
    receipts.normalise_message_id(a)
    for base in ("hex", "decimal"):
        with contextlib.suppress(ReceiptParseError):
            receipts.normalise_message_id(a, base=base)
    if not receipts.message_ids_match(a, a):
        raise OracleError(f"{a!r} does not match itself")
    if receipts.message_ids_match(a, b) != receipts.message_ids_match(b, a):
        raise OracleError(f"message_ids_match is not symmetric for {a!r}, {b!r}")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 5, data[1:]
    if mode == 0:
        from_bytes = _parse(rest)
        if from_bytes != _parse(rest.decode("latin-1")):
            raise OracleError(f"parse(bytes) and parse(str) differ for {rest!r}")
        return
    fdp = atheris.FuzzedDataProvider(rest)
    if mode == 1:
        _parse(str(fdp.ConsumeUnicode(len(rest))))
    elif mode == 2:
        _from_deliver_sm(fdp)
    elif mode == 3:
        _format_round_trip(fdp)
    else:
        _ids(fdp)
