#!/usr/bin/env bash
# Lint, format and type checks of the gate, and the docs site build: `bash scripts/lint.sh` (the test command runs it first).
# ruff, mypy and mkdocs come from requirements.txt; configuration lives in pyproject.toml (mkdocs: mkdocs.yml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-tests.settings}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=.venv/bin
status=0
echo "== lint: ruff check ==";          "$py/ruff" check . || status=1
echo "== lint: ruff format --check =="; "$py/ruff" format --check . || status=1
echo "== types: mypy cachelayer ==";    "$py/mypy" || status=1
# The docs site: --strict turns every warning (a broken link or anchor: mkdocs.yml's validation) into a
# failure. Not --quiet: it hides the warnings from the count, and the build passes.
site="$(mktemp -d)"
echo "== docs: mkdocs build --strict =="; "$py/mkdocs" build --strict --site-dir "$site" || status=1
rm -rf "$site"
exit "$status"
