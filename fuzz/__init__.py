"""Coverage-guided fuzzing (atheris / libFuzzer) of the sans-IO protocol core.

Run ``python -m fuzz list`` for the targets and ``python -m fuzz <target> -max_total_time=60``
to fuzz one; see ``docs/reliability.md`` (section Fuzzing).
"""
