#!/usr/bin/env bash
# Fuzz one target for a number of seconds: bash fuzz/run.sh <target> <seconds> [libFuzzer options]
# (from the repository root, with atheris installed: .venv/bin/pip install -r fuzz/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh <framer|decode|receipts|udh|reassembly> <seconds> [options]}
seconds=${2:-60}
shift 2 || shift $#
python=${PYTHON:-.venv/bin/python}
[ -d "fuzz/seeds/$target" ] || "$python" -m fuzz.make_corpus
exec "$python" -m fuzz "$target" -max_total_time="$seconds" -print_final_stats=1 "$@"
