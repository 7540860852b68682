#!/usr/bin/env bash
# Regenerate the README's screenshots: `bash scripts/screenshots.sh`.
# Runs the two browser tests through the test command (which provisions the venv,
# the services and Debian's chromium); they save each page they check into
# demo_project/screenshots/ (the MariaDB run's pictures are the ones kept):
#   tests/test_demo_browser.py  demo-home, demo-country-hit, demo-invalidation, demo-toolbar-panel
#   tests/test_browser.py       admin-containers, admin-stats, admin-warm-confirmation
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CACHELAYER_SCREENSHOTS="$PWD/demo_project/screenshots"
mkdir -p "$CACHELAYER_SCREENSHOTS"
exec bash scripts/test.sh -q -p no:cacheprovider tests/test_demo_browser.py tests/test_browser.py
