"""``python -m fuzz <target> [libFuzzer options] [corpus dirs or crash files]``.

Targets: framer, decode, receipts, udh, reassembly (``python -m fuzz list``). Without a corpus
directory the run grows ``fuzz/corpus/<target>`` (git-ignored) starting from the committed seeds
in ``fuzz/seeds/<target>`` (``python -m fuzz.make_corpus`` writes them) and saves crashes in
``fuzz/crashes/``. Give a crash file instead to replay it. Examples::

    python -m fuzz decode -max_total_time=180
    python -m fuzz framer -runs=100000
    python -m fuzz decode fuzz/crashes/decode-crash-1234
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

TARGETS = ("framer", "decode", "receipts", "udh", "reassembly")
MAX_LEN = {"framer": 4096, "decode": 2048, "receipts": 1024, "udh": 600, "reassembly": 4096}
HERE = Path(__file__).resolve().parent


def _instrument() -> None:
    """Import the protocol core with coverage instrumentation, generated codec functions too."""
    # The imports must run inside the instrumenting context, hence not at the top of the file.
    with atheris.instrument_imports(include=["o2sms"]):
        import o2sms.receipts  # noqa: PLC0415
        import o2sms.smpp  # noqa: PLC0415
        import o2sms.text  # noqa: F401, PLC0415
        from o2sms.smpp import codec  # noqa: PLC0415

    # The encoders and decoders are compiled at import (codec._Generator), outside the loader.
    for table in (codec._ENCODERS, codec._DECODERS):
        for function in table.values():
            atheris.instrument_func(function)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in (*TARGETS, "list"):
        print(__doc__, file=sys.stderr)
        return 2
    target = argv[1]
    if target == "list":
        print("\n".join(TARGETS))
        return 0
    _instrument()
    module = importlib.import_module(f"fuzz.targets.{target}")
    options = [a for a in argv[2:] if a.startswith("-")]
    inputs = [a for a in argv[2:] if not a.startswith("-")]
    if not inputs:
        corpus = HERE / "corpus" / target
        corpus.mkdir(parents=True, exist_ok=True)
        inputs = [str(corpus), str(HERE / "seeds" / target)]
        if not any(o.startswith("-artifact_prefix=") for o in options):
            (HERE / "crashes").mkdir(exist_ok=True)
            options.append(f"-artifact_prefix={HERE / 'crashes'}/{target}-")
    if not any(o.startswith("-max_len=") for o in options):
        options.append(f"-max_len={MAX_LEN[target]}")
    if not any(o.startswith("-timeout=") for o in options):
        options.append("-timeout=10")  # a hang is an input taking over 10 s
    atheris.Setup([f"fuzz-{target}", *options, *inputs], module.test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
