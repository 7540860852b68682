#!/usr/bin/env bash
# Regenerate the README's screenshots: `bash scripts/screenshots.sh`.
# Runs the two browser tests (headless Debian chromium, the demo site on SQLite
# and memcached), which save each page they check into demo_project/screenshots/:
#   tests/test_demo_browser.py  demo-home, demo-country-hit, demo-invalidation, demo-toolbar-panel
#   tests/test_browser.py       admin-containers, admin-stats, admin-warm-confirmation
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/services.sh
source scripts/services.sh

ensure_venv
ensure_services
ensure_chromium

export DJANGO_SETTINGS_MODULE=tests.settings
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export CACHELAYER_DB=sqlite
export CACHELAYER_SCREENSHOTS="$ROOT/demo_project/screenshots"
mkdir -p test-output "$CACHELAYER_SCREENSHOTS"
.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_demo_browser.py tests/test_browser.py
ls -l "$CACHELAYER_SCREENSHOTS"
