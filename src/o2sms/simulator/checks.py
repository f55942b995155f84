"""Values read from a configuration file, checked against the types their settings declare.

The simulator's settings are dataclasses filled from TOML or JSON; a value of the wrong type
(``receipt_delay = "0.5"``) must be refused when the file is loaded, with the key's name, not
fail later in every session.
"""

from __future__ import annotations

import types
import typing
from dataclasses import fields
from typing import Any

_SCALARS: dict[type, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
}


def scalar_types(cls: type) -> dict[str, tuple[type, bool]]:
    """Field name -> (its scalar type, None allowed) for the fields of dataclass ``cls``
    annotated ``bool``, ``int``, ``float`` or ``str`` (optionally ``| None``); others left out.
    """
    hints = typing.get_type_hints(cls)
    found: dict[str, tuple[type, bool]] = {}
    for f in fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        optional = type(None) in args
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1 and kinds[0] in _SCALARS:
            found[f.name] = (kinds[0], optional)
    return found


def checked(key: str, value: object, kind: type, optional: bool = False) -> Any:
    """``value`` as the ``kind`` a setting is annotated with, or ValueError naming ``key``.

    Values from a file are checked when it is loaded, not when they are first used: a
    ``receipt_delay = "0.5"`` would otherwise load and then fail in every session. An int
    is taken for a float (TOML writes ``2`` for 2.0); a bool is never taken for a number,
    nor a string for anything but a string.
    """
    if value is None and optional:
        return None
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, kind):
        return value
    expected = _SCALARS.get(kind, kind.__name__) + (" (or absent)" if optional else "")
    raise ValueError(f"{key} must be {expected}, got {value!r}")


__all__ = ["checked", "scalar_types"]
