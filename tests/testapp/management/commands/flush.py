"""The tests' ``flush``: put back what the first flush left, in a few milliseconds.

``TransactionTestCase`` flushes the database after every test: a DELETE (TRUNCATE on
PostgreSQL) of every table, then post_migrate, in which Django creates every content
type and permission again and cachelayer its declared containers. That was 40-70 ms
of CPU and 45-150 ms of wall time a test, most of a run. Here the first flush of a
database runs as Django's, and the rows of the tables post_migrate fills whatever the
test (KEPT) are kept in memory. Every later flush of the same shape empties the
tables that hold a row (one query finds them) and writes those rows back, in one
transaction. Sequences stay where the test left them (no pk is used twice in a run,
as with Django's flush), and cachelayer hears what a flush tells it (its declared
containers created again: the configuration reloaded, their generations moved). Any
other flush (reset_sequences, cascade, no post_migrate), or one the database refuses,
is Django's.
"""

from django.contrib.contenttypes.models import ContentType
from django.core.management.commands import flush
from django.db import DatabaseError, connections, transaction

from cachelayer.engine.invalidation import record_configuration
from cachelayer.models import Container

# What post_migrate writes whatever the test, in an order its foreign keys allow: the
# rest (the outbox its delivery may have written when a test's cache was down, say)
# belonged to that one flush and is emptied.
KEPT = ("django_content_type", "auth_permission", "cachelayer_container")
Rows = dict[str, tuple[list[str], list[tuple]]]  # table -> its columns and rows
ROWS: dict[tuple[str, str], Rows] = {}  # (alias, NAME) -> the KEPT rows of its first flush


class Command(flush.Command):
    def handle(self, **options):
        using = options["database"]
        connection = connections[using]
        database = (using, connection.settings_dict["NAME"])
        if (
            options.get("reset_sequences", True)
            or options.get("inhibit_post_migrate", False)
            or options.get("allow_cascade", False)
        ):
            # The kept rows may now hold ids the sequences give again: the next flush is Django's.
            ROWS.pop(database, None)
            return super().handle(**options)
        try:
            restore(connection, ROWS[database])
        except (KeyError, DatabaseError):  # the first flush, or a table the test left in the way
            super().handle(**options)
            ROWS[database] = read(connection)
            return
        ContentType.objects.clear_cache()
        if "cachelayer_container" in ROWS[database]:  # (a router may keep cachelayer's tables out)
            names = list(Container.objects.using(using).filter(declared=True).values_list("name", flat=True))
            record_configuration(using, names)


def restore(connection, kept: Rows) -> None:
    """Empty every table that holds a row and write the KEPT rows back, in one transaction.

    Django's foreign keys are deferred on PostgreSQL and SQLite, and MariaDB's checks
    are off meanwhile, so the order of the DELETEs does not matter. PostgreSQL's
    TRUNCATE is not used: it cost ~100 ms for a few tables, against ~1 ms a DELETE."""
    quote = connection.ops.quote_name
    atomic = transaction.atomic(using=connection.alias)
    with atomic, connection.constraint_checks_disabled(), connection.cursor() as cursor:
        for table in [*written(connection), *kept]:
            cursor.execute(f"DELETE FROM {quote(table)}")
        for table, (columns, rows) in kept.items():
            if rows:
                row = "(" + ", ".join(["%s"] * len(columns)) + ")"
                cursor.execute(
                    f"INSERT INTO {quote(table)} ({', '.join(map(quote, columns))}) VALUES "
                    + ", ".join([row] * len(rows)),
                    [value for values in rows for value in values],
                )


def written(connection) -> list[str]:
    """The tables other than KEPT that hold a row, in one query (a DELETE of every table
    was 60 statements on MariaDB, of which a test writes to a few)."""
    tables = sorted(set(connection.introspection.django_table_names(only_existing=True, include_views=False)) - {*KEPT})
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"EXISTS (SELECT 1 FROM {quote(table)})" for table in tables))
        return [table for table, holds in zip(tables, cursor.fetchone(), strict=True) if holds]


def read(connection) -> Rows:
    """The columns and rows of every KEPT table of the database (a router may keep some out)."""
    kept = {}
    present = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for table in (table for table in KEPT if table in present):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            kept[table] = ([column[0] for column in cursor.description], cursor.fetchall())
    return kept
