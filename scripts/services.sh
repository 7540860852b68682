#!/usr/bin/env bash
# Provision the servers the test suite talks to, each on loopback only:
#   memcached 127.0.0.1:11211, Redis 127.0.0.1:6379, MariaDB 127.0.0.1:3306
#   (+ MariaDB user cachelayer/cachelayer and database cachelayer), PostgreSQL
#   127.0.0.1:5432 (+ role cachelayer/cachelayer with CREATEDB and database cachelayer),
#   libmemcached-tools (memccapable, memcslap) for the cache_serve tests,
#   sasl2-bin (saslpasswd2) for the memcached SASL test, and the wal2json decoder
#   (postgresql-15-wal2json) for the WAL follower tests' private PostgreSQL 15.
# Each one is reused if it already answers, else started, else installed and
# started. Idempotent; the all-reused path takes well under a second.
# Usage: `bash scripts/services.sh`, or source it and call ensure_services.
set -euo pipefail

# Needs apt_install/log/die from lib.sh (unless the caller sourced it already).
if ! declare -F apt_install >/dev/null; then
    # shellcheck source=scripts/lib.sh
    source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# --- probes -----------------------------------------------------------------
# bash's /dev/tcp needs nothing installed; `timeout` guards against a hang.

port_open() {  # PORT -> 0 if something accepts on 127.0.0.1:PORT
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Send one line, check the first reply line starts with PREFIX, so that a
# foreign program squatting on the port is reported instead of "reused".
_speaks() {  # PORT REQUEST PREFIX
    # shellcheck disable=SC2016  # expanded by the inner bash, from its $1..$3
    timeout 3 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
        printf "%s\r\n" "$2" >&3
        IFS= read -r line <&3 || exit 1
        [[ $line == "$3"* ]]' _ "$@" 2>/dev/null
}

# 0 = answers like the service, 1 = nothing listening, 2 = something else
# answers. A server that is shutting down can accept and then drop the
# request, so "something else" is re-checked for a few seconds first.
_probe() {  # PORT REQUEST PREFIX
    local i
    for ((i = 0; i < 6; i++)); do
        port_open "$1" || return 1
        _speaks "$@" && return 0
        sleep 0.5
    done
    return 2
}

wait_port() {  # NAME PORT LOGFILE: bounded wait (~30 s), clear failure
    local name=$1 port=$2 logfile=$3 i
    for ((i = 0; i < 60; i++)); do
        port_open "$port" && return 0
        sleep 0.5
    done
    die "$name did not come up on 127.0.0.1:$port within 30 s; see its log: $logfile"
}

# First writable directory among the arguments (created if needed).
_writable_dir() {
    local d
    for d in "$@"; do
        if mkdir -p "$d" 2>/dev/null && [[ -w $d ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

_is_root() { [[ $(id -u) -eq 0 ]]; }

# --- memcached --------------------------------------------------------------

_start_memcached() {  # LOGFILE
    local user=() bin
    bin="$(command -v memcached)"
    # As root, memcached refuses to run without -u; prefer Debian's memcache user.
    if _is_root; then
        if id -u memcache >/dev/null 2>&1; then user=(-u memcache); else user=(-u root); fi
    fi
    # -d daemonizes (and closes stdio); the log only catches start-up errors.
    "$bin" -d "${user[@]}" -l 127.0.0.1 -p 11211 -m 64 -U 0 >>"$1" 2>&1 || true
}

ensure_memcached() {
    local how logdir logfile
    logdir="$(_writable_dir /var/log/cachelayer-ci /tmp/cachelayer-ci)" || die "no writable log dir"
    logfile="$logdir/memcached.log"
    local st=0
    _probe 11211 version VERSION || st=$?
    [[ $st -ne 2 ]] || die "127.0.0.1:11211 is taken by something that does not answer like memcached"
    if [[ $st -eq 0 ]]; then
        how=reused
    else
        if command -v memcached >/dev/null 2>&1; then
            how=started
        else
            apt_install memcached
            how=installed+started
            # Debian's postinst starts it only where init scripts may run
            # (not under policy-rc.d/no systemd): give that a moment, else start.
            sleep 0.5
        fi
        port_open 11211 || _start_memcached "$logfile"
        wait_port memcached 11211 "$logfile"
    fi
    _speaks 11211 version VERSION \
        || die "127.0.0.1:11211 is open but does not answer like memcached (see $logfile)"
    echo "memcached 127.0.0.1:11211: $how"
}

# --- Redis ------------------------------------------------------------------

_start_redis() {  # LOGFILE(launcher output)
    local datadir logdir
    # Debian's dirs when usable; /tmp otherwise (non-root, read-only /var).
    datadir="$(_writable_dir /var/lib/redis /tmp/cachelayer-redis)" || die "no writable Redis dir"
    logdir="$(_writable_dir /var/log/redis /tmp/cachelayer-redis)" || die "no writable Redis log dir"
    REDIS_LOG="$logdir/ci.log"
    # Nothing persisted: it is a throwaway test server.
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir "$datadir" --logfile "$REDIS_LOG" >>"$1" 2>&1 || true
}

ensure_redis() {
    local how logdir logfile
    logdir="$(_writable_dir /var/log/cachelayer-ci /tmp/cachelayer-ci)" || die "no writable log dir"
    logfile="$logdir/redis-start.log"
    REDIS_LOG="$logfile"
    local st=0
    _probe 6379 PING +PONG || st=$?
    [[ $st -ne 2 ]] || die "127.0.0.1:6379 is taken by something that does not answer PING like Redis"
    if [[ $st -eq 0 ]]; then
        how=reused
    else
        if command -v redis-server >/dev/null 2>&1; then
            how=started
        else
            apt_install redis-server
            how=installed+started
            sleep 0.5   # the package may have started it itself (systemd hosts)
        fi
        port_open 6379 || _start_redis "$logfile"
        wait_port redis 6379 "$REDIS_LOG (and $logfile)"
    fi
    _speaks 6379 PING +PONG \
        || die "127.0.0.1:6379 is open but does not answer PING like Redis (see $REDIS_LOG)"
    echo "redis 127.0.0.1:6379: $how"
}

# --- MariaDB ----------------------------------------------------------------

# Value of a [mysqld]-group option from the server's config files, or DEFAULT.
_mysqld_opt() {  # NAME DEFAULT
    local line val=$2
    if command -v my_print_defaults >/dev/null 2>&1; then
        while IFS= read -r line; do
            [[ $line == "--$1="* ]] && val=${line#--"$1"=}
        done < <(my_print_defaults --mysqld 2>/dev/null || true)
    fi
    printf '%s\n' "$val"
}

_mariadbd_bin() {
    local b
    for b in /usr/sbin/mariadbd /usr/sbin/mysqld; do
        [[ -x $b ]] && { printf '%s\n' "$b"; return 0; }
    done
    return 1
}

# The server's error log: from its config (relative = inside the datadir), or
# Debian's usual path when the config sends errors to stderr/syslog.
_mariadb_log() {
    local f
    f="$(_mysqld_opt log-error /var/log/mysql/error.log)"
    [[ -n $f ]] || f=/var/log/mysql/error.log
    [[ $f == /* ]] || f="$(_mysqld_opt datadir /var/lib/mysql)/$f"
    printf '%s\n' "$f"
}

_start_mariadb() {  # sets MARIADB_LOG
    local bin datadir
    bin="$(_mariadbd_bin)" || die "mariadbd not found"
    _is_root || die "root is needed to start MariaDB (its files belong to the mysql user)"
    datadir="$(_mysqld_opt datadir /var/lib/mysql)"
    MARIADB_LOG="$(_mariadb_log)"
    # Socket and pid file live in /run/mysqld, which is on tmpfs: recreate it.
    mkdir -p /run/mysqld "$(dirname "$MARIADB_LOG")" "$datadir"
    chown mysql:mysql /run/mysqld
    # Created by us as root below (>>), so hand it to mysql or mariadbd can't write it.
    touch "$MARIADB_LOG"
    chown mysql:mysql "$MARIADB_LOG"
    if [[ ! -d $datadir/mysql ]]; then
        log "-- initialising MariaDB datadir $datadir"
        chown mysql:mysql "$datadir"
        mariadb-install-db --user=mysql --datadir="$datadir" >>"$MARIADB_LOG" 2>&1 \
            || die "mariadb-install-db failed; see $MARIADB_LOG"
    fi
    # start-stop-daemon runs it as root: --user=mysql makes mariadbd drop to
    # mysql; bind/port forced to loopback whatever the config says; --log-error
    # so that errors land in a file even where the config logs to stderr.
    start-stop-daemon --start --oknodo --background --exec "$bin" -- \
        --user=mysql --bind-address=127.0.0.1 --port=3306 --log-error="$MARIADB_LOG" \
        >>"$MARIADB_LOG" 2>&1 || die "start-stop-daemon could not start $bin; see $MARIADB_LOG"
}

ensure_mariadb() {
    local how
    MARIADB_LOG="$(_mariadb_log)"
    if port_open 3306; then
        how=reused
    else
        if _mariadbd_bin >/dev/null; then
            how=started
        else
            apt_install mariadb-server
            how=installed+started
            sleep 1   # the package may have started it itself (systemd hosts)
        fi
        port_open 3306 || _start_mariadb
        wait_port mariadb 3306 "$MARIADB_LOG"
    fi
    echo "mariadb 127.0.0.1:3306: $how"
}

# The suite connects as cachelayer/cachelayer over TCP; Django's test runner
# creates test_cachelayer, hence global privileges (loopback test server only).
ensure_mariadb_user() {
    local cli sql
    cli="$(command -v mariadb || command -v mysql || true)"
    if [[ -z $cli ]]; then
        apt_install mariadb-client
        cli="$(command -v mariadb || command -v mysql)" || die "no mariadb client after install"
    fi
    local as_user=("$cli" --connect-timeout=5 -h127.0.0.1 -P3306 -ucachelayer --password=cachelayer)
    if "${as_user[@]}" -Dcachelayer -Nse 'select 1' >/dev/null 2>&1; then
        echo "mariadb user cachelayer@127.0.0.1, database cachelayer: reused"
        return 0
    fi
    # ALTER USER too: a pre-existing user with another password gets fixed.
    sql="CREATE DATABASE IF NOT EXISTS cachelayer CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    local host
    for host in 127.0.0.1 localhost; do
        sql+="CREATE USER IF NOT EXISTS 'cachelayer'@'$host' IDENTIFIED BY 'cachelayer';"
        sql+="ALTER USER 'cachelayer'@'$host' IDENTIFIED BY 'cachelayer';"
        sql+="GRANT ALL PRIVILEGES ON *.* TO 'cachelayer'@'$host' WITH GRANT OPTION;"
    done
    sql+="FLUSH PRIVILEGES;"
    # Root via the unix socket (unix_socket auth as OS root on stock Debian),
    # else root over TCP with an empty password. Root's auth is never touched.
    if ! "$cli" --connect-timeout=5 -uroot -e "$sql" 2>/dev/null \
        && ! "$cli" --connect-timeout=5 -h127.0.0.1 -P3306 -uroot -e "$sql"; then
        die "could not log in to MariaDB as root (unix socket, nor 127.0.0.1 with an empty password) to create user cachelayer; create it by hand: $sql"
    fi
    "${as_user[@]}" -Dcachelayer -Nse 'select 1' >/dev/null \
        || die "user cachelayer still cannot connect to 127.0.0.1:3306 after creating it; see $MARIADB_LOG"
    echo "mariadb user cachelayer@127.0.0.1, database cachelayer: created"
}

# --- PostgreSQL ---------------------------------------------------------------

# Debian's cluster tools (postgresql-common) manage the clusters the package makes.
_start_postgresql() {
    local ver name
    _is_root || die "root is needed to start PostgreSQL (its files belong to the postgres user)"
    read -r ver name _ < <(pg_lsclusters -h 2>/dev/null | head -n 1) || true
    if [[ -z ${ver:-} ]]; then
        ver="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
        name=main
        log "-- creating PostgreSQL cluster $ver/$name"
        pg_createcluster "$ver" "$name" >&2 || die "pg_createcluster $ver $name failed"
    fi
    PG_LOG="/var/log/postgresql/postgresql-$ver-$name.log"
    # Port and bind forced to loopback for this start, whatever the cluster's config says.
    pg_ctlcluster -o "-c listen_addresses=127.0.0.1 -c port=5432" "$ver" "$name" start >&2 \
        || die "pg_ctlcluster $ver $name start failed; see $PG_LOG"
}

ensure_postgresql() {
    local how
    PG_LOG=/var/log/postgresql
    if port_open 5432; then
        how=reused
    else
        if command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
            how=started
        else
            apt_install postgresql
            how=installed+started
            sleep 1   # the package may have started it itself (systemd hosts)
        fi
        port_open 5432 || _start_postgresql
        wait_port postgresql 5432 "$PG_LOG"
    fi
    echo "postgresql 127.0.0.1:5432: $how"
}

# psql as a superuser: postgres over TCP where the server trusts loopback, else
# the postgres OS user over the unix socket (Debian's peer authentication).
_pg_admin() {  # PSQL ARGS...
    if psql -h 127.0.0.1 -p 5432 -U postgres -w -d postgres -Atc 'select 1' >/dev/null 2>&1; then
        psql -h 127.0.0.1 -p 5432 -U postgres -w -d postgres -v ON_ERROR_STOP=1 -Aqt "$@"
    elif _is_root && id -u postgres >/dev/null 2>&1; then
        runuser -u postgres -- psql -p 5432 -d postgres -v ON_ERROR_STOP=1 -Aqt "$@"
    else
        die "could not reach PostgreSQL as a superuser (postgres over 127.0.0.1, nor the postgres OS user) to create role cachelayer"
    fi
}

# The suite connects as cachelayer/cachelayer over TCP; Django's test runner
# creates test_<NAME>, hence CREATEDB. Only this role and database are touched.
ensure_postgresql_user() {
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    local as_user=(env PGPASSWORD=cachelayer PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p 5432 -U cachelayer -w -d cachelayer -Atc 'select 1')
    if "${as_user[@]}" >/dev/null 2>&1; then
        echo "postgresql role cachelayer, database cachelayer: reused"
        return 0
    fi
    # ALTER ROLE too: a pre-existing role with another password gets fixed.
    _pg_admin -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cachelayer') THEN CREATE ROLE cachelayer; END IF; END \$\$" \
        -c "ALTER ROLE cachelayer LOGIN CREATEDB PASSWORD 'cachelayer'"
    if [[ -z "$(_pg_admin -c "SELECT 1 FROM pg_database WHERE datname = 'cachelayer'")" ]]; then
        _pg_admin -c "CREATE DATABASE cachelayer OWNER cachelayer"
    fi
    "${as_user[@]}" >/dev/null \
        || die "role cachelayer still cannot connect to 127.0.0.1:5432 after creating it (pg_hba.conf must allow password logins from 127.0.0.1)"
    echo "postgresql role cachelayer, database cachelayer: created"
}

# --- libmemcached-tools -------------------------------------------------------
# memccapable and memcslap talk to cache_serve in tests/protocol/ as real peers.

ensure_libmemcached_tools() {
    if command -v memccapable >/dev/null 2>&1 && command -v memcslap >/dev/null 2>&1; then
        echo "libmemcached-tools: reused"
        return 0
    fi
    apt_install libmemcached-tools
    command -v memccapable >/dev/null 2>&1 && command -v memcslap >/dev/null 2>&1 \
        || die "libmemcached-tools installed but memccapable/memcslap are not on PATH (dpkg -L libmemcached-tools)"
    echo "libmemcached-tools: installed"
}

# --- sasl2-bin ----------------------------------------------------------------
# saslpasswd2 makes the sasldb of the memcached started with -S in tests/faults/test_tls_auth.py.

ensure_sasl_tools() {
    if command -v saslpasswd2 >/dev/null 2>&1; then
        echo "sasl2-bin: reused"
        return 0
    fi
    apt_install sasl2-bin libsasl2-modules
    command -v saslpasswd2 >/dev/null 2>&1 || die "sasl2-bin installed but saslpasswd2 is not on PATH"
    echo "sasl2-bin: installed"
}

# --- wal2json ------------------------------------------------------------------
# The WAL follower decodes with wal2json; tests/follow/postgres.py starts a private
# PostgreSQL 15 cluster with wal_level=logical that loads it (the shared server is untouched).

ensure_wal2json() {
    if [[ -e /usr/lib/postgresql/15/lib/wal2json.so ]]; then
        echo "postgresql-15-wal2json: reused"
        return 0
    fi
    apt_install postgresql-15-wal2json
    [[ -e /usr/lib/postgresql/15/lib/wal2json.so ]] || die "postgresql-15-wal2json installed but wal2json.so is not in /usr/lib/postgresql/15/lib"
    echo "postgresql-15-wal2json: installed"
}

ensure_services() {
    ensure_memcached
    ensure_redis
    ensure_mariadb
    ensure_mariadb_user
    ensure_postgresql
    ensure_postgresql_user
    ensure_wal2json
    ensure_libmemcached_tools
    ensure_sasl_tools
}

# Run directly (not sourced): provision everything.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    ensure_services
fi
