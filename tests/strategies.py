"""Hypothesis strategies for PDUs and TLVs, driven by each class's declared wire layout."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from o2sms.smpp import (
    PDU_CLASSES,
    TLV_SPECS,
    DistributionList,
    Pdu,
    SmeAddress,
    Tlv,
    TlvTag,
    UnsuccessSme,
)
from o2sms.smpp.codec import wire_layout
from o2sms.smpp.tlv import CStringSpec, IntSpec, OctetsSpec
from o2sms.smpp.wire import COctet, Custom, Int, SmOctets

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)


def c_octet(max_size: int, exact: int | None = None) -> st.SearchStrategy[str]:
    """Text that fits a C-Octet string field: Latin-1 without NUL."""
    alphabet = st.characters(min_codepoint=1, max_codepoint=0xFF)
    if exact is not None:
        return st.one_of(st.just(""), st.text(alphabet, min_size=exact, max_size=exact))
    return st.text(alphabet, max_size=max_size - 1)


sme_addresses = st.builds(SmeAddress, u8, u8, c_octet(21))
dest_addresses = st.lists(
    st.one_of(sme_addresses, st.builds(DistributionList, c_octet(21))), min_size=1, max_size=6
).map(tuple)
unsuccess_smes = st.lists(st.builds(UnsuccessSme, u8, u8, c_octet(21), u32), max_size=4).map(tuple)


def _tlv_value(spec: IntSpec | CStringSpec | OctetsSpec) -> st.SearchStrategy[Any]:
    if isinstance(spec, IntSpec):
        return st.integers(0, (1 << (8 * spec.sizes[-1])) - 1)
    if isinstance(spec, CStringSpec):
        return c_octet(spec.max_size)
    return st.binary(min_size=spec.min_size, max_size=min(spec.max_size, 300))


known_tlvs = st.sampled_from(sorted(TLV_SPECS.items())).flatmap(
    lambda item: _tlv_value(item[1]).map(lambda value: Tlv(item[0], value))
)
unknown_tlvs = st.builds(
    Tlv, st.integers(0, 0xFFFF).filter(lambda tag: tag not in TLV_SPECS), st.binary(max_size=40)
)
tlv_lists = st.lists(st.one_of(known_tlvs, unknown_tlvs), max_size=5).map(tuple)


def _field(wire: Int | COctet | SmOctets | Custom, name: str) -> st.SearchStrategy[Any]:
    if isinstance(wire, Int):
        return st.integers(0, (1 << (8 * wire.size)) - 1)
    if isinstance(wire, COctet):
        return c_octet(wire.max_size, wire.exact)
    if isinstance(wire, SmOctets):
        return st.binary(max_size=wire.max_size)
    return {"dest_addresses": dest_addresses, "unsuccess_smes": unsuccess_smes}[name]


def pdus_of(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    """Any valid instance of one PDU class."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        name: _field(wire, name) for name, wire in wire_layout(cls)
    }
    fields["sequence_number"] = u32
    fields["command_status"] = u32
    fields["tlvs"] = tlv_lists
    if "short_message" in fields:
        # message_payload replaces short_message: a PDU never carries both.
        fields["tlvs"] = tlv_lists.map(
            lambda tlvs: tuple(t for t in tlvs if t.tag != TlvTag.MESSAGE_PAYLOAD)
        )
    return st.builds(cls, **fields)


any_pdu = st.sampled_from(PDU_CLASSES).flatmap(pdus_of)
