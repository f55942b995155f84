"""The per-message objects built by filling their slots equal the dataclasses' own constructors.

The send and receipt paths build frozen dataclasses through their slot descriptors (half the
cost of the generated ``__init__``); each builder must set every field, in order, exactly as
the constructor does.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from o2sms import receipts
from o2sms.client import addresses, api, events
from o2sms.client.errors import AddressError
from o2sms.receipts import DeliveryReceipt, ReceiptStat
from o2sms.smpp import connection
from o2sms.smpp.constants import MessageState
from o2sms.smpp.pdu import DeliverSm, SubmitSm, SubmitSmResp
from o2sms.text import Encoding, split
from o2sms.text.split import Part

RECEIPT_VALUES = (
    "04000000086ECD50",
    1,
    0,
    datetime(2024, 3, 15, 14, 30),
    None,
    ReceiptStat.UNDELIV,
    "0x1F",
    "hi",
    MessageState.UNDELIVERABLE,
    b"\x03\x00\x01",
)

CASES: list[tuple[Callable[..., Any], type, tuple[Any, ...]]] = [
    (receipts._receipt, DeliveryReceipt, RECEIPT_VALUES),
    (
        events.delivery_report,
        events.DeliveryReport,
        (DeliveryReceipt(*RECEIPT_VALUES), "04000000086ECD50", "order-42", "421903", 2, 3, "s-1"),
    ),
    (api._send_result, api.SendResult, (("a", "b"), Encoding.UCS2, 2, "421903123456", "ref")),
    (addresses._address, addresses.Address, (1, 1, "421903123456")),
    (connection._request_received, connection.RequestReceived, (DeliverSm(),)),
    (
        connection._response_received,
        connection.ResponseReceived,
        (SubmitSm(sequence_number=3), SubmitSmResp(sequence_number=3)),
    ),
]


@pytest.mark.parametrize(("build", "cls", "values"), CASES)
def test_builders_set_every_field_like_the_constructor(
    build: Callable[..., Any], cls: type, values: tuple[Any, ...]
) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    assert len(inspect.signature(build).parameters) == len(names) == len(values)
    built = build(*values)
    expected = cls(*values)
    assert type(built) is cls
    assert built == expected
    assert [getattr(built, name) for name in names] == list(values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, names[0], values[0])


def test_one_part_texts_are_the_part_the_constructor_makes() -> None:
    (part,) = split("Hello")
    assert type(part) is Part
    assert part == Part(b"Hello", 0, 0, ())
    assert [getattr(part, f.name) for f in dataclasses.fields(Part)] == [b"Hello", 0, 0, ()]


@pytest.mark.asyncio
async def test_an_invalid_default_sender_is_refused_on_every_send() -> None:
    sms = api.Client("127.0.0.1", sender="Twelve chars")
    for _ in range(2):  # the address is kept only once it is valid
        with pytest.raises(AddressError):
            await sms.send("+421903123456", "hi")
    assert sms._sender_address is None
