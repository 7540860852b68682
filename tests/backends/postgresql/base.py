"""Django's PostgreSQL backend with a test flush that deletes rows instead of truncating.

Every ``transactional_db`` test ends with Django's ``flush``. On PostgreSQL that
is one ``TRUNCATE`` of all ~50 tables, which gives each table and index a new
file and took 0.5-0.7 s per test: most of the PostgreSQL run. ``DELETE`` of
the few rows a test leaves takes milliseconds. Django's foreign keys are
``DEFERRABLE INITIALLY DEFERRED`` and the flush runs in one transaction, so
the order of the deletes does not matter. A flush that must reset sequences
or cascade keeps Django's TRUNCATE. Nothing else differs from what users run.
"""

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade:
            return super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
