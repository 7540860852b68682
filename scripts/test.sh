#!/usr/bin/env bash
# The test command: `bash scripts/test.sh [--quick] [pytest args...]`.
# Installs what is missing (venvs, services), then runs the suite once per
# database (SQLite, MariaDB, PostgreSQL), because Django's DATABASES is fixed for
# the life of a process, the data-layer suite (tests/layer, less the tests
# marked slow) once more on SQLite and PostgreSQL with Django 6.0 under the
# newest Python on the machine, and a slice of Django's own ORM test suite with
# cachelayer installed and every model mapped (scripts/django_suite.py).
# --quick is the loop while coding: SQLite and LocMem only, no test marked slow
# (CONTRIBUTING.md); without it, every test runs: the gate.
# Exit status is non-zero if any run failed (no tests collected = failure).
set -euo pipefail

QUICK=0
if [[ ${1:-} == --quick ]]; then QUICK=1; shift; fi

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
mkdir -p test-output
# Per-database wall-clock limit for one pytest run, in seconds.
TEST_TIMEOUT="${CACHELAYER_TEST_TIMEOUT:-3000}"

# Print "PASSED FAILED SKIPPED" from a junit xml file; fails if unreadable.
junit_counts() {
    .venv/bin/python - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for suite in suites:
    t += int(suite.get("tests", 0))
    f += int(suite.get("failures", 0))
    e += int(suite.get("errors", 0))
    s += int(suite.get("skipped", 0))
print(t - f - e - s, f + e, s)
EOF
}

# Print the failing tests of a junit xml file, one "  - classname::name" line each (at most 20).
junit_failures() {
    .venv/bin/python - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
failed = [
    f"{case.get('classname', '')}::{case.get('name', '')}"
    for case in ET.parse(sys.argv[1]).getroot().iter("testcase")
    if case.find("failure") is not None or case.find("error") is not None
]
for name in failed[:20]:
    print(f"    - {name}")
if len(failed) > 20:
    print(f"    - ... and {len(failed) - 20} more ({sys.argv[1]})")
EOF
}

declare -A RC COUNTS EXTRA WALL
RAN=()
TOTAL_PASSED=0
TOTAL_FAILED=0
overall=0
# Runs of the suite that go side by side (each its own database, SQLite file, binlog
# datadir and key prefixes): one run keeps about one core busy, the rest is waiting
# on servers and sleeps the fault tests cause.
JOBS="${CACHELAYER_TEST_JOBS:-3}"
declare -A JOB_NAME=()
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM   # Ctrl-C stops every run

start_suite() {  # NAME CACHELAYER_DB [pytest args...]; SUITE_PYTHON: the venv's interpreter
    local name=$1 db=$2 SUITE_RUNNER=(-m pytest)
    if [[ -n ${SUITE_SCRIPT:-} ]]; then SUITE_RUNNER=("$SUITE_SCRIPT"); fi
    shift 2
    while ((${#JOB_NAME[@]} >= JOBS)); do finish_one; done
    RAN+=("$name")
    echo "== database: $name: started (test-output/$name.log) =="
    rm -f "test-output/junit-$name.xml" "test-output/$name.rc"   # never read a previous run's counts
    # A deadlocked test would otherwise hold CI until its own limit. SIGABRT
    # makes pytest's faulthandler print every thread's stack before dying.
    (
        started=$SECONDS rc=0
        CACHELAYER_TEST_RUN="$name" CACHELAYER_DB="$db" timeout -s ABRT -k 30 "$TEST_TIMEOUT" \
            "${SUITE_PYTHON:-.venv/bin/python}" "${SUITE_RUNNER[@]}" --junitxml="test-output/junit-$name.xml" "$@" \
            </dev/null >"test-output/$name.log" 2>&1 || rc=$?
        if [[ $rc -eq 124 ]]; then
            echo "!! pytest ($name) timed out after $TEST_TIMEOUT s (CACHELAYER_TEST_TIMEOUT); stacks above" \
                >>"test-output/$name.log"
        fi
        echo "$rc $((SECONDS - started))" >"test-output/$name.rc"
    ) &
    JOB_NAME[$!]=$name
}

finish_one() {  # wait for one run, print its log and add up its counts
    local pid name rc wall p=0 f=0 s=0
    wait -n -p pid || true
    name=${JOB_NAME[$pid]}
    unset "JOB_NAME[$pid]"
    read -r rc wall <"test-output/$name.rc" 2>/dev/null || { rc=1; wall=0; }
    echo "== database: $name (finished in $wall s) =="
    cat "test-output/$name.log"
    RC[$name]=$rc
    WALL[$name]=$wall
    if [[ -f test-output/junit-$name.xml ]] && COUNTS[$name]="$(junit_counts "test-output/junit-$name.xml" 2>/dev/null)"; then
        read -r p f s <<<"${COUNTS[$name]}"
    else
        COUNTS[$name]=""   # crashed/killed before writing the xml
    fi
    # Any non-zero exit is a failure, including 5 (no tests collected). A failed
    # run that reported no failing test (crash, usage error, nothing collected)
    # counts as 1 failed, so the closing line is never green when we exit 1.
    if [[ $rc -ne 0 ]]; then
        overall=1
        if [[ $f -eq 0 ]]; then f=1; EXTRA[$name]=" (run counted as 1 failed)"; fi
    fi
    TOTAL_PASSED=$((TOTAL_PASSED + p))
    TOTAL_FAILED=$((TOTAL_FAILED + f))
}

# Lint, format and types first (seconds); a failure there fails the run, the suites still run.
echo "== lint =="
lint_started=$SECONDS
RC[lint]=0
bash scripts/lint.sh || RC[lint]=$?
lint_wall=$((SECONDS - lint_started))
if [[ ${RC[lint]} -ne 0 ]]; then overall=1; TOTAL_FAILED=$((TOTAL_FAILED + 1)); fi

if [[ $QUICK -eq 1 ]]; then
    # Two processes (pytest-xdist), each with a test database of its own (pytest-django adds _gw0, _gw1).
    start_suite sqlite sqlite -n 2 -m "not slow" --caches=locmem "$@"
else
    # Django 6.0 needs Python >= 3.12: the newest one the machine has (never downloaded).
    DJ6_PYTHON=""
    if DJ6_PYTHON="$(newest_python 3.12)"; then
        ensure_venv .venv-dj6 requirements-dj6.txt "$DJ6_PYTHON"
    else
        echo "!! no Python >= 3.12 on this machine (PATH, ~/.pyenv): the Django 6.0 pass does not run"
    fi
    POSTGRES_URL="${CACHELAYER_TEST_POSTGRES:-postgresql://cachelayer:cachelayer@127.0.0.1:5432/cachelayer}"
    # CACHELAYER_TEST_MYSQL lets two checkouts run the suite side by side
    # (Django creates test_<NAME>, so each needs its own NAME).
    MYSQL_URL="${CACHELAYER_TEST_MYSQL:-mysql://cachelayer:cachelayer@127.0.0.1:3306/cachelayer}"
    # Longest first (the summary's wall times), so that no long run starts when the others end.
    if [[ $# -eq 0 ]]; then
        # The binlog follower tests (a private MariaDB each, processes, real-time lag) run on a
        # database of their own, as a run of their own (mysql-follow, below).
        start_suite mysql "$MYSQL_URL" --ignore=tests/follow
    else
        start_suite mysql "$MYSQL_URL" "$@"
    fi
    start_suite postgresql "$POSTGRES_URL" "$@"
    start_suite sqlite sqlite "$@"
    if [[ -n $DJ6_PYTHON ]]; then
        # The write-path matrix (slow) already ran three times above, on Django 5.2.
        # Its own PostgreSQL database: it may run beside the PostgreSQL run above. With it, a
        # new project on the wheel, Django 6.0 and PostgreSQL (tests/test_packaging.py, marked wheel).
        SUITE_PYTHON=.venv-dj6/bin/python start_suite dj6-postgresql "${POSTGRES_URL}_dj6" \
            tests/layer tests/test_packaging.py -m "not slow or wheel" "$@"
    fi
    # Django's own ORM tests with cachelayer installed, then every model mapped (one to three minutes a
    # database; scripts/django_suite.py; README "Django's own test suite"). Its own arguments, not pytest's.
    SUITE_SCRIPT=scripts/django_suite.py start_suite django-mysql "${MYSQL_URL}_django"
    SUITE_SCRIPT=scripts/django_suite.py start_suite django-postgresql "${POSTGRES_URL}_django"
    if [[ -n $DJ6_PYTHON ]]; then  # Django 6.0's own slice (its sdist) on PostgreSQL, then the data layer on SQLite
        SUITE_PYTHON=.venv-dj6/bin/python SUITE_SCRIPT=scripts/django_suite.py \
            start_suite django6-postgresql "${POSTGRES_URL}_django6"
        SUITE_PYTHON=.venv-dj6/bin/python start_suite dj6-sqlite sqlite tests/layer -m "not slow" "$@"
    fi
    if [[ $# -eq 0 ]]; then
        start_suite mysql-follow "${MYSQL_URL}_follow" tests/follow
    fi
    SUITE_SCRIPT=scripts/django_suite.py start_suite django-sqlite sqlite
fi
while ((${#JOB_NAME[@]} > 0)); do finish_one; done

echo "== summary =="
if [[ ${RC[lint]} -eq 0 ]]; then
    echo "lint (ruff check, ruff format --check, mypy, mkdocs build --strict): pass in $lint_wall s"
else
    echo "lint (ruff check, ruff format --check, mypy, mkdocs build --strict): FAIL in $lint_wall s (bash scripts/lint.sh; counted as 1 failed)"
fi
echo "versions (.venv): $(venv_versions .venv)"
if [[ -n ${DJ6_PYTHON:-} ]]; then echo "versions (.venv-dj6): $(venv_versions .venv-dj6)"; fi
for name in "${RAN[@]}"; do
    rc=${RC[$name]}
    case $rc in
        0) verdict=pass ;;
        5) verdict="FAIL (no tests collected)" ;;
        124) verdict="FAIL (timed out)" ;;
        *) verdict=FAIL ;;
    esac
    if [[ -n ${COUNTS[$name]} ]]; then
        read -r p f s <<<"${COUNTS[$name]}"
        echo "database $name: $verdict - $p passed, $f failed, $s skipped in ${WALL[$name]} s (pytest exit code $rc)${EXTRA[$name]:-}"
        if [[ $f -gt 0 ]]; then junit_failures "test-output/junit-$name.xml" 2>/dev/null || true; fi
    else
        echo "database $name: $verdict - counts unavailable after ${WALL[$name]} s (pytest exit code $rc)${EXTRA[$name]:-}"
    fi
done
echo "wall time: $SECONDS s$([[ $QUICK -eq 1 ]] && echo " (--quick)")"
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
exit "$overall"
