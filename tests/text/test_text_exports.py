"""The package surface and its import rules: curated __all__, sans-IO, inward-only imports."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import o2sms.errors
import o2sms.text
import o2sms.text.errors

PACKAGE = Path(o2sms.text.__file__).parent
# A module may import only the modules listed before it (architecture.md, "Imports only go inward").
LAYERS = ["errors", "gsm0338", "ucs2", "translit", "encoding", "udh", "split", "reassembly"]
ALLOWED_OUTSIDE = {"o2sms.errors", "o2sms.fastinit", "o2sms.smpp.constants", "o2sms.smpp.tlv"}
FORBIDDEN_STDLIB = {"asyncio", "socket", "ssl", "selectors", "threading", "time", "random"}


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete() -> None:
    exported = o2sms.text.__all__
    assert exported == sorted(exported, key=_isort_key)
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(o2sms.text, name), name
    public = {
        n
        for n, v in vars(o2sms.text).items()
        if not n.startswith("_") and not (inspect.ismodule(v) and n != "udh")
    }
    assert public - {"annotations"} == set(exported)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "o2sms.text":
                found.update(f"o2sms.text.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def test_modules_import_only_what_the_layers_allow() -> None:
    files = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert sorted(LAYERS) == files
    for index, stem in enumerate(LAYERS):
        for name in _imports(PACKAGE / f"{stem}.py"):
            top = name.split(".")[0]
            if top == "__future__":
                continue
            if top != "o2sms":
                assert top in sys.stdlib_module_names, (stem, name)
                assert top not in FORBIDDEN_STDLIB, (stem, name)
            elif name.startswith("o2sms.text."):
                inner = name.split(".")[2]
                assert inner in LAYERS[:index], f"{stem} may not import {inner}"
            else:
                assert name in ALLOWED_OUTSIDE, (stem, name)


def test_error_tree_is_documented() -> None:
    doc = o2sms.errors.__doc__ or ""
    for name, value in vars(o2sms.text.errors).items():
        if inspect.isclass(value) and issubclass(value, o2sms.text.errors.TextError):
            assert f"o2sms.text.{name}" in doc, name
            assert issubclass(value, ValueError)
            assert issubclass(value, o2sms.errors.O2smsError)
