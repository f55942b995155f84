"""Decoder: ``codec.decode`` on arbitrary frames, with a round-trip oracle.

Input: octet 0 bit 0 says to overwrite command_length with the frame's real length (to get
past the length check into the body decoders); the rest is the frame.

Oracles:
- decode raises only PduError with a command_status > 0, whose message renders;
- a decoded PDU carries the header's command_id, command_status and sequence_number;
- what decodes re-encodes (no PduEncodeError; the exceptions: short_message together with
  a message_payload TLV decodes, leniently, and encode refuses it, as documented; so does a
  response whose C-Octet string (field or TLV) is over its maximum, since responses are read
  leniently, and a receipted_message_id over 64 characters in any PDU), the
  encoding decodes to an equal PDU, and encoding that again gives the same octets (a fixed
  point after one round).
"""

from __future__ import annotations

from fuzz.targets import OracleError
from o2sms.smpp import FramingError, Pdu, PduEncodeError, PduError, TlvTag, decode, encode
from o2sms.smpp.constants import RESPONSE_BIT


def _both_texts(pdu: Pdu) -> bool:
    return bool(getattr(pdu, "short_message", b"")) and any(
        tlv.tag == TlvTag.MESSAGE_PAYLOAD for tlv in pdu.tlvs
    )


def _over_maximum(exc: PduEncodeError) -> bool:
    """True when encode refused a string for its length (the codec's own wording)."""
    text = str(exc)
    return "must be at most" in text or "must be empty or" in text or "takes at most" in text


def test_one_input(data: bytes) -> None:
    if not data:
        return
    frame = data[1:]
    if data[0] & 1 and len(frame) >= 4:
        frame = len(frame).to_bytes(4, "big") + frame[4:]
    try:
        pdu = decode(frame)
    except FramingError as exc:
        raise OracleError(f"decode raised FramingError {exc!r}") from exc
    except PduError as exc:
        if not exc.command_status > 0:
            raise OracleError(f"PduError with command_status {exc.command_status}") from exc
        str(exc)
        return
    header = tuple(int.from_bytes(frame[i : i + 4], "big") for i in (4, 8, 12))
    if (type(pdu).command_id, pdu.command_status, pdu.sequence_number) != header:
        raise OracleError(f"{pdu!r} does not carry the header {header!r}")
    if _both_texts(pdu):
        # Decoding is lenient here (an SMSC's receipt may carry both; the simulator answers a
        # submit with both ESME_RINVMSGLEN), encoding is not: SMPP 3.4 5.3.2.32.
        try:
            encode(pdu)
        except PduEncodeError as exc:
            if "both" in str(exc):
                return
        raise OracleError(f"encode({pdu!r}) did not refuse short_message with message_payload")
    try:
        wire = encode(pdu)
    except PduEncodeError as exc:
        lenient = type(pdu).command_id & RESPONSE_BIT or "receipted_message_id" in str(exc)
        if lenient and _over_maximum(exc):
            return  # a response (and a receipt's id) is decoded leniently, encoded strictly
        raise OracleError(
            f"decoded {pdu!r} from {frame.hex()} but cannot encode it: {exc}"
        ) from exc
    if int.from_bytes(wire[:4], "big") != len(wire):
        raise OracleError(f"encode({pdu!r}) wrote a wrong command_length")
    again = decode(wire)
    if again != pdu:
        raise OracleError(f"round trip changed the PDU: {pdu!r} -> {wire.hex()} -> {again!r}")
    if encode(again) != wire:
        raise OracleError(f"encoding is not stable for {pdu!r}")
