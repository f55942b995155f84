"""UDH parser: ``udh.parse`` / ``split_user_data`` on arbitrary user data, ``build`` round trips.

Input: octet 0 picks the mode, the rest is user data (mode 0) or feeds a FuzzedDataProvider.

Oracles:
- parse raises only UdhError; a parsed header is ``1 + UDHL`` octets, ``build`` of its
  elements gives back exactly those octets, its concat is the last concatenation IE's with
  1 <= seq <= total (others are ignored, 23.040), split_user_data returns the rest, and the
  fill bits align a septet;
- build / build_concat either raise UdhError or write a header that parses to what was built.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

from fuzz.targets import OracleError
from o2sms.text import UdhError, udh


def _parse(user_data: bytes) -> None:
    try:
        header = udh.parse(user_data)
    except UdhError:
        return
    if header.length != 1 + user_data[0] or header.length > len(user_data):
        raise OracleError(f"header length {header.length} for UDHL {user_data[0]}")
    if udh.build(header.elements) != user_data[: header.length]:
        raise OracleError(f"build(parse(x)) != x for {user_data[: header.length].hex()}")
    concats = [
        e
        for e in header.elements
        if e.iei in (udh.IEI_CONCAT_8, udh.IEI_CONCAT_16) and 1 <= e.data[-1] <= e.data[-2]
    ]
    if (header.concat is None) != (not concats):
        raise OracleError(f"concat {header.concat!r} but concatenation IEs {concats!r}")
    if header.concat is not None:
        last = concats[-1]
        c = header.concat
        if c.ref16 != (last.iei == udh.IEI_CONCAT_16) or not 1 <= c.seq <= c.total <= 255:
            raise OracleError(f"concat {c!r} from IE {last!r}")
        if c.reference != int.from_bytes(last.data[: 2 if c.ref16 else 1], "big"):
            raise OracleError(f"concat reference {c.reference} from IE {last!r}")
    every_concat = [e for e in header.elements if e.iei in (udh.IEI_CONCAT_8, udh.IEI_CONCAT_16)]
    if len(header.other_elements) != len(header.elements) - len(every_concat):
        raise OracleError("other_elements miscounted")
    again, rest = udh.split_user_data(user_data)
    if again != header or rest != user_data[header.length :]:
        raise OracleError("split_user_data disagrees with parse")
    fill = udh.fill_bits(header.length)
    if not 0 <= fill < 7 or (header.length * 8 + fill) % 7:
        raise OracleError(f"fill_bits({header.length}) = {fill}")
    if udh.header_septets(header.length) * 7 != header.length * 8 + fill:
        raise OracleError(f"header_septets({header.length}) wrong")


def _build_concat(fdp: atheris.FuzzedDataProvider) -> None:
    reference = fdp.ConsumeIntInRange(-1, 0x10000)
    total = fdp.ConsumeIntInRange(-1, 256)
    seq = fdp.ConsumeIntInRange(-1, 256)
    ref16 = fdp.ConsumeBool()
    try:
        header = udh.build_concat(reference, total, seq, ref16=ref16)
    except UdhError:
        return
    parsed = udh.parse(header + bytes(fdp.ConsumeBytes(fdp.remaining_bytes())))
    want = udh.Concat(reference, total, seq, ref16)
    length = udh.CONCAT_16_LENGTH if ref16 else udh.CONCAT_8_LENGTH
    if parsed.concat != want or parsed.length != length or parsed.other_elements:
        raise OracleError(f"build_concat{(reference, total, seq, ref16)} parsed as {parsed!r}")


def _build(fdp: atheris.FuzzedDataProvider) -> None:
    elements = [
        udh.InformationElement(
            fdp.ConsumeIntInRange(-1, 256), bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 260)))
        )
        for _ in range(fdp.ConsumeIntInRange(0, 6))
    ]
    try:
        header = udh.build(elements)
    except UdhError:
        return
    try:
        parsed = udh.parse(header)
    except UdhError as exc:
        if any(e.iei in (udh.IEI_CONCAT_8, udh.IEI_CONCAT_16) for e in elements):
            return  # a concatenation IE with bad contents: build does not check those
        raise OracleError(
            f"build({elements!r}) wrote {header.hex()}, which does not parse"
        ) from exc
    if list(parsed.elements) != elements or parsed.length != len(header):
        raise OracleError(f"build({elements!r}) parsed as {parsed!r}")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 3, data[1:]
    if mode == 0:
        _parse(rest)
    elif mode == 1:
        _build_concat(atheris.FuzzedDataProvider(rest))
    else:
        _build(atheris.FuzzedDataProvider(rest))
