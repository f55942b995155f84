"""A faster ``__init__`` for the frozen, slotted dataclasses built once or more per message.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``,
which about doubles the cost of building the object; the one :func:`fast_init` installs fills
the slots through their descriptors instead. Same signature, defaults and result.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["fast_init"]

T = TypeVar("T")


def fast_init(cls: type[T], *, keyword_only: bool = False) -> type[T]:
    """Give dataclass ``cls`` an ``__init__`` that fills its slots directly; return ``cls``.

    ``keyword_only`` makes every parameter keyword-only (the PDU classes). Refuses classes the
    shortcut would change: a ``__post_init__``, ``default_factory`` or ``init=False`` field.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__: fast_init would skip it")
    namespace: dict[str, Any] = {}
    params = ["*"] if keyword_only else []
    body = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # checked by dataclasses
        if f.default_factory is not dataclasses.MISSING or not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init takes plain fields only")
        if f.kw_only and "*" not in params:
            params.append("*")
        namespace[f"_s_{f.name}"] = getattr(cls, f.name).__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
        body.append(f"    _s_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"])
    exec(compile(source + "\n", f"<o2sms fast_init {cls.__name__}>", "exec"), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 - replacing a method the type checker knows
    return cls
