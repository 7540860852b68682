"""cache_follow: invalidate from the database's own log (every writer, not only this project).

MySQL/MariaDB: the row binlog, read as a replica. PostgreSQL: logical
decoding through a replication slot (wal2json), set up with --create-slot.
"""

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
        "Follow the log of a database (the MySQL/MariaDB row binlog as a replica, or PostgreSQL's WAL through a "
        "logical replication slot) and invalidate the old and new keys of every changed row in every container "
        "of its model; DDL (MySQL/MariaDB) and TRUNCATE bump generations. Resumes from the position stored in "
        "the database, or the slot (at least once). Run one per database server under a process supervisor; "
        "--once processes what the log holds now and exits. --status prints every follower's lag as its server "
        "measures it and exits 1 when one is stale or down. PostgreSQL set-up: --create-slot, "
        "--replica-identity-full, --ddl-log; --drop-slot when you stop following."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="DATABASES alias whose log to follow (default: default)"
        )
        parser.add_argument(
            "--server-id",
            type=int,
            help="MySQL/MariaDB: replica server id, unique among the server's replicas (default: derived from the alias)",
        )
        parser.add_argument(
            "--slot", help="PostgreSQL: the logical replication slot to read (default: cachelayer_<alias>)"
        )
        parser.add_argument(
            "--from-start",
            action="store_true",
            help="start at the oldest binlog the server has (PostgreSQL: the slot's position), not the stored position",
        )
        parser.add_argument("--once", action="store_true", help="process what is in the log now, then exit")
        parser.add_argument(
            "--status",
            action="store_true",
            help="print each follower's health (one line each) and exit: 1 when one is stale or down, or none ever ran",
        )
        parser.add_argument("--json", action="store_true", help="with --status: print it as JSON")
        setup = parser.add_mutually_exclusive_group()
        setup.add_argument(
            "--create-slot",
            action="store_true",
            help="PostgreSQL: create the replication slot (wal2json) and exit; it retains WAL until the follower "
            "confirms it. Forgets the stored position: the next start bumps every generation",
        )
        setup.add_argument(
            "--drop-slot", action="store_true", help="PostgreSQL: drop the replication slot (releases its WAL) and exit"
        )
        setup.add_argument(
            "--replica-identity-full",
            action="store_true",
            help="PostgreSQL: ALTER TABLE ... REPLICA IDENTITY FULL on the mapped tables whose identity lacks a "
            "container's key column (UPDATE and DELETE then log whole old rows), and exit",
        )
        setup.add_argument(
            "--ddl-log",
            action="store_true",
            help="PostgreSQL, as a superuser: install the event trigger that logs DDL into a table the follower "
            "decodes (an ALTER TABLE then bumps the containers of the tables it names), and exit",
        )

    def handle(self, *args, database, server_id, slot, from_start, once, verbosity, **options):
        if database not in connections:
            raise CommandError(f"unknown database alias {database!r}")
        postgresql = connections[database].vendor == "postgresql"
        if not postgresql:
            _require_binlog_extra()
        if options["status"]:
            return self._status(options["json"])
        setup = [name for name in ("create_slot", "drop_slot", "replica_identity_full", "ddl_log") if options[name]]
        if setup:
            if not postgresql:
                raise CommandError(f"--{setup[0].replace('_', '-')} is for PostgreSQL; {database!r} is not")
            return self._setup(database, slot, setup[0])
        from cachelayer.tasks.follow.follower import Follower

        follower = Follower(
            database,
            server_id,
            once=once,
            from_start=from_start,
            slot=slot,
            report=lambda message: self.stderr.write(f"cache_follow: {message}"),
        )
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: follower.stopping.set())
        follower.run()
        if verbosity >= 1:
            self.stdout.write(follower.summary())

    def _setup(self, database: str, slot: str | None, action: str) -> None:
        from cachelayer.engine.registry import registry
        from cachelayer.models import FollowerPosition
        from cachelayer.tasks.follow.tables import Tables
        from cachelayer.tasks.follow.wal import WalSource

        source = WalSource(database, slot=slot)
        try:
            if action == "create_slot":
                created, message = source.create_slot()
                self.stdout.write(message)
                if created:  # writes before the slot existed were never decoded: the next start bumps every generation
                    FollowerPosition.objects.filter(database=database).delete()
            elif action == "drop_slot":
                self.stdout.write(source.drop_slot())
            elif action == "ddl_log":
                self.stdout.write(source.install_ddl_log())
            else:
                registry.load()
                changed = source.set_identity_full(Tables.build(source, registry))
                self.stdout.write(
                    f"REPLICA IDENTITY FULL on {', '.join(changed)}"
                    if changed
                    else "every mapped table logs its old keys already"
                )
        finally:
            source.close()

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
