"""Interleaved A/B of two commits under one benchmark: the fair comparison on a noisy machine.

Checks each commit out as a detached git worktree (``.`` means this checkout as it is, with
uncommitted changes), then runs the benchmark by turns, A B B A A B ..., each run with that
commit's ``src`` first on ``PYTHONPATH`` and this checkout's virtualenv. The benchmark script
is this checkout's for both sides, so the instrument stays the same. Prints the figures each
run gives, their medians and B / A.

    .venv/bin/python benchmarks/ab.py 45d75c4 . --pairs 3 -- \\
        benchmarks/bench_service.py --store sqlite --messages 20000 --recipients 1 --runs 1

``--python-a`` / ``--python-b`` run a side under another interpreter (a virtualenv's python
with o2sms's dependencies installed): give the same commit twice to compare interpreters.

    .venv/bin/python benchmarks/ab.py . . --python-b .venv-system/bin/python --pairs 3 -- \\
        benchmarks/bench_service.py --store sqlite --messages 30000 --recipients 100 --runs 1

By default it reads ``end to end N msg/s``, ``service CPU N µs/msg`` and, where given,
``PostgreSQL CPU N µs/msg`` (bench_service.py);
``--figure NAME=REGEX`` (repeatable, one group capturing the number) reads others.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIGURES = {
    "end to end msg/s": r"end to end ([\d,.]+) msg/s",
    "service CPU µs/msg": r"service CPU ([\d,.]+) µs/msg",
    "PostgreSQL CPU µs/msg": r"PostgreSQL CPU ([\d,.]+) µs/msg",
}
#: figures a run may lack (the PostgreSQL server's CPU, on SQLite): left out, not an error
OPTIONAL_FIGURES = {"PostgreSQL CPU µs/msg"}


@contextlib.contextmanager
def checked_out(revision: str) -> Iterator[Path]:
    """The source tree of ``revision``: this checkout for ``.``, else a temporary worktree."""
    if revision == ".":
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="o2sms-ab-") as folder:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", folder, revision],
            check=True,
            capture_output=True,
        )
        try:
            yield Path(folder)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", folder],
                check=False,
                capture_output=True,
            )


def run_once(
    tree: Path, python: str, command: list[str], figures: dict[str, re.Pattern[str]]
) -> dict[str, float]:
    """Run the benchmark once with ``python`` against ``tree``'s sources; the figures its
    output gives."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    where = subprocess.run(
        [python, "-c", "import o2sms; print(o2sms.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).is_relative_to(tree / "src"):
        raise SystemExit(f"o2sms is imported from {where}, not from {tree / 'src'}")
    done = subprocess.run(
        [python, *command], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the benchmark failed ({done.returncode}):\n{done.stderr[-2000:]}")
    values: dict[str, float] = {}
    for name, pattern in figures.items():
        found = pattern.search(done.stdout)
        if found is None and name in OPTIONAL_FIGURES:
            continue
        if found is None:
            raise SystemExit(f"no {name!r} in the benchmark's output:\n{done.stdout[-2000:]}")
        values[name] = float(found.group(1).replace(",", ""))
    return values


def parse_figures(given: list[str]) -> dict[str, re.Pattern[str]]:
    """``NAME=REGEX`` options as compiled patterns (the defaults when none are given)."""
    if not given:
        return {name: re.compile(regex) for name, regex in DEFAULT_FIGURES.items()}
    figures = {}
    for option in given:
        name, sep, regex = option.partition("=")
        if not sep or not name:
            raise SystemExit(f"--figure wants NAME=REGEX, not {option!r}")
        figures[name] = re.compile(regex)
    return figures


def interpreter(path: str) -> str:
    """``path`` from the caller's folder (the benchmark runs in the repository's root), or a
    name on ``PATH``; absolute but not resolved: a virtualenv's python is a symlink whose
    target would leave the virtualenv."""
    if os.sep not in path:
        found = shutil.which(path)
        if found is None:
            raise argparse.ArgumentTypeError(f"no {path!r} on PATH")
        return found
    return os.path.abspath(path)


def main() -> None:
    """Parse options, run the pairs, print the medians and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], usage="%(prog)s A B [--pairs N] -- SCRIPT [ARGS]"
    )
    parser.add_argument("a", help="baseline commit (or . for this checkout)")
    parser.add_argument("b", help="candidate commit (or . for this checkout)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--figure", action="append", default=[], metavar="NAME=REGEX")
    parser.add_argument(
        "--python-a", type=interpreter, default=sys.executable, help="interpreter of side A"
    )
    parser.add_argument(
        "--python-b", type=interpreter, default=sys.executable, help="interpreter of side B"
    )
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        parser.error("give the benchmark after --, e.g. -- benchmarks/bench_service.py ...")
    figures = parse_figures(args.figure)
    results: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    with checked_out(args.a) as tree_a, checked_out(args.b) as tree_b:
        for pair in range(1, args.pairs + 1):
            turns = (("A", tree_a, args.python_a), ("B", tree_b, args.python_b))
            # Alternate who goes first, so warm caches and clock boosts favour neither side.
            for side, tree, python in turns if pair % 2 else turns[::-1]:
                values = run_once(tree, python, command, figures)
                results[side].append(values)
                shown = ", ".join(f"{name} {value:,.0f}" for name, value in values.items())
                print(f"pair {pair} {side}: {shown}", flush=True)
    print(f"A = {args.a}, B = {args.b}, medians of {args.pairs}:")
    for name in figures:
        if any(name not in r for r in results["A"] + results["B"]):
            continue
        a = statistics.median(r[name] for r in results["A"])
        b = statistics.median(r[name] for r in results["B"])
        print(f"  {name:24s} A {a:12,.0f}  B {b:12,.0f}  B / A ×{b / a:.2f}")


if __name__ == "__main__":
    main()
