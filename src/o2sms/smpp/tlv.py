"""TLV (optional parameter) values; full codec added next."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tlv:
    """One optional parameter: its tag and its value (int, str or bytes by the tag's type)."""

    tag: int
    value: int | str | bytes
