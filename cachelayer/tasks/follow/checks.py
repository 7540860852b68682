"""The follower's system checks.

cachelayer.W020: containers on a MySQL/MariaDB server that no follower has
followed. Without cache_follow only writes made through this project
invalidate; a write from the console, another service or a database cascade
leaves the cache stale until the TTL. The warning goes once a follower stored
a position.

cachelayer.W021: a followed PostgreSQL table whose REPLICA IDENTITY does not
log a column some container keys on (a container added since the follower
started, say): the follower cannot see that column's old value, and refuses
to start until the identity covers it.
"""

from __future__ import annotations

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError, connections, router

from cachelayer.engine import database
from cachelayer.tasks.follow.aliases import server_of


def _followed_aliases() -> set[str] | None:
    """Load the definitions and return the aliases a follower stored a position for
    (None before migrate: nothing to check yet)."""
    from cachelayer.engine.registry import registry
    from cachelayer.models import FollowerPosition

    try:
        registry.load()
        with database.guarded(router.db_for_read(FollowerPosition)):
            return set(FollowerPosition.objects.values_list("database", flat=True))
    except DatabaseError:
        return None


@register(Tags.database, "cachelayer")
def check_follower(app_configs=None, databases=None, **kwargs):
    from cachelayer.engine.registry import registry

    aliases = _followed_aliases() if databases else None
    if aliases is None:
        return []
    followed = {server_of(alias) for alias in aliases if alias in connections}
    unfollowed: dict[str, list[str]] = {}
    for definition in registry.definitions():
        alias = definition.db_alias()
        server = server_of(alias)
        if server is not None and server not in followed:
            unfollowed.setdefault(alias, []).append(definition.name)
    return [
        Warning(
            f"Containers {', '.join(sorted(names))} live on database {alias!r} (MySQL/MariaDB), "
            "whose binlog no cache_follow has followed: writes made outside this project leave their cache stale.",
            hint=f"Enable the row binlog and run `manage.py cache_follow --database {alias}` under a supervisor "
            "(docs/follower.md, 'Binlog follower').",
            obj=alias,
            id="cachelayer.W020",
        )
        for alias, names in sorted(unfollowed.items())
    ]


@register(Tags.database, "cachelayer")
def check_replica_identity(app_configs=None, databases=None, **kwargs):
    from cachelayer.engine.registry import registry

    followed = _followed_aliases() if databases else None
    if followed is None:
        return []
    found = []
    for alias in sorted(followed & set(databases)):
        if alias not in connections or connections[alias].vendor != "postgresql":
            continue
        from cachelayer.tasks.follow.tables import Tables
        from cachelayer.tasks.follow.wal import WalSource

        source = WalSource(alias)
        try:
            short = source.short_identities(Tables.build(source, registry))
        except source.errors:
            continue  # unreachable now: cache_follow --status says so
        finally:
            source.close()
        found += [
            Warning(
                f"Table {schema}.{table} has REPLICA IDENTITY {identity}: UPDATE and DELETE do not log the old "
                f"{', '.join(sorted(missing))} that container(s) {', '.join(sorted(names))} key on, so "
                f"cache_follow on {alias!r} cannot outdate their old keys and refuses to start.",
                hint=f"manage.py cache_follow --database {alias} --replica-identity-full (docs/follower.md, 'WAL follower').",
                obj=alias,
                id="cachelayer.W021",
            )
            for (schema, table), (identity, missing, names) in sorted(short.items())
        ]
    return found
