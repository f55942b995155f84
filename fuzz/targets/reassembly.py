"""Reassembly: a Reassembler with small bounds fed a sequence of deliver_sm-like parts.

The parts (8/16-bit concatenation UDHs with fuzzed numbers, raw fuzzed UDHs, SAR TLVs with int
or octet values, message_payload, plain parts; any data_coding) and the clock come from a
FuzzedDataProvider; time only moves forward, as with a monotonic clock.

Oracles:
- feed raises only TextError (UdhError, UndecodableTextError, UnsupportedDataCodingError) and
  then holds no more groups or octets than before;
- after every feed: at most ``max_pending`` groups and ``max_pending_bytes`` octets are held,
  ``pending_bytes`` is the sum of the groups' sizes, no held group is complete, and
  ``next_deadline`` is None exactly when nothing is held;
- a returned message has one part per sequence number, ``total`` of them, and str text.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

from fuzz.targets import OracleError
from o2sms.smpp.constants import EsmClass, TlvTag
from o2sms.smpp.tlv import Tlv, TlvValue
from o2sms.text import RawPart, Reassembled, Reassembler, TextError, udh
from o2sms.text.reassembly import GROUP_OVERHEAD, _held_size

_CODINGS = (0, 1, 3, 8, 0xF0, 0xF4, 0x18, 4)
_SAR = (TlvTag.SAR_MSG_REF_NUM, TlvTag.SAR_TOTAL_SEGMENTS, TlvTag.SAR_SEGMENT_SEQNUM)


def _sar_value(fdp: atheris.FuzzedDataProvider) -> TlvValue:
    if fdp.ConsumeIntInRange(0, 3) == 0:
        return bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 3)))
    return int(fdp.ConsumeIntInRange(0, 6))


def _part(fdp: atheris.FuzzedDataProvider) -> RawPart:
    source = "ab"[fdp.ConsumeIntInRange(0, 1)]
    kind = fdp.ConsumeIntInRange(0, 4)
    coding_index = fdp.ConsumeIntInRange(0, len(_CODINGS))
    coding = (
        _CODINGS[coding_index] if coding_index < len(_CODINGS) else fdp.ConsumeIntInRange(0, 255)
    )
    esm_class = EsmClass.UDHI if kind in (0, 1, 2) else 0
    if fdp.ConsumeIntInRange(0, 7) == 0:
        esm_class = fdp.ConsumeIntInRange(0, 255)
    header = b""
    tlvs: list[Tlv] = []
    if kind in (0, 1):
        total = fdp.ConsumeIntInRange(1, 4)
        seq = fdp.ConsumeIntInRange(1, total)
        header = udh.build_concat(fdp.ConsumeIntInRange(0, 3), total, seq, ref16=kind == 1)
    elif kind == 3:
        tlvs = [Tlv(tag, _sar_value(fdp)) for tag in _SAR if fdp.ConsumeIntInRange(0, 7)]
    body = bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200)))
    user_data = header + body
    if fdp.ConsumeIntInRange(0, 5) == 0:
        payload: TlvValue = user_data
        if fdp.ConsumeIntInRange(0, 3) == 0:
            payload = 7 if fdp.ConsumeBool() else user_data.decode("latin-1")
        tlvs.append(Tlv(TlvTag.MESSAGE_PAYLOAD, payload))
        user_data = b""
    return RawPart(source, "c", user_data, esm_class, coding, tuple(tlvs))


def _check_bounds(r: Reassembler) -> None:
    groups = r._groups
    if len(r) > r.max_pending or r.pending_bytes > r.max_pending_bytes:
        raise OracleError(f"{len(r)} groups, {r.pending_bytes} octets held: over the bounds")
    if r.pending_bytes != sum(g.size for g in groups.values()) or r.pending_bytes < 0:
        raise OracleError(f"pending_bytes {r.pending_bytes} is not the sum of the groups' sizes")
    for key, group in groups.items():
        if not 0 < len(group.pieces) < group.total:
            raise OracleError(f"group {key!r} holds {len(group.pieces)} of {group.total} parts")
        charged = GROUP_OVERHEAD + sum(_held_size(p.part, p.body) for p in group.pieces.values())
        if group.size != charged:
            raise OracleError(f"group {key!r} size {group.size} is not the sum of its parts")
    if (r.next_deadline() is None) != (len(r) == 0):
        raise OracleError(f"next_deadline {r.next_deadline()} with {len(r)} groups held")


def _check_message(message: Reassembled) -> None:
    if not isinstance(message.text, str) or len(message.parts) != message.total >= 1:
        raise OracleError(f"message {message!r} has {len(message.parts)} parts")


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    r = Reassembler(
        timeout=float(fdp.ConsumeIntInRange(1, 100)),
        max_pending=fdp.ConsumeIntInRange(1, 6),
        max_pending_bytes=fdp.ConsumeIntInRange(1, 8_000),  # a part costs 512 + its data
        packed=fdp.ConsumeBool(),
        errors="replace" if fdp.ConsumeBool() else "strict",
    )
    now = 0.0
    evicted = 0
    for _ in range(32):
        if not fdp.remaining_bytes():
            break
        now += fdp.ConsumeIntInRange(0, 40)
        part = _part(fdp)
        r.expire(now)
        groups, size = len(r), r.pending_bytes
        try:
            message = r.feed(part, now)
        except TextError:
            if len(r) > groups or r.pending_bytes > size:
                raise OracleError(f"a part that raised was stored: {part!r}") from None
            message = None
        _check_bounds(r)
        if r.evicted < evicted:
            raise OracleError("the evicted counter went back")
        evicted = r.evicted
        if message is not None:
            _check_message(message)
