"""cache_follow: invalidate from the MySQL/MariaDB row binlog (every writer, not only this project)."""

import json
import signal

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from cachelayer.cli import ContainerCommand


def _require_binlog_extra() -> None:
    """The follower reads the binlog with mysql-replication, an extra: say so, not a traceback."""
    try:
        import pymysqlreplication  # noqa: F401
    except ModuleNotFoundError:
        raise CommandError(
            "cache_follow needs the binlog extra (mysql-replication): pip install 'cachelayer[binlog]'"
        ) from None


class Command(ContainerCommand):
    help = (
        "Follow the row binlog of a database's server as a replica and invalidate the old and new keys "
        "of every changed row in every container of its model; DDL and TRUNCATE bump generations. "
        "Resumes from the position stored in the database (at least once). Run one per database "
        "server under a process supervisor; --once processes what the binlog holds now and exits. "
        "--status prints every follower's lag as its server measures it and exits 1 when one is stale or down."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="DATABASES alias whose server to follow (default: default)"
        )
        parser.add_argument(
            "--server-id",
            type=int,
            help="replica server id, unique among the server's replicas (default: derived from the alias)",
        )
        parser.add_argument(
            "--from-start",
            action="store_true",
            help="start at the oldest binlog the server has, not at the stored position",
        )
        parser.add_argument("--once", action="store_true", help="process what is in the binlog now, then exit")
        parser.add_argument(
            "--status",
            action="store_true",
            help="print each follower's health (one line each) and exit: 1 when one is stale or down, or none ever ran",
        )
        parser.add_argument("--json", action="store_true", help="with --status: print it as JSON")

    def handle(self, *args, database, server_id, from_start, once, verbosity, **options):
        _require_binlog_extra()
        from cachelayer.tasks.follow.follower import Follower
        from cachelayer.tasks.follow.server import default_server_id

        if options["status"]:
            return self._status(options["json"])
        if database not in connections:
            raise CommandError(f"unknown database alias {database!r}")
        follower = Follower(
            database,
            server_id or default_server_id(database),
            once=once,
            from_start=from_start,
            report=lambda message: self.stderr.write(f"cache_follow: {message}"),
        )
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: follower.stopping.set())
        position = follower.run()
        if verbosity >= 1:
            totals = follower.totals
            self.stdout.write(
                f"{database}: at {position} ({totals['transactions']} transactions, {totals['rows']} row events, "
                f"{totals['keys']} keys, {totals['generations']} generation bumps)"
            )

    def _status(self, as_json: bool) -> None:
        from cachelayer.tasks.follow import health, progress

        rows = progress.status()
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2, sort_keys=True, default=str))
        else:
            for row in rows:
                self.stdout.write(f"{row['database']}: {progress.describe(row)}")
        unhealthy = sorted(row["database"] for row in rows if row["state"] in health.UNHEALTHY)
        if not rows:
            raise CommandError("no follower has stored a position: none ever ran (or the database is unreachable)")
        if unhealthy:
            raise CommandError(f"follower(s) of {', '.join(unhealthy)} stale, down or unreachable")
