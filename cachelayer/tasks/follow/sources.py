"""Which source reads the log of a DATABASES alias (binlog.py or wal.py, by engine).

Apart from source.py, which both sources import: the binlog's client is an
extra, imported only when a MySQL/MariaDB alias is followed.
"""

from __future__ import annotations

from django.db import connections

from cachelayer.exceptions import FollowerError
from cachelayer.tasks.follow.source import Source


def open_source(alias: str, *, server_id: int | None = None, freeze: bool = True, slot: str | None = None) -> Source:
    """Return the source that reads the log of DATABASES[alias]."""
    vendor = connections[alias].vendor
    if vendor == "postgresql":
        from cachelayer.tasks.follow.wal import WalSource

        return WalSource(alias, slot=slot)
    if vendor != "mysql":
        raise FollowerError(
            f"database {alias!r} is {vendor}, not MySQL/MariaDB or PostgreSQL: there is no log to follow"
        )
    try:
        from cachelayer.tasks.follow.binlog import BinlogSource
    except ModuleNotFoundError as exc:
        if exc.name not in ("pymysqlreplication", "pymysql"):
            raise
        raise FollowerError(
            "cache_follow needs the binlog extra (mysql-replication): pip install 'cachelayer[binlog]'"
        ) from None
    return BinlogSource(alias, server_id=server_id, freeze=freeze)
