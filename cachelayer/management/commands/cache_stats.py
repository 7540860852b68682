"""cache_stats: per-container counters and the cache servers' own statistics (like memstat)."""

import json

from django.core.management.base import CommandError

from cachelayer.adapters.registry import get_adapter
from cachelayer.cli import ContainerCommand
from cachelayer.engine import stats
from cachelayer.engine.registry import registry
from cachelayer.tasks.follow import progress

COLUMNS = (*stats.COUNTERS, "hit_ratio", stats.LAST_FLUSH)
SERVER_SUMMARY = (  # memcached `stats` and Redis `INFO` fields worth a glance; -v 2 prints all
    "version",
    "redis_version",
    "uptime",
    "uptime_in_seconds",
    "curr_connections",
    "connected_clients",
    "curr_items",
    "bytes",
    "used_memory_human",
    "limit_maxbytes",
    "get_hits",
    "get_misses",
    "keyspace_hits",
    "keyspace_misses",
    "evictions",
    "evicted_keys",
)


def _plain(value):
    """Return a server statistic as JSON can carry it."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Command(ContainerCommand):
    help = (
        "Print every container's counters, summed over all processes (hits, misses, hit ratio, "
        "fills, invalidations, lease waits, errors, last flush), then each cache server's own "
        "statistics (memcached `stats`, Redis `INFO`), like memstat. --json prints everything as JSON. "
        "Exits 1 when a cache server or the database cannot be reached."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON document")

    def handle(self, *args, verbosity, **options):
        registry.load()
        names = [definition.name for definition in registry.definitions()]
        counters = stats.shared(names)
        aliases = registry.cache_aliases()
        servers = {alias: _plain(get_adapter(alias).server_stats()) for alias in aliases}
        followers = progress.status()
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"containers": counters, "servers": servers, "followers": followers},
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
            )
        else:
            self._print(names, counters, followers, servers, verbosity)
        down = [
            f"{alias!r} server {server}"
            for alias, by_server in servers.items()
            for server, values in by_server.items()
            if "error" in values
        ]
        if down:  # what could be read is printed; the exit status says it is not everything
            raise CommandError(f"cache {', '.join(down)} cannot be reached: counters and statistics are incomplete")

    def _print(self, names, counters, followers, servers, verbosity):
        self._table(names, counters)
        self._followers(followers)
        for alias, by_server in servers.items():
            for server, values in by_server.items():
                self.stdout.write(f"\ncache {alias!r}, server {server}:")
                shown = (
                    values
                    if verbosity >= 2 or "error" in values
                    else {k: values[k] for k in SERVER_SUMMARY if k in values}
                )
                for key, value in shown.items():
                    self.stdout.write(f"  {key}: {value}")

    def _followers(self, followers):
        """Print each follower (binlog or WAL)'s state, lag (measured on its server), rate and last error."""
        for row in followers:
            self.stdout.write(f"\nfollower of {row['database']!r}: {progress.describe(row)}")
            if row["last_error"]:
                self.stdout.write(f"  last error: {row['last_error']}")

    def _table(self, names, counters):
        rows = [("container", *COLUMNS)]
        for name in names:
            values = counters[name]
            if "error" in values:
                rows.append((name, f"error: {values['error']}", *[""] * (len(COLUMNS) - 1)))
            else:
                rows.append((name, *(stats.display(c, values[c]) for c in COLUMNS)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
