"""The followed server: how to reach it, whether it can be followed, its binlogs.

Everything here runs on one control connection of its own (PyMySQL, which
mysql-replication is built on), apart from Django's, so that the follower's
queries never share a transaction with anything else.
"""

from __future__ import annotations

import pymysql
from django.db import connections

from cachelayer.exceptions import FollowerError
from cachelayer.tasks.follow.aliases import server_of
from cachelayer.tasks.follow.control import ControlConnection
from cachelayer.tasks.follow.position import FIRST_EVENT, Position

CONNECT_TIMEOUT = 5  # seconds to reach the server
READ_TIMEOUT = 30  # seconds a control query may take
ACCESS_DENIED = (1045, 1142, 1227)  # bad password, table / global privilege missing
NO_SUCH_FUNCTION = 1305  # ER_SP_DOES_NOT_EXIST: BINLOG_GTID_POS on MySQL
# Privileges as information_schema.USER_PRIVILEGES names them (MySQL, then MariaDB 10.5+ names).
REPLICATION_CLIENT = {"REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"}
REPLICATION_SLAVE = {"REPLICATION SLAVE"}


def connection_settings(alias: str) -> dict:
    """Return PyMySQL connection arguments for the server of DATABASES[alias]."""
    params = connections.settings[alias]
    options = params.get("OPTIONS", {})
    host = params.get("HOST") or "localhost"
    settings = {
        "user": params.get("USER") or options.get("user", ""),
        "password": params.get("PASSWORD") or options.get("password", ""),
        "connect_timeout": CONNECT_TIMEOUT,
    }
    if host.startswith("/"):
        settings["unix_socket"] = host
    else:
        settings.update(host=host, port=int(params.get("PORT") or 3306))
    return settings


class BinlogServer(ControlConnection):
    """The server behind one DATABASES alias, seen through a control connection."""

    lost, broken = (pymysql.OperationalError,), (pymysql.Error,)

    def __init__(self, alias: str):
        if server_of(alias) is None:
            raise FollowerError(f"database {alias!r} is not MySQL/MariaDB: there is no binlog to follow")
        self.alias = alias
        self.settings = connection_settings(alias)
        self.name = f"{self.settings.get('host', self.settings.get('unix_socket'))}:{self.settings.get('port', '')}"

    def _connect(self):
        return pymysql.connect(**self.settings, read_timeout=READ_TIMEOUT, autocommit=True)

    def _run(self, connection, sql: str, args) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def preflight(self) -> None:
        """Raise FollowerError, naming the setting or GRANT to fix, when the server cannot be followed."""
        user = self.settings["user"]
        try:
            ((log_bin, binlog_format, row_image),) = self.query("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
            privileges = {
                row[0]
                for row in self.query(
                    "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = "
                    "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
                )
            }
        except pymysql.Error as exc:
            raise FollowerError(f"cannot query {self.name} as {user!r}: {exc.args[-1]}") from None
        where = f"on {self.name}"
        if not int(log_bin):
            raise FollowerError(
                f"the binary log is off {where}: start the server with log_bin (e.g. log_bin = mysql-bin, "
                "server_id = 1, binlog_format = ROW, binlog_row_image = FULL in its config file) and restart it"
            )
        if binlog_format.upper() != "ROW":
            raise FollowerError(
                f"binlog_format is {binlog_format} {where}, the follower needs ROW: "
                "SET GLOBAL binlog_format = 'ROW' (and binlog_format = ROW in the config file)"
            )
        if row_image.upper() != "FULL":
            raise FollowerError(
                f"binlog_row_image is {row_image} {where}, the follower needs FULL (old keys live in the before image): "
                "SET GLOBAL binlog_row_image = 'FULL' (and binlog_row_image = FULL in the config file)"
            )
        missing = [
            grant
            for grant, names in (("REPLICATION SLAVE", REPLICATION_SLAVE), ("REPLICATION CLIENT", REPLICATION_CLIENT))
            if not privileges & names
        ]
        if missing:
            raise self.grant_error(missing)

    def grant_error(self, missing=("REPLICATION SLAVE", "REPLICATION CLIENT")) -> FollowerError:
        user = self.settings["user"]
        return FollowerError(
            f"user {user!r} lacks {' and '.join(missing)} on {self.name}: "
            f"GRANT {', '.join(missing)} ON *.* TO '{user}'@'<its host>'"
        )

    def row_metadata_full(self) -> bool:
        """Return True when row events carry column names (binlog_row_metadata = FULL)."""
        rows = self.query("SHOW VARIABLES LIKE 'binlog_row_metadata'")
        return bool(rows) and rows[0][1].upper() == "FULL"

    def binary_logs(self) -> list[tuple[str, int]]:
        """Return ``SHOW BINARY LOGS`` as (file, size), oldest first."""
        return [(row[0], int(row[1])) for row in self.query("SHOW BINARY LOGS")]

    def current(self) -> Position:
        """Return the end of the newest binlog (where a follower starting now begins)."""
        name, size = self.binary_logs()[-1]
        return Position(name, size)

    def logged_at(self, position: Position) -> bool | None:
        """Return whether this server logged the transaction ``position.gtid`` right
        before ``position``: False after a failover or RESET MASTER, when the file and
        offset name another history. None when it cannot tell (no GTID stored, or
        MySQL, which has no ``BINLOG_GTID_POS``)."""
        if not position.gtid:
            return None
        try:
            ((state,),) = self.query("SELECT BINLOG_GTID_POS(%s, %s)", [position.log_file, position.log_pos])
        except pymysql.Error as exc:
            if exc.args and exc.args[0] == NO_SUCH_FUNCTION:
                return None
            raise
        return state is not None and position.gtid in state.split(",")

    def oldest(self) -> Position:
        """Return the start of the oldest binlog the server still has."""
        return Position(self.binary_logs()[0][0], FIRST_EVENT)

    def columns(self, schemas) -> dict[tuple[str, str], list[str]]:
        """Return the column names of every table of ``schemas``, in table order."""
        found: dict[tuple[str, str], list[str]] = {}
        if schemas:
            marks = ", ".join(["%s"] * len(schemas))
            for schema, table, column in self.query(
                "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                f"WHERE TABLE_SCHEMA IN ({marks}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
                list(schemas),
            ):
                found.setdefault((schema, table), []).append(column)
        return found

    def cascades(self, schemas) -> list[tuple]:
        """Return foreign keys that change child rows (CASCADE, SET NULL, SET DEFAULT) as
        (child schema, child table, parent schema, parent table, parent column, on update, on delete)."""
        if not schemas:
            return []
        marks = ", ".join(["%s"] * len(schemas))
        return self.query(
            "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, "
            "k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE "
            "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
            "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
            "AND r.TABLE_NAME = k.TABLE_NAME "
            f"WHERE k.REFERENCED_TABLE_NAME IS NOT NULL AND k.REFERENCED_TABLE_SCHEMA IN ({marks}) "
            "AND (r.UPDATE_RULE <> 'RESTRICT' AND r.UPDATE_RULE <> 'NO ACTION' "
            "OR r.DELETE_RULE <> 'RESTRICT' AND r.DELETE_RULE <> 'NO ACTION')",
            list(schemas),
        )
