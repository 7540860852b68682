"""The PostgreSQL source: logical decoding of the WAL through a replication slot (wal2json).

psycopg 3 does not speak the replication protocol, so the follower reads
with SQL: ``pg_logical_slot_peek_changes`` decodes whole committed
transactions from the slot's confirmed position, and
``pg_replication_slot_advance`` confirms them once their invalidations were
delivered (walstream.py). The slot is the durable position (the
FollowerPosition row is the status and the heartbeat): a follower killed
before it confirmed reads the same transactions again (at least once).

The decoder is wal2json (Debian's ``postgresql-15-wal2json``, a well-kept
plugin), format version 2: one JSON object per change, with the old row in
``identity``. Which old columns PostgreSQL logs is the table's REPLICA
IDENTITY: DEFAULT logs the primary key only, so a container keyed on another
column (a unique slug, an index's column) would never hear its old key; the
follower refuses to start on such a table (``verify``) rather than miss it.
``cache_follow --replica-identity-full`` sets FULL on exactly those tables.

A slot retains the WAL its follower has not confirmed, so a stopped follower
fills the disk: create it explicitly (``--create-slot``) and drop it when
you stop following (``--drop-slot``).

Logical decoding carries rows, not DDL: an ``ALTER TABLE ... TYPE ... USING``
rewrites every row unseen. ``--ddl-log`` installs an event trigger that
writes each DDL statement into a table of its own (``DDL_LOG``), in the
statement's transaction; the follower decodes that table's inserts and bumps
the containers of every watched table the statement mentions, as the binlog
follower does for a logged statement.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from django.db import connections

from cachelayer.exceptions import FollowerError
from cachelayer.tasks.follow.aliases import database_of, default_server_id
from cachelayer.tasks.follow.control import ControlConnection
from cachelayer.tasks.follow.position import Position
from cachelayer.tasks.follow.source import Source
from cachelayer.tasks.follow.stream import Stream

PLUGIN = "wal2json"
CONNECT_TIMEOUT = 5  # seconds to reach the server
INSUFFICIENT_PRIVILEGE = "42501"
UNDEFINED_OBJECT = "42704"  # the slot does not exist (dropped while followed)
PREREQUISITE_STATE = "55000"  # the slot was invalidated (max_slot_wal_keep_size)
IDENTITY = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}
SLOT_PREFIX = "cachelayer_"
MAX_NAME = 63  # NAMEDATALEN - 1
DDL_LOG = "cachelayer_ddl_log"  # the event trigger's table, its function and the trigger itself
# The function runs as its owner (SECURITY DEFINER, with a fixed search_path): DDL by any role is logged
# into a table only the superuser who installed it may write. {log} is the schema-qualified table.
INSTALL_DDL_LOG = """
CREATE TABLE IF NOT EXISTS {log} (
    id bigserial PRIMARY KEY, command_tag text NOT NULL, statement text NOT NULL,
    logged timestamptz NOT NULL DEFAULT now());
CREATE OR REPLACE FUNCTION {log}() RETURNS event_trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {log} (command_tag, statement) VALUES (tg_tag, current_query());
END $$;
DROP EVENT TRIGGER IF EXISTS {name};
CREATE EVENT TRIGGER {name} ON ddl_command_end EXECUTE FUNCTION {log}();
"""


def slot_name(alias: str) -> str:
    """Return the default slot of an alias (slot names: lower case letters, digits and _)."""
    return (SLOT_PREFIX + re.sub(r"[^a-z0-9_]", "_", alias.lower()))[:MAX_NAME]


def connection_params(alias: str, application: str) -> dict:
    """Return psycopg connection arguments for DATABASES[alias], apart from Django's connection."""
    params = connections[alias].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return {**params, "connect_timeout": CONNECT_TIMEOUT, "application_name": application}


class WalSource(ControlConnection, Source):
    """One PostgreSQL database, followed through the replication slot ``slot``."""

    errors = (psycopg.Error, OSError)
    lost, broken = (psycopg.OperationalError,), (psycopg.Error,)

    def __init__(self, alias: str, *, slot: str | None = None):
        self.alias = alias
        self.slot = slot or slot_name(alias)
        self.server_id = default_server_id(alias)
        self.application = f"cachelayer-follow {self.slot}"[:MAX_NAME]  # how lag() finds the follower's session
        self.params = connection_params(alias, self.application)
        self._here = database_of(alias)
        host, port, self.database = self._here or ("", "", "")
        self.name = f"{host}:{port}/{self.database}"
        self.user = connections.settings[alias].get("USER") or ""
        self.ddl_log: tuple[str, str] | None = None  # (schema, table) of the DDL log, once preflight found it

    # --- the control connection -------------------------------------------
    def _connect(self):
        params = {**self.params, "application_name": f"{self.application} control"[:MAX_NAME]}
        return psycopg.connect(**params, autocommit=True)

    def _run(self, connection, sql: str, args) -> list[tuple]:
        cursor = connection.execute(sql, args)
        return list(cursor.fetchall()) if cursor.description else []

    # --- set-up (cache_follow --create-slot, --drop-slot, --replica-identity-full) ---
    def slot_row(self) -> tuple | None:
        """Return (plugin, database, wal_status, confirmed LSN as a number) of the slot, None when absent."""
        rows = self.query(
            "SELECT plugin, database, wal_status, pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s",
            [self.slot],
        )
        return rows[0] if rows else None

    def create_slot(self) -> tuple[bool, str]:
        """Create the slot (wal2json); return whether it was created, and what was done."""
        self._check_server()
        if self.slot_row() is not None:
            return False, f"replication slot {self.slot} exists already on {self.name}"
        self.query("SELECT pg_create_logical_replication_slot(%s, %s)", [self.slot, PLUGIN])
        return True, (
            f"created replication slot {self.slot} ({PLUGIN}) on {self.name}: it retains the WAL until "
            f"cache_follow confirms it; drop it with `cache_follow --database {self.alias} --drop-slot` "
            "when you stop following"
        )

    def drop_slot(self) -> str:
        if self.slot_row() is None:
            return f"there is no replication slot {self.slot} on {self.name}"
        self.query("SELECT pg_drop_replication_slot(%s)", [self.slot])
        return f"dropped replication slot {self.slot} on {self.name}: the WAL it held can be recycled"

    def install_ddl_log(self) -> str:
        """Create the DDL log table and the event trigger that fills it (event triggers need a superuser)."""
        try:
            ((schema,),) = self.query("SELECT quote_ident(current_schema())")
            self.query(INSTALL_DDL_LOG.format(log=f"{schema}.{DDL_LOG}", name=DDL_LOG))
        except psycopg.errors.InsufficientPrivilege:
            raise FollowerError(
                f"creating an event trigger on {self.name} needs a superuser, and {self.user!r} is not one: "
                f"run `cache_follow --database {self.alias} --ddl-log` once as a superuser"
            ) from None
        return (
            f"installed the DDL log on {self.name}: event trigger {DDL_LOG} writes each DDL statement into "
            f"table {DDL_LOG}, and the follower bumps the containers of every watched table it names"
        )

    def _find_ddl_log(self) -> tuple[str, str] | None:
        rows = self.query(
            "SELECT n.nspname FROM pg_event_trigger t, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.evtname = %s AND t.evtenabled <> 'D' AND c.oid = to_regclass(%s)",
            [DDL_LOG, DDL_LOG],
        )
        return (rows[0][0], DDL_LOG) if rows else None

    def notes(self) -> list[str]:
        if self.ddl_log is not None:
            return []
        return [
            f"DDL on {self.name} is not followed (no event trigger {DDL_LOG}): an ALTER TABLE that rewrites rows "
            f"leaves them cached until their TTL. Install it once with `cache_follow --database {self.alias} "
            "--ddl-log` (as a superuser)"
        ]

    def set_identity_full(self, tables) -> list[str]:
        """ALTER TABLE ... REPLICA IDENTITY FULL on every table ``verify`` would refuse; return their names."""
        done = []
        for schema, table in sorted(self.short_identities(tables)):
            self.query(f'ALTER TABLE "{schema}"."{table}" REPLICA IDENTITY FULL')
            done.append(f"{schema}.{table}")
        return done

    # --- Source ---------------------------------------------------------
    def preflight(self) -> None:
        self._check_server()
        row = self.slot_row()
        if row is None:
            raise FollowerError(
                f"there is no replication slot {self.slot} on {self.name}: create it with "
                f"`manage.py cache_follow --database {self.alias} --create-slot` (a slot retains the WAL "
                "until the follower confirms it; --drop-slot drops it)"
            )
        plugin, database, wal_status, _ = row
        if plugin != PLUGIN or database != self.database:
            raise FollowerError(
                f"replication slot {self.slot} on {self.name} decodes database {database!r} with {plugin!r}, "
                f"the follower needs {PLUGIN!r} on {self.database!r}: give another --slot, or drop that one"
            )
        if wal_status == "lost":
            raise self._invalidated()
        self.ddl_log = self._find_ddl_log()

    def _check_server(self) -> None:
        try:
            ((wal_level, replication),) = self.query(
                "SELECT current_setting('wal_level'), rolreplication OR rolsuper FROM pg_roles "
                "WHERE rolname = current_user"
            )
        except psycopg.Error as exc:
            raise FollowerError(f"cannot query {self.name} as {self.user!r}: {exc}") from None
        if wal_level != "logical":
            raise FollowerError(
                f"wal_level is {wal_level} on {self.name}, the follower needs logical decoding: "
                "ALTER SYSTEM SET wal_level = logical, then restart the server"
            )
        if not replication:
            raise self._grant_error()

    def _grant_error(self) -> FollowerError:
        return FollowerError(
            f"role {self.user!r} lacks the REPLICATION attribute on {self.name} (replication slots need it): "
            f"ALTER ROLE {self.user} REPLICATION"
        )

    def _invalidated(self) -> FollowerError:
        return FollowerError(
            f"replication slot {self.slot} on {self.name} was invalidated (it held more WAL than "
            "max_slot_wal_keep_size): the writes it lost cannot be followed. Recreate it with --drop-slot then "
            "--create-slot; the next start bumps every container generation"
        )

    def follows(self, alias: str) -> bool:
        return database_of(alias) == self._here

    def table_key(self, alias: str, db_table: str) -> tuple[str, str]:
        rows = self.query(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(quote_ident(%s))",
            [db_table],
        )
        return (rows[0][0] if rows else "public", db_table)

    def columns(self, keys):
        found: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in self.query(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE (table_schema, table_name) IN (SELECT * FROM unnest(%s::text[], %s::text[])) "
            "ORDER BY table_schema, table_name, ordinal_position",
            [[schema for schema, _ in keys], [table for _, table in keys]],
        ):
            found.setdefault((schema, table), []).append(column)
        return found

    def decode(self, field, value):
        return None if value is None else field.to_python(value)  # wal2json logs text, numbers, booleans

    def verify(self, tables) -> None:
        short = self.short_identities(tables)
        if short:
            lines = "; ".join(
                f"{schema}.{table} has REPLICA IDENTITY {identity}, so UPDATE and DELETE do not log the old "
                f"{', '.join(sorted(missing))} that container(s) {', '.join(sorted(names))} key on"
                for (schema, table), (identity, missing, names) in sorted(short.items())
            )
            raise FollowerError(
                f"{lines}: the follower would miss their old keys. Run `manage.py cache_follow --database "
                f"{self.alias} --replica-identity-full` (ALTER TABLE ... REPLICA IDENTITY FULL: every UPDATE and "
                "DELETE then logs the whole old row), or give the table a REPLICA IDENTITY USING INDEX that "
                "covers those columns"
            )

    def short_identities(self, tables) -> dict:
        """Return {(schema, table): (identity, missing columns, container names)} for the watched
        tables whose replica identity lacks a column some container's key is made of."""
        keys = list(tables.by_key)
        logged = {}
        for schema, table, identity, columns in self.query(
            "SELECT n.nspname, c.relname, c.relreplident, ARRAY(SELECT a.attname FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = c.oid "
            "AND (c.relreplident = 'd' AND i.indisprimary OR c.relreplident = 'i' AND i.indisreplident)) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            [[schema for schema, _ in keys], [table for _, table in keys]],
        ):
            logged[(schema, table)] = (identity, set(columns))
        short = {}
        for key, table in tables.by_key.items():
            identity, columns = logged.get(key, ("n", set()))
            if identity == "f":
                continue
            missing, names = set(), set()
            for maker in table.makers:
                needed = {column for column, *_ in maker.columns} - columns
                if needed:
                    missing |= needed
                    names.add(maker.definition.name)
            if missing:
                short[key] = (IDENTITY[identity], missing, names)
        return short

    def current(self) -> Position:
        row = self.slot_row()
        if row is None:
            raise FollowerError(f"there is no replication slot {self.slot} on {self.name}")
        return Position(self.slot, int(row[3]))

    oldest = current  # a slot never goes back: its confirmed position is the oldest change it still has

    def unresumable(self, stored: Position) -> str | None:
        if stored.log_file != self.slot:
            return f"was stored for replication slot {stored.log_file!r}, not {self.slot!r}"
        return None

    def stream(self, start: Position, tables, *, blocking: bool) -> Stream:
        from cachelayer.tasks.follow.walstream import WalStream

        return WalStream(self, tables, blocking=blocking)

    def fatal(self, error: BaseException) -> FollowerError | None:
        state = getattr(error, "sqlstate", None)
        if state == INSUFFICIENT_PRIVILEGE:
            return self._grant_error()
        if state == UNDEFINED_OBJECT:
            return FollowerError(
                f"replication slot {self.slot} was dropped on {self.name} while followed: the writes since "
                f"cannot be followed. Recreate it with `cache_follow --database {self.alias} --create-slot`; "
                "the next start bumps every container generation"
            )
        if state == PREREQUISITE_STATE:
            return self._invalidated()
        return None

    def lag(self, stored: Position) -> dict[str, Any]:
        """The slot's unconfirmed WAL, and how long ago the follower last polled it while WAL waits."""
        rows = self.query(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, "
            "greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint, s.wal_status, "
            "(SELECT extract(epoch FROM now() - max(a.query_start))::float FROM pg_stat_activity a "
            "WHERE a.application_name = %s) "
            "FROM pg_replication_slots s WHERE s.slot_name = %s",
            [self.application, self.slot],
        )
        if not rows:
            return {"server_position": f"no replication slot {self.slot}"}
        current, behind, wal_status, polled = rows[0]
        if wal_status == "lost":
            return {"server_position": f"replication slot {self.slot} invalidated"}
        seconds = 0.0 if behind == 0 else (None if polled is None else round(max(0.0, polled), 3))
        return {
            "server_position": str(Position(self.slot, int(current))),
            "lag_bytes": int(behind),
            "lag_seconds": seconds,
        }
