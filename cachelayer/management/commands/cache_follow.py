"""cache_follow: invalidate from the MySQL/MariaDB row binlog (every writer, not only this project)."""

import signal

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from cachelayer.cli import ContainerCommand
from cachelayer.tasks.follow.follower import Follower, default_server_id


class Command(ContainerCommand):
    help = (
        "Follow the row binlog of a database's server as a replica and invalidate the old and new keys "
        "of every changed row in every container of its model; DDL and TRUNCATE bump generations. "
        "Resumes from the position stored in the database (at least once). Run one per database "
        "server under a process supervisor; --once processes what the binlog holds now and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="DATABASES alias whose server to follow (default: default)")
        parser.add_argument("--server-id", type=int, help="replica server id, unique among the server's replicas (default: derived from the alias)")
        parser.add_argument("--from-start", action="store_true", help="start at the oldest binlog the server has, not at the stored position")
        parser.add_argument("--once", action="store_true", help="process what is in the binlog now, then exit")

    def handle(self, *args, database, server_id, from_start, once, verbosity, **options):
        if database not in connections:
            raise CommandError(f"unknown database alias {database!r}")
        follower = Follower(
            database, server_id or default_server_id(database), once=once, from_start=from_start,
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

