"""``manage.py cache_serve``: containers over the memcached text protocol (like daemon_memcached)."""

from __future__ import annotations

import argparse
import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from cachelayer.exceptions import ServeConfigurationError
from cachelayer.protocol.server import serve

SIZE_SUFFIXES = {"k": 1024, "m": 1024 * 1024}


def positive(text: str) -> int:
    """Parse a count that must be at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("the number must be at least 1")
    return value


def size(text: str) -> int:
    """Parse a byte count the way memcached's -I does: 1048576, 512k, 1m."""
    text = text.strip().lower()
    factor = SIZE_SUFFIXES.get(text[-1:], 1)
    try:
        value = int(text[:-1] if factor > 1 else text) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 1048576, 512k, 1m)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the size must be positive")
    return value


class Command(BaseCommand):
    help = "Serve exposed containers to any memcached client (memcached ASCII protocol)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: loopback).")
        parser.add_argument("--port", type=int, default=11211, help="TCP port (0 = any free port).")
        parser.add_argument("--max-connections", type=positive, default=1024, help="Clients served at once.")
        parser.add_argument(
            "--max-peer-connections",
            type=positive,
            default=256,
            help="Connections one client address may hold at once (so one peer cannot take every slot).",
        )
        parser.add_argument(
            "--idle-timeout",
            type=float,
            default=300.0,
            help="Seconds a client may stay silent between commands before it is dropped (0 = never).",
        )
        parser.add_argument(
            "--db-workers",
            type=positive,
            default=4,
            help="Threads (each with its own database connections) that run the commands needing the database.",
        )
        parser.add_argument("--item-size-max", type=size, default=1024 * 1024, help="Largest value (512k, 1m).")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1,
            help="Commit every N writes of a connection (daemon_memcached_w_batch_size; 1 = every write).",
        )
        parser.add_argument(
            "--commit-interval",
            type=float,
            default=0.5,
            help="Seconds after its first write an open batch commits anyway, so the longest a batch "
            "holds a row lock (innodb_api_bk_commit_interval).",
        )
        parser.add_argument(
            "--read-timeout",
            type=float,
            default=30.0,
            help="Seconds a started command line or value may take to arrive before the client is dropped.",
        )
        parser.add_argument(
            "--auth-file",
            help="Require a login from every client (memcached -Y: username:password lines; default: "
            "CACHELAYER['PROTOCOL_AUTH_FILE']). Needed to listen on anything but loopback.",
        )

    def handle(self, *args, **options):
        settings = {
            name: options[name]
            for name in (
                "host",
                "port",
                "max_connections",
                "item_size_max",
                "batch_size",
                "commit_interval",
                "read_timeout",
                "max_peer_connections",
                "idle_timeout",
                "db_workers",
                "auth_file",
            )
        }

        def ready(server):
            self.stdout.write(f"cache_serve listening on {server.host}:{server.port}", ending="\n")
            self.stdout.flush()

        try:
            asyncio.run(_until_signalled(ready, settings))
        except ServeConfigurationError as exc:
            raise CommandError(str(exc)) from None


async def _until_signalled(ready, settings: dict) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly: open batches commit, the
    database workers close their connections (a process manager's stop is SIGTERM)."""
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await serve(ready=ready, stop=stop, **settings)
