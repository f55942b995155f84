"""Sans-IO SMS text: GSM 03.38 / Latin-1 / UCS-2 encoding, length planning, splitting, reassembly.

Nothing here does I/O or reads a clock: what needs time takes ``now``. Typical use::

    parts = split("Ahoj, ako sa máš?")            # list[Part] for submit_sm
    info = plan("Čau", transliterate=False)        # info.encoding, info.parts, info.remaining
    message = reassembler.feed(deliver_sm, now)    # Reassembled | None
"""

from __future__ import annotations

from o2sms.text import udh
from o2sms.text.encoding import (
    MAX_PARTS,
    Encoding,
    Plan,
    SplitMethod,
    choose_encoding,
    data_coding_for,
    decode,
    encode,
    encoding_for_data_coding,
    is_gsm7,
    plan,
    transliterate,
)
from o2sms.text.errors import (
    MessageTooLongError,
    TextError,
    UdhError,
    UndecodableTextError,
    UnencodableTextError,
    UnsupportedDataCodingError,
)
from o2sms.text.reassembly import GroupKey, InboundPart, RawPart, Reassembled, Reassembler
from o2sms.text.split import Part, concat_reference, next_reference, split

__all__ = [
    "MAX_PARTS",
    "Encoding",
    "GroupKey",
    "InboundPart",
    "MessageTooLongError",
    "Part",
    "Plan",
    "RawPart",
    "Reassembled",
    "Reassembler",
    "SplitMethod",
    "TextError",
    "UdhError",
    "UndecodableTextError",
    "UnencodableTextError",
    "UnsupportedDataCodingError",
    "choose_encoding",
    "concat_reference",
    "data_coding_for",
    "decode",
    "encode",
    "encoding_for_data_coding",
    "is_gsm7",
    "next_reference",
    "plan",
    "split",
    "transliterate",
    "udh",
]
