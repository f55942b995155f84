"""Encode PDUs to bytes and decode frames to PDUs.

The encoder and decoder of each PDU class are generated once, at import, from the class's
annotated field list (:mod:`o2sms.smpp.pdu`), the way :mod:`dataclasses` generates ``__init__``:
the hot path then runs straight-line code with no per-field dispatch.

Decoding is strict, but for the string lengths of responses (below). Every way a frame can be
wrong raises :class:`PduError` carrying the command_status to answer with:

=============================================  ===========================
problem                                        command_status
=============================================  ===========================
frame shorter than 16 octets, command_length   ESME_RINVCMDLEN
differs from the frame, body truncated, a
C-Octet string running into the end of the
PDU
unknown command_id                             ESME_RINVCMDID
C-Octet string of a request over its maximum   the field's own status (ESME_RINVSRCADR for
length, or a request's time not 16 characters  source_addr, ESME_RINVSYSID, ESME_RINVPASWD,
                                               ESME_RINVSCHED, ...), else ESME_RINVCMDLEN
sm_length over 254 or past the end of the PDU  ESME_RINVMSGLEN
number_of_dests 0 or 255, no_unsuccess 255     ESME_RINVNUMDESTS
TLV header or value running past the PDU,     ESME_RINVOPTPARSTREAM
stray octets after the last field or TLV
known TLV with a non-zero length its type      ESME_RINVPARLEN
forbids (length 0 is legal: a TLV whose type
cannot be empty is then left out, as absent)
=============================================  ===========================

Responses are read leniently ("be liberal in what you accept"): the C-Octet strings of a
response (the system_id of a bind_*_resp, the message_id of submit_sm_resp, data_sm_resp,
query_sm_resp and submit_multi_resp, query_sm_resp's final_date, submit_multi_resp's
destination_addr) are read up to their NUL whatever their length, since SMSCs do send longer
values than SMPP 3.4 allows, and refusing them would lose a bind or an accepted message's id.
So are a response's C-Octet string TLVs, and receipted_message_id in any PDU (a receipt).
Only a string with no NUL before the end of the PDU is an error. Encoding stays strict: such a
decoded response does not encode again (PduEncodeError). A response's known TLV with a length
its type forbids, or a C-Octet string TLV with a NUL inside, is left out instead of failing it,
and a TLV section that breaks off ends there, the TLVs before it kept (requests:
ESME_RINVPARLEN and ESME_RINVOPTPARSTREAM, above).

A response with an error command_status never fails to decode: whatever of its body cannot be
read takes default values, so the status (and message_id when present) is never lost. A
header-only deliver_sm_resp decodes with message_id "" whatever its status: the field is unused
in SMPP 3.4 and many ESMEs leave it out. submit_sm_resp and the others with status 0 need their
body.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from collections.abc import Callable
from typing import Any, Final

from o2sms.smpp import pdu as _pdu
from o2sms.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus, TlvTag
from o2sms.smpp.errors import PduEncodeError, PduError
from o2sms.smpp.pdu import (
    PDU_CLASSES,
    DistributionList,
    Pdu,
    SmeAddress,
    UnsuccessSme,
)
from o2sms.smpp.tlv import Tlv, decode_tlvs, encode_tlvs
from o2sms.smpp.wire import COctet, Custom, Int, SmOctets

HEADER: Final = struct.Struct(">IIII")
"""command_length, command_id, command_status, sequence_number."""
HEADER_SIZE: Final = 16

_S = CommandStatus
_WireType = Int | COctet | SmOctets | Custom

Encoder = Callable[[Any], bytes]
Decoder = Callable[[bytes, int, int], Pdu]


# --- errors raised from generated code -------------------------------------------------


def _truncated(field: str) -> PduError:
    return PduError(f"PDU body ends inside {field}", command_status=_S.ESME_RINVCMDLEN)


def _bad_cstring(data: bytes, pos: int, max_size: int, field: str, status: int) -> PduError:
    if pos + max_size > len(data):
        return PduError(
            f"{field} has no terminating NUL before the end of the PDU",
            command_status=_S.ESME_RINVCMDLEN,
        )
    return PduError(
        f"{field} is longer than its maximum of {max_size - 1} characters", command_status=status
    )


def _bad_time(field: str, value: str, status: int) -> PduError:
    return PduError(f"{field} must be empty or 16 characters, got {value!r}", command_status=status)


def _bad_sm_length(length: int, remaining: int) -> PduError:
    return PduError(
        f"sm_length {length} is over 254 or past the {remaining} octets left in the PDU",
        command_status=_S.ESME_RINVMSGLEN,
    )


_MESSAGE_PAYLOAD: Final = int(TlvTag.MESSAGE_PAYLOAD)  # reading it off TlvTag is slow on 3.11


def _has_payload(tlvs: tuple[Tlv, ...]) -> bool:
    for tlv in tlvs:  # noqa: SIM110 - about three times as fast as any() over a generator
        if tlv.tag == _MESSAGE_PAYLOAD:
            return True
    return False


def _encode_error_both() -> None:
    raise PduEncodeError(
        "short_message and the message_payload TLV are both set: send the text in one of them"
    )


def _encode_error_cstring(field: str, value: object, max_size: int, exact: int | None) -> None:
    if field == "password":
        value = "<hidden>"  # an error message must never carry a credential
    if exact is not None:
        raise PduEncodeError(f"{field} must be empty or {exact} characters, got {value!r}")
    raise PduEncodeError(
        f"{field} must be at most {max_size - 1} characters without NUL, got {value!r}"
    )


def _encode_error_sm(length: int, max_size: int) -> None:
    raise PduEncodeError(
        f"short_message is {length} octets, over {max_size}: split the text or use message_payload"
    )


# --- structured fields of submit_multi ---------------------------------------------------


def _cstr(value: str, max_size: int, field: str) -> bytes:
    raw = value.encode("latin-1")
    if len(raw) >= max_size or b"\0" in raw:
        _encode_error_cstring(field, value, max_size, None)
    return raw + b"\0"


def _read_cstr(data: bytes, pos: int, max_size: int, field: str, status: int) -> tuple[str, int]:
    nul = data.find(b"\0", pos, pos + max_size)
    if nul < 0:
        raise _bad_cstring(data, pos, max_size, field, status)
    return data[pos:nul].decode("latin-1"), nul + 1


def _need(data: bytes, pos: int, count: int, field: str) -> None:
    if pos + count > len(data):
        raise _truncated(field)


def _ton_npi(ton: int, npi: int) -> bytes:
    """dest_addr_ton and dest_addr_npi, one octet each (an out-of-range value is PduEncodeError)."""
    try:
        return bytes((ton, npi))
    except (TypeError, ValueError):
        raise PduEncodeError(
            f"dest_addr_ton {ton!r} and dest_addr_npi {npi!r} must be integers 0..255"
        ) from None


def encode_dest_addresses(dests: tuple[SmeAddress | DistributionList, ...]) -> bytes:
    """number_of_dests then each dest_address of submit_multi."""
    if not 1 <= len(dests) <= 254:
        raise PduEncodeError(f"submit_multi takes 1..254 destinations, got {len(dests)}")
    out = [bytes((len(dests),))]
    for dest in dests:
        if isinstance(dest, SmeAddress):
            out.append(b"\x01" + _ton_npi(dest.dest_addr_ton, dest.dest_addr_npi))
            out.append(_cstr(dest.destination_addr, 21, "destination_addr"))
        else:
            out.append(b"\x02")
            out.append(_cstr(dest.dl_name, 21, "dl_name"))
    return b"".join(out)


def decode_dest_addresses(
    data: bytes, pos: int
) -> tuple[tuple[SmeAddress | DistributionList, ...], int]:
    """Inverse of :func:`encode_dest_addresses`."""
    _need(data, pos, 1, "number_of_dests")
    count = data[pos]
    pos += 1
    if not 1 <= count <= 254:  # 254 at most (SMPP 3.4 4.5.1), as encode_dest_addresses
        raise PduError(
            f"number_of_dests is {count}, not 1..254", command_status=_S.ESME_RINVNUMDESTS
        )
    dests: list[SmeAddress | DistributionList] = []
    for _ in range(count):
        _need(data, pos, 1, "dest_flag")
        flag = data[pos]
        pos += 1
        if flag == 1:
            _need(data, pos, 2, "dest_address")
            ton, npi = data[pos], data[pos + 1]
            addr, pos = _read_cstr(data, pos + 2, 21, "destination_addr", _S.ESME_RINVDSTADR)
            dests.append(SmeAddress(ton, npi, addr))
        elif flag == 2:
            name, pos = _read_cstr(data, pos, 21, "dl_name", _S.ESME_RINVDLNAME)
            dests.append(DistributionList(name))
        else:
            raise PduError(
                f"dest_flag {flag} is neither 1 nor 2", command_status=_S.ESME_RINVDESTFLAG
            )
    return tuple(dests), pos


_UNSUCCESS_TAIL = struct.Struct(">I")


def encode_unsuccess_smes(smes: tuple[UnsuccessSme, ...]) -> bytes:
    """no_unsuccess then each unsuccess_sme of submit_multi_resp."""
    if len(smes) > 254:
        raise PduEncodeError(f"submit_multi_resp takes at most 254 unsuccess_smes, got {len(smes)}")
    out = [bytes((len(smes),))]
    for sme in smes:
        out.append(_ton_npi(sme.dest_addr_ton, sme.dest_addr_npi))
        out.append(_cstr(sme.destination_addr, 21, "destination_addr"))
        out.append(_UNSUCCESS_TAIL.pack(sme.error_status_code))
    return b"".join(out)


def decode_unsuccess_smes(data: bytes, pos: int) -> tuple[tuple[UnsuccessSme, ...], int]:
    """Inverse of :func:`encode_unsuccess_smes`."""
    _need(data, pos, 1, "no_unsuccess")
    count = data[pos]
    pos += 1
    if count > 254:  # one per destination at most, as encode_unsuccess_smes
        raise PduError(f"no_unsuccess is {count}, over 254", command_status=_S.ESME_RINVNUMDESTS)
    smes: list[UnsuccessSme] = []
    for _ in range(count):
        _need(data, pos, 2, "unsuccess_sme")
        ton, npi = data[pos], data[pos + 1]
        # A response: the address is read up to its NUL however long, as any response string.
        room = len(data) - pos - 1
        addr, pos = _read_cstr(data, pos + 2, room, "destination_addr", _S.ESME_RINVDSTADR)
        _need(data, pos, 4, "error_status_code")
        (code,) = _UNSUCCESS_TAIL.unpack_from(data, pos)
        pos += 4
        smes.append(UnsuccessSme(ton, npi, addr, code))
    return tuple(smes), pos


# --- code generation ---------------------------------------------------------------------


def wire_layout(cls: type[Pdu]) -> list[tuple[str, _WireType]]:
    """The mandatory fields of a PDU class in wire order, with their wire types."""
    hints = typing.get_type_hints(cls, vars(_pdu), include_extras=True)
    layout: list[tuple[str, _WireType]] = []
    for f in dataclasses.fields(cls):
        wire = [m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, _WireType)]
        if wire:
            layout.append((f.name, wire[0]))
    return layout


_STRUCT_CODES = {1: "B", 2: "H", 4: "I"}

_BODY_OPTIONAL: Final = frozenset({CommandId.DELIVER_SM_RESP})
"""Responses decoded header-only even with command_status 0: their body says nothing used."""


class _Generator:
    """Writes the source of one PDU class's encoder and decoder."""

    def __init__(self, cls: type[Pdu]) -> None:
        self.cls = cls
        self.layout = wire_layout(cls)
        self.ns: dict[str, Any] = {
            "_H": HEADER,
            "_new": object.__new__,
            "_cid": int(cls.command_id),
            "_cls": cls,
            "_truncated": _truncated,
            "_bad_cstring": _bad_cstring,
            "_bad_time": _bad_time,
            "_bad_sm_length": _bad_sm_length,
            "_has_payload": _has_payload,
            "_enc_both": _encode_error_both,
            "_enc_cstring": _encode_error_cstring,
            "_enc_sm": _encode_error_sm,
            "_enc_tlvs": encode_tlvs,
            "_dec_tlvs": decode_tlvs,
            "encode_dest_addresses": encode_dest_addresses,
            "decode_dest_addresses": decode_dest_addresses,
            "encode_unsuccess_smes": encode_unsuccess_smes,
            "decode_unsuccess_smes": decode_unsuccess_smes,
        }
        self._structs = 0

    def _struct(self, codes: list[str]) -> str:
        name = f"_s{self._structs}"
        self._structs += 1
        self.ns[name] = struct.Struct(">" + "".join(codes))
        return name

    def _compile(self, source: str, name: str) -> Any:
        exec(compile(source, f"<o2sms.smpp.codec {self.cls.__name__}.{name}>", "exec"), self.ns)
        return self.ns[name]

    def encoder(self) -> Encoder:
        lines = ["def encode(pdu):"]
        pieces: list[str] = []
        ints: list[tuple[str, str]] = []  # (struct code, expression)

        def flush() -> None:
            if ints:
                packer = self._struct([code for code, _ in ints])
                pieces.append(f"{packer}.pack({', '.join(expr for _, expr in ints)})")
                ints.clear()

        for name, wire in self.layout:
            var = f"v_{name}"
            if isinstance(wire, Int):
                ints.append((_STRUCT_CODES[wire.size], f"pdu.{name}"))
            elif isinstance(wire, COctet):
                flush()
                if wire.exact is None:
                    bad = f"len({var}) >= {wire.max_size}"
                else:
                    bad = f"(len({var}) != {wire.exact} and {var})"
                lines += [
                    f"    {var} = pdu.{name}.encode('latin-1')",
                    f"    if {bad} or 0 in {var}:",
                    f"        _enc_cstring({name!r}, pdu.{name}, {wire.max_size}, {wire.exact!r})",
                ]
                pieces += [var, "b'\\0'"]
            elif isinstance(wire, SmOctets):
                lines += [
                    f"    {var} = pdu.{name}",
                    f"    if len({var}) > {wire.max_size}:",
                    f"        _enc_sm(len({var}), {wire.max_size})",
                ]
                ints.append(("B", f"len({var})"))
                flush()
                pieces.append(var)
            else:
                flush()
                pieces.append(f"{wire.encode}(pdu.{name})")
        flush()
        pieces.append("(_enc_tlvs(pdu.tlvs) if pdu.tlvs else b'')")
        if any(isinstance(wire, SmOctets) for _, wire in self.layout):
            # SMPP 3.4 5.3.2.32: message_payload replaces short_message, never both.
            lines += [
                "    if v_short_message and pdu.tlvs and _has_payload(pdu.tlvs):",
                "        _enc_both()",
            ]
        header = "_H.pack({size}, _cid, pdu.command_status, pdu.sequence_number)"
        if self.layout and self.cls.command_id & RESPONSE_BIT:
            # SMPP 3.4: a response with an error status carries no body (when it has nothing to say).
            defaults = [f"pdu.{name} == _d_{name}" for name, _ in self.layout]
            for f in dataclasses.fields(self.cls):
                self.ns[f"_d_{f.name}"] = f.default
            defaults.append("not pdu.tlvs")
            lines.insert(1, f"    if pdu.command_status and {' and '.join(defaults)}:")
            lines.insert(2, f"        return {header.format(size=16)}")
        if pieces:
            lines.append(f"    body = b''.join(({', '.join(pieces)},))")
            lines.append(f"    return {header.format(size='16 + len(body)')} + body")
        else:
            lines.append(f"    return {header.format(size=16)}")
        return typing.cast(Encoder, self._compile("\n".join(lines), "encode"))

    def decoder(self) -> Decoder:
        lines = ["def decode(data, seq, status):", "    pos = 16", "    end = len(data)"]
        lenient = bool(self.cls.command_id & RESPONSE_BIT)
        if self.layout and lenient:
            # Body-on-error rule: an error response may come header-only. deliver_sm_resp may
            # whatever its status, as its only field, message_id, is unused (SMPP 3.4 4.6.2).
            test = (
                "pos == end" if self.cls.command_id in _BODY_OPTIONAL else "status and pos == end"
            )
            lines += [
                f"    if {test}:",
                "        return _cls(sequence_number=seq, command_status=status)",
            ]
        ints: list[tuple[str, str]] = []  # (struct code, field name)

        def flush() -> None:
            if not ints:
                return
            size = struct.calcsize(">" + "".join(code for code, _ in ints))
            lines.append(f"    if pos + {size} > end:")
            lines.append(f"        raise _truncated({ints[0][1]!r})")
            if len(ints) == 1 and ints[0][0] == "B":
                lines.append(f"    {ints[0][1]} = data[pos]")
            else:
                unpacker = self._struct([code for code, _ in ints])
                names = ", ".join(name for _, name in ints)
                lines.append(f"    {names}, = {unpacker}.unpack_from(data, pos)")
            lines.append(f"    pos += {size}")
            ints.clear()

        for name, wire in self.layout:
            if isinstance(wire, Int):
                ints.append((_STRUCT_CODES[wire.size], name))
                continue
            flush()
            if isinstance(wire, COctet) and lenient:
                # A response's string is read up to its NUL, however long (module docstring).
                general = [
                    "nul = data.find(b'\\0', pos)",
                    "if nul < 0:",
                    f"    raise _bad_cstring(data, pos, end - pos + 1, {name!r}, {wire.status})",
                    f"{name} = data[pos:nul].decode('latin-1')",
                    "pos = nul + 1",
                ]
                lines += [
                    "    if pos < end and data[pos] == 0:",
                    f"        {name} = ''",
                    "        pos += 1",
                    "    else:",
                    *(f"        {line}" for line in general),
                ]
            elif isinstance(wire, COctet):
                general = [
                    f"nul = data.find(b'\\0', pos, pos + {wire.max_size})",
                    "if nul < 0:",
                    f"    raise _bad_cstring(data, pos, {wire.max_size}, {name!r}, {wire.status})",
                    f"{name} = data[pos:nul].decode('latin-1')",
                ]
                if wire.exact is not None:
                    general += [
                        f"if nul - pos != {wire.exact}:",
                        f"    raise _bad_time({name!r}, {name}, {wire.status})",
                    ]
                general.append("pos = nul + 1")
                # Most of these strings are empty on the wire; one octet test settles those.
                lines += [
                    "    if pos < end and data[pos] == 0:",
                    f"        {name} = ''",
                    "        pos += 1",
                    "    else:",
                    *(f"        {line}" for line in general),
                ]
            elif isinstance(wire, SmOctets):
                lines += [
                    "    if pos >= end:",
                    "        raise _truncated('sm_length')",
                    "    sm_length = data[pos]",
                    "    pos += 1",
                    f"    if sm_length > {wire.max_size} or pos + sm_length > end:",
                    "        raise _bad_sm_length(sm_length, end - pos)",
                    f"    {name} = data[pos:pos + sm_length]",
                    "    pos += sm_length",
                ]
            else:
                lines.append(f"    {name}, pos = {wire.decode}(data, pos)")
        flush()
        lenient_tlvs = ", True" if lenient else ""  # a response's TLV strings, as its fields
        lines.append(f"    tlvs = _dec_tlvs(data, pos, end{lenient_tlvs}) if pos < end else ()")
        # Every field is known here, so fill the slots directly: a frozen dataclass's __init__
        # costs twice as much through its per-field object.__setattr__ calls.
        lines.append("    pdu = _new(_cls)")
        values = {"sequence_number": "seq", "command_status": "status", "tlvs": "tlvs"}
        for f in dataclasses.fields(self.cls):
            self.ns[f"_set_{f.name}"] = getattr(self.cls, f.name).__set__
            lines.append(f"    _set_{f.name}(pdu, {values.get(f.name, f.name)})")
        lines.append("    return pdu")
        return typing.cast(Decoder, self._compile("\n".join(lines), "decode"))

    def renumberer(self) -> Callable[[Any, int], Pdu]:
        """A copy of a PDU with another sequence_number, filling slots like the decoder does."""
        lines = ["def renumber(pdu, seq):", "    new = _new(_cls)"]
        for f in dataclasses.fields(self.cls):
            self.ns[f"_set_{f.name}"] = getattr(self.cls, f.name).__set__
            value = "seq" if f.name == "sequence_number" else f"pdu.{f.name}"
            lines.append(f"    _set_{f.name}(new, {value})")
        lines.append("    return new")
        return typing.cast(Callable[[Any, int], Pdu], self._compile("\n".join(lines), "renumber"))


_ENCODERS: dict[type[Pdu], Encoder] = {}
_DECODERS: dict[int, Decoder] = {}
_RENUMBER: dict[type[Pdu], Callable[[Any, int], Pdu]] = {}
_CLASSES: dict[int, type[Pdu]] = {}
_LAYOUTS: dict[type[Pdu], list[tuple[str, _WireType]]] = {}
for _cls in PDU_CLASSES:
    _CLASSES[int(_cls.command_id)] = _cls
    _LAYOUTS[_cls] = wire_layout(_cls)
    _gen = _Generator(_cls)
    _ENCODERS[_cls] = _gen.encoder()
    _DECODERS[int(_cls.command_id)] = _gen.decoder()
    _RENUMBER[_cls] = _gen.renumberer()
del _cls, _gen


def with_sequence_number(pdu: Pdu, sequence_number: int) -> Pdu:
    """``pdu`` numbered ``sequence_number``: a fast copy for the send path of a session."""
    return _RENUMBER[type(pdu)](pdu, sequence_number)


# --- public API ----------------------------------------------------------------------


def encode(pdu: Pdu) -> bytes:
    """The wire bytes of a PDU, header included; raises PduEncodeError for values off the spec."""
    try:
        encoder = _ENCODERS[type(pdu)]
    except KeyError:
        raise PduEncodeError(f"{type(pdu).__name__} is not an SMPP PDU class") from None
    try:
        return encoder(pdu)
    except PduEncodeError:
        raise
    except UnicodeEncodeError:
        problem = _unencodable(pdu)  # raised below, outside: no context keeping the value
    except (struct.error, AttributeError, TypeError, ValueError, OverflowError) as exc:
        # ValueError covers any value check a helper leaves to Python.
        raise PduEncodeError(f"cannot encode {type(pdu).__name__}: {exc}") from exc
    raise PduEncodeError(problem)


def _unencodable(pdu: Pdu) -> str:
    """Which text field of ``pdu`` has a character its Latin-1 octets cannot carry, and
    which character, but never a character of the password."""
    found = _unencodable_in(pdu, "")
    if found is None:
        return f"cannot encode {type(pdu).__name__}: a text has a character outside Latin-1"
    field, char = found
    if field == "password":
        return f"cannot encode {type(pdu).__name__}: the password has a character outside Latin-1"
    return f"cannot encode {type(pdu).__name__}: {field} has {char!r}, a character outside Latin-1"


def _unencodable_in(value: object, path: str) -> tuple[str, str] | None:
    """``(field path, character)`` of the first text in ``value`` Latin-1 cannot carry."""
    if isinstance(value, str):
        try:
            value.encode("latin-1")
        except UnicodeEncodeError as exc:
            return path, value[exc.start]
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if (found := _unencodable_in(item, f"{path}[{index}]")) is not None:
                return found
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            name = f"{path}.{field.name}" if path else field.name
            if (found := _unencodable_in(getattr(value, field.name), name)) is not None:
                return found
    return None


def decode(frame: bytes) -> Pdu:
    """The PDU in one whole frame (as cut by :class:`Framer`); strict, raises only PduError."""
    if len(frame) < HEADER_SIZE:
        raise PduError(
            f"frame of {len(frame)} octets is shorter than the 16-octet header",
            command_status=_S.ESME_RINVCMDLEN,
        )
    command_length, command_id, command_status, sequence_number = HEADER.unpack_from(frame)
    if command_length != len(frame):
        raise PduError(
            f"command_length {command_length} differs from the frame's {len(frame)} octets",
            command_status=_S.ESME_RINVCMDLEN,
            sequence_number=sequence_number,
            command_id=command_id,
        )
    if type(frame) is not bytes:
        frame = bytes(frame)
    return decode_body(frame, command_id, command_status, sequence_number)


def decode_body(frame: bytes, command_id: int, command_status: int, sequence_number: int) -> Pdu:
    """Decode a frame whose header was already read and whose length was already checked.

    The framer's fast path; everyone else calls :func:`decode`.
    """
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        raise PduError(
            f"unknown command_id 0x{command_id:08X}",
            command_status=_S.ESME_RINVCMDID,
            sequence_number=sequence_number,
            command_id=command_id,
        )
    try:
        return decoder(frame, sequence_number, command_status)
    except PduError as exc:
        if command_status and command_id & RESPONSE_BIT:
            return _error_response(frame, command_id, command_status, sequence_number)
        exc.sequence_number = sequence_number
        exc.command_id = command_id
        raise


def _error_response(
    frame: bytes, command_id: int, command_status: int, sequence_number: int
) -> Pdu:
    """An error response whose body is partial: keep its status, and its first string if any.

    SMSCs differ in what they put after an error status (nothing, an empty message_id, half a
    body); the status is what matters, so it is never lost to a decoding error.
    """
    cls = _CLASSES[command_id]
    fields: dict[str, Any] = {}
    layout = _LAYOUTS[cls]
    if layout and isinstance(layout[0][1], COctet):
        nul = frame.find(b"\0", HEADER_SIZE)  # however long, as decoding any response
        if nul >= 0:
            fields[layout[0][0]] = frame[HEADER_SIZE:nul].decode("latin-1")
    return cls(sequence_number=sequence_number, command_status=command_status, **fields)
