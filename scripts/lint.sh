#!/usr/bin/env bash
# Lint, format and type checks of the gate: `bash scripts/lint.sh` (the test command runs it first).
# ruff and mypy come from requirements.txt; configuration lives in pyproject.toml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-tests.settings}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=.venv/bin
status=0
echo "== lint: ruff check ==";          "$py/ruff" check . || status=1
echo "== lint: ruff format --check =="; "$py/ruff" format --check . || status=1
echo "== types: mypy cachelayer ==";    "$py/mypy" || status=1
exit "$status"
