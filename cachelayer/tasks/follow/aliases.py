"""Which database server an alias names: one follower per server, whatever its aliases.

Kept apart from server.py so that the system check runs without the binlog
client (mysql-replication, the ``binlog`` extra) installed.
"""

from __future__ import annotations

from django.db import connections


def server_of(alias: str) -> tuple[str, str] | None:
    """Return (host, port) of a MySQL/MariaDB alias, None for other engines."""
    params = connections.settings[alias]
    if not params["ENGINE"].endswith("mysql"):
        return None
    return (params.get("HOST") or "localhost", str(params.get("PORT") or 3306))
