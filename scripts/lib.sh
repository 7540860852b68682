#!/usr/bin/env bash
# Shared helpers for scripts/*.sh: sourced, never run.
#   apt_install PKG...   install Debian packages (apt-get update at most once per run)
#   ensure_venv [V [R [PY]]]  venv V (.venv) with requirements R (requirements.txt) installed (skipped when unchanged),
#                        made with interpreter PY (python3)
#   newest_python MIN    print the newest CPython >= MIN on PATH or in ~/.pyenv (fails when none)
#   ensure_chromium      Debian's chromium + chromium-driver (the admin browser test)
#   venv_versions V      print the Python and key package versions of venv V (what a run tested)
# Strict mode here too, so that `source scripts/lib.sh; ensure_...` from a plain
# shell stops at the first error instead of carrying on half-provisioned.
set -euo pipefail

# Repo root = parent of this file's folder, wherever the caller's cwd is.
CACHELAYER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '%s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Exported so that a nested script of the same run does not update again.
export CACHELAYER_APT_UPDATED="${CACHELAYER_APT_UPDATED:-0}"

# How to become root for apt-get: nothing when root, sudo when it needs no
# password (CI has no stdin to type one), else nothing works -> clear error.
_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 126
    fi
}

apt_install() {
    (( $# )) || return 0
    if [[ $(id -u) -ne 0 ]] && ! { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
        die "root (or passwordless sudo) is needed to install: $* (run this script as root, or install them by hand: apt-get install $*)"
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
    log "-- apt-get install $*"
    # Fresh machines may have empty/stale package lists; one update per run is enough.
    if [[ "$CACHELAYER_APT_UPDATED" != 1 ]]; then
        _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            || die "apt-get update failed (needed to install: $*)"
        CACHELAYER_APT_UPDATED=1
    fi
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@" \
        || die "apt-get install failed for: $*"
}

# mysqlclient has no Linux wheels: pip compiles it, which needs a C compiler,
# pkg-config, the MariaDB client headers (mysqlclient.pc) and Python.h.
_ensure_build_deps() {
    local need=()
    command -v gcc >/dev/null 2>&1 || need+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists mysqlclient; then
        need+=(default-libmysqlclient-dev)
    fi
    # Debian's own python3 ships Python.h separately (python3-dev); pyenv etc. include it.
    if ! python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
        need+=(python3-dev)
    fi
    # pylibmc has no Linux wheels either: it compiles against libmemcached (and zlib).
    if ! pkg-config --exists libmemcached 2>/dev/null; then need+=(libmemcached-dev); fi
    if ! pkg-config --exists zlib 2>/dev/null; then need+=(zlib1g-dev); fi
    if (( ${#need[@]} )); then apt_install "${need[@]}"; fi
}

newest_python() {  # MIN (e.g. 3.12)
    local candidate version found=()
    for candidate in "$HOME"/.pyenv/versions/*/bin/python3 $(compgen -c python3. | sort -u); do
        [[ ${candidate##*/} =~ ^python3(\.[0-9]+)?$ ]] || continue   # not python3.X-config
        version="$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || continue
        if [[ "$(printf '%s\n' "$1" "$version" | sort -V | head -n 1)" == "$1" ]]; then
            found+=("$version $(command -v "$candidate")")
        fi
    done
    (( ${#found[@]} )) || return 1
    printf '%s\n' "${found[@]}" | sort -V | tail -n 1 | cut -d' ' -f2
}

ensure_venv() {  # [VENV [REQUIREMENTS [PYTHON]]]: default .venv, requirements.txt, python3
    local root="$CACHELAYER_ROOT" venv="$CACHELAYER_ROOT/${1:-.venv}"
    local requirements="$CACHELAYER_ROOT/${2:-requirements.txt}" python="${3:-python3}"
    local stamp="$venv/.requirements.sha" want have=""
    command -v "$python" >/dev/null 2>&1 || apt_install python3
    # A venv whose interpreter vanished (e.g. python upgraded) is useless: rebuild it.
    if [[ -d "$venv" ]] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
        log "-- $venv is broken, recreating it"
        rm -rf "$venv"
    fi
    if [[ ! -x "$venv/bin/python" || ! -x "$venv/bin/pip" ]]; then
        log "-- creating $venv"
        rm -rf "$venv"
        if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
            # Debian's python3 needs python3-venv for ensurepip.
            rm -rf "$venv"
            apt_install python3-venv
            "$python" -m venv "$venv" || die "$python -m venv $venv failed"
        fi
    fi
    # The stamp covers every requirements file (bench/requirements.txt includes the app's).
    want="$(cat "$requirements" "$root/requirements.txt" | sha256sum | cut -d' ' -f1)"
    [[ -f "$stamp" ]] && have="$(<"$stamp")"
    if [[ "$want" == "$have" ]]; then
        return 0    # requirements unchanged since last successful install: fast path
    fi
    _ensure_build_deps
    log "-- pip install -r ${requirements#"$root/"}"
    PIP_NO_INPUT=1 "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" \
        || die "pip install -r $requirements failed"
    # Written only after success, so a failed install is retried next run.
    printf '%s\n' "$want" >"$stamp"
}

# The browser test drives Debian's own chromium through its chromedriver; Selenium
# never downloads a browser (tests/test_browser.py sets SE_OFFLINE).
ensure_chromium() {
    local need=()
    [[ -x /usr/bin/chromium ]] || need+=(chromium)
    [[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
    if (( ${#need[@]} )); then apt_install "${need[@]}"; fi
}

# A fresh install takes the newest release each range allows, so a run names what it ran
# on: a failure that only a new release causes shows in the summary it prints.
venv_versions() {  # VENV
    "$CACHELAYER_ROOT/$1/bin/python" - <<'EOF'
import platform
from importlib.metadata import PackageNotFoundError, version

found = [f"Python {platform.python_version()}"]
for name in ("Django", "redis", "django-redis", "hiredis", "pymemcache", "pylibmc", "mysqlclient",
             "psycopg", "mysql-replication", "prometheus_client"):
    try:
        found.append(f"{name} {version(name)}")
    except PackageNotFoundError:
        pass
print(", ".join(found))
EOF
}
