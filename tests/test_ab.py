"""benchmarks/ab.py: the interpreters it runs each side with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_relative_interpreter_is_read_from_where_ab_runs(tmp_path: Path) -> None:
    # The benchmark runs in the repository's root: a --python-b relative to the caller's
    # folder was looked up there, and the run died with FileNotFoundError.
    python = os.path.relpath(sys.executable, tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "ab.py"),
            ".",
            ".",
            "--pairs",
            "1",
            "--python-b",
            python,
            "--figure",
            r"x=x (\d+)",
            "--",
            "-c",
            "print('x 5')",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pair 1 B: x 5" in done.stdout
