"""The follower (``manage.py cache_follow``): the binlog of MySQL/MariaDB, the WAL of PostgreSQL.

In-process invalidation only sees writes made through this Django project.
The follower reads the database's own log — the MySQL/MariaDB row binlog as
a replica would, or PostgreSQL's logical decoding through a replication
slot — and invalidates the old and new keys of every changed row in every
container of its model, so raw SQL, other services, the console and
database-level cascades invalidate too. Modules, lowest first:

    position   where the follower is in the log (a value, no I/O)
    aliases    which server or database an alias names (no database client)
    ddl        which tables a statement mentions (pure)
    tables     which tables are watched and how a logged row becomes keys
    stream     the reader thread: the log in, committed transactions out
    source     what the follower needs of a followed database (the interface)
    server     the MySQL/MariaDB server: settings, preflight checks, binlog list
    binlog     the MySQL/MariaDB source: binlog events, lag measured on the server
    wal        the PostgreSQL source: the slot, REPLICA IDENTITY, lag measured on the server
    walstream  the PostgreSQL reader: wal2json changes peeked from the slot, advanced after delivery
    sources    which source an alias's engine needs
    health     how far behind the server a follower is, measured on the server
    progress   the stored position, the heartbeat and the live status (FollowerPosition)
    follower   the loop: deliver, store the position, reconnect, reload
    checks     the system check for a MySQL/MariaDB server nobody follows
"""
