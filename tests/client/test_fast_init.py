"""Per-message objects are built by ``fast_init``'s ``__init__`` (slot descriptors, about half
the cost of a frozen dataclass's own): same signature, same fields, still frozen."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from o2sms.client import addresses, api, events
from o2sms.client.errors import AddressError
from o2sms.fastinit import fast_init
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
    True,
)

FAST_CLASSES: list[tuple[type, tuple[Any, ...]]] = [
    (DeliveryReceipt, RECEIPT_VALUES),
    (
        events.DeliveryReport,
        (DeliveryReceipt(*RECEIPT_VALUES), "04000000086ECD50", "order-42", "421903", 2, 3, "s-1"),
    ),
    (api.SendResult, (("a", "b"), Encoding.UCS2, 2, "421903123456", "ref")),
    (addresses.Address, (1, 1, "421903123456")),
    (connection.RequestReceived, (DeliverSm(),)),
    (connection.ResponseReceived, (SubmitSm(sequence_number=3), SubmitSmResp(sequence_number=3))),
    (Part, (b"Hello", 0x40, 8, ())),
]


@pytest.mark.parametrize(("cls", "values"), FAST_CLASSES)
def test_per_message_classes_fill_every_field_through_fast_init(
    cls: type, values: tuple[Any, ...]
) -> None:
    assert cls.__init__.__code__.co_filename.startswith("<o2sms fast_init")  # type: ignore[misc]
    names = [f.name for f in dataclasses.fields(cls)]
    built = cls(*values)
    assert [getattr(built, name) for name in names] == list(values)
    assert built == cls(**dict(zip(names, values, strict=True)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, names[0], values[0])


def _plain() -> type[Any]:
    @dataclass(frozen=True, slots=True)
    class Sample:
        a: int
        b: str = "b"
        c: tuple[int, ...] = ()
        d: int = field(default=4, kw_only=True)

    return Sample


def test_fast_init_keeps_the_dataclass_signature_and_result() -> None:
    plain: type[Any] = _plain()
    fast: type[Any] = fast_init(_plain())
    assert inspect.signature(fast) == inspect.signature(plain)
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((1,), {}),
        ((1, "x", (2,)), {"d": 5}),
        ((), {"a": 1, "c": (3,)}),
    ]
    for args, kwargs in calls:
        made, expected = fast(*args, **kwargs), plain(*args, **kwargs)
        assert dataclasses.astuple(made) == dataclasses.astuple(expected)
        assert repr(made).split("(", 1)[1] == repr(expected).split("(", 1)[1]
    with pytest.raises(TypeError):
        fast()  # a is required, as before
    with pytest.raises(TypeError):
        fast(1, "x", (), 5)  # d stays keyword-only


def test_fast_init_keyword_only_and_refusals() -> None:
    fast: type[Any] = fast_init(_plain(), keyword_only=True)
    assert dataclasses.astuple(fast(a=1)) == (1, "b", (), 4)
    with pytest.raises(TypeError):
        fast(1)

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise ValueError

    @dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = field(default_factory=list)

    for cls in (Checked, Factory):
        with pytest.raises(TypeError):
            fast_init(cls)


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
