#!/usr/bin/env bash
# The demo command: `bash scripts/demo.sh` (PORT=8765 to change the port).
# SQLite + local-memory cache, so no servers are needed; only the venv
# (whose mysqlclient still needs its build dependencies, see lib.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_venv

PORT="${PORT:-8000}"
# Defaults only: an explicit CACHELAYER_DB/CACHELAYER_CACHE still wins.
export CACHELAYER_DB="${CACHELAYER_DB:-sqlite}"
export CACHELAYER_CACHE="${CACHELAYER_CACHE:-locmem}"
# A DJANGO_SETTINGS_MODULE left over from the tests (tests.settings) would
# otherwise override manage.py's setdefault.
export DJANGO_SETTINGS_MODULE=demo_project.settings
PY=.venv/bin/python

"$PY" manage.py migrate --noinput
# Fixture rows have fixed primary keys, so reloading just rewrites them.
"$PY" manage.py loaddata demo

# createsuperuser has no "if missing" flag: tolerate only "already taken".
if ! out="$(env DJANGO_SUPERUSER_PASSWORD=admin "$PY" manage.py createsuperuser --noinput \
        --username admin --email admin@example.com 2>&1)"; then
    if ! grep -qi 'already' <<<"$out"; then
        printf '%s\n' "$out" >&2
        die "createsuperuser failed"
    fi
fi

echo "Demo at http://127.0.0.1:$PORT/  — admin: http://127.0.0.1:$PORT/admin/ (user admin, password admin)"
exec "$PY" manage.py runserver "127.0.0.1:$PORT"
