"""cachelayer.W020: containers on a MySQL/MariaDB server that no follower has followed.

Without cache_follow only writes made through this project invalidate; a
write from the console, another service or a database cascade leaves the
cache stale until the TTL. The warning goes once a follower stored a position.
"""

from __future__ import annotations

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, connections, router

from cachelayer.engine import database
from cachelayer.tasks.follow.aliases import server_of


@register(Tags.database, "cachelayer")
def check_follower(app_configs=None, databases=None, **kwargs):
    from cachelayer.engine.registry import registry
    from cachelayer.models import FollowerPosition

    if not databases:
        return []
    try:
        registry.load()
        with database.guarded(router.db_for_read(FollowerPosition)):
            followed = {
                server_of(alias)
                for alias in FollowerPosition.objects.values_list("database", flat=True)
                if alias in connections
            }
    except DatabaseError:
        return []  # not migrated yet
    unfollowed: dict[str, list[str]] = {}
    for definitions in registry.by_model.values():
        for definition in definitions:
            alias = definition.db_alias()
            server = server_of(alias)
            if server is not None and server not in followed:
                unfollowed.setdefault(alias, []).append(definition.name)
    return [
        Warning(
            f"Containers {', '.join(sorted(names))} live on database {alias!r} (MySQL/MariaDB), "
            "whose binlog no cache_follow has followed: writes made outside this project leave their cache stale.",
            hint=f"Enable the row binlog and run `manage.py cache_follow --database {alias}` under a supervisor "
            "(README: Binlog follower).",
            obj=alias,
            id="cachelayer.W020",
        )
        for alias, names in sorted(unfollowed.items())
    ]
