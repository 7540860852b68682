"""The binlog follower (``manage.py cache_follow``).

In-process invalidation only sees writes made through this Django project.
The follower reads the MySQL/MariaDB row binlog as a replica would and
invalidates the old and new keys of every changed row in every container of
its model, so raw SQL, other services, the console and database-level
cascades invalidate too. Modules, lowest first:

    position   where the follower is in the binlog (a value, no I/O)
    ddl        which tables a statement mentions (pure)
    server     the followed server: settings, preflight checks, binlog list
    tables     which tables are watched and how a row becomes keys
    stream     the reader thread: binlog events -> committed transactions
    health     how far behind the server a follower is, measured on the server
    progress   the stored position, the heartbeat and the live status (FollowerPosition)
    follower   the loop: deliver, store the position, reconnect, reload
    checks     the system check for a server nobody follows
"""
