"""Database routing of the test suite (the MariaDB and PostgreSQL halves)."""


class BinlogRouter:
    """Keep only the test app's tables in the follower tests' binlog (and WAL) database.

    cachelayer's own tables (containers, outbox, follower positions) stay in
    ``default``, so nothing but a container pointed at ``binlog`` ever
    reaches that server, and processes that do not follow it never need it.
    """

    def allow_migrate(self, db, app_label, **hints):
        if db in ("binlog", "wal"):
            return app_label == "testapp"
        return None
