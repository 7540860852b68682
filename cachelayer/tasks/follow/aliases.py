"""Which database server an alias names, and the follower's stable id for it.

Kept apart from the sources so that the system check (and ``--status`` of a
WAL follower) runs without the binlog client (mysql-replication, the
``binlog`` extra) installed.
"""

from __future__ import annotations

import zlib

from django.db import connections


def server_of(alias: str) -> tuple[str, str] | None:
    """Return (host, port) of a MySQL/MariaDB alias, None for other engines."""
    params = connections.settings[alias]
    if not params["ENGINE"].endswith("mysql"):
        return None
    return (params.get("HOST") or "localhost", str(params.get("PORT") or 3306))


def database_of(alias: str) -> tuple[str, str, str] | None:
    """Return (host, port, database) of a PostgreSQL alias (logical decoding is per database), else None."""
    params = connections.settings[alias]
    if connections[alias].vendor != "postgresql":
        return None
    return (params.get("HOST") or "localhost", str(params.get("PORT") or 5432), params.get("NAME") or "")


def default_server_id(alias: str) -> int:
    """Return a stable replica server id for ``alias`` (away from the small ids servers use)."""
    return 1_000_000 + zlib.crc32(alias.encode()) % 1_000_000_000
