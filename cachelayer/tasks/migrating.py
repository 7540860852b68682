"""What a migrate plan changed in stored rows, and the containers it outdates.

The schema fingerprint (core/schema.py) turns payloads of other model code
into misses, but a process still running the old code (a rolling deploy)
keeps its fingerprint: after an AlterField that rounds a column, or one that
fills NULLs with a default, its payloads would still match. So ``migrate``
bumps the generation of every container whose table an operation of the
plan touched, and of no other:

- AlterField, RemoveField, RenameField: the model's table (and an m2m
  field's own table);
- AddField when existing rows get a value (a ``default`` or ``db_default``);
  undone, any AddField (it drops the column);
- RunSQL and RunPython: any table (their SQL and code name none);
- SeparateDatabaseAndState: what its database operations touch.

A model the plan's final state does not know (renamed or deleted later in
the plan) also counts as any table: an extra miss is cheap, a stale row is not.
"""

from __future__ import annotations

from django.db import migrations
from django.db.models import NOT_PROVIDED

ANY_TABLE = None  # touched_tables' answer when the plan may have changed rows anywhere

FIELD_OPERATIONS = (migrations.AlterField, migrations.RemoveField, migrations.RenameField)
CODE_OPERATIONS = (migrations.RunSQL, migrations.RunPython)


def _fills_rows(operation, backwards: bool) -> bool:
    """Return True when an operation may change the values of existing rows."""
    if isinstance(operation, migrations.AddField):
        field = operation.field
        return (
            backwards
            or field.default is not NOT_PROVIDED
            or getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED
        )
    return isinstance(operation, FIELD_OPERATIONS)


def _tables(state_apps, app_label: str, operation) -> set[str] | None:
    """Return the tables a field operation on ``app_label`` touched, or ANY_TABLE when its model is unknown."""
    try:
        model = state_apps.get_model(app_label, operation.model_name)
    except LookupError:
        return ANY_TABLE
    tables = {model._meta.db_table}
    field = getattr(operation, "field", None)
    if field is not None and field.many_to_many:
        names = {operation.name}
    elif isinstance(operation, migrations.RenameField):
        names = {operation.old_name, operation.new_name}
    else:
        names = {operation.name} if isinstance(operation, migrations.RemoveField) else set()
    for m2m in model._meta.local_many_to_many:
        if m2m.name in names:
            tables.add(m2m.remote_field.through._meta.db_table)
    return tables


def _operations(operations):
    """Yield the operations that reach the database (SeparateDatabaseAndState's database ones)."""
    for operation in operations:
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from _operations(operation.database_operations)
        else:
            yield operation


def touched_tables(plan, state_apps) -> set[str] | None:
    """Return the tables whose rows the migrations of ``plan`` may have changed
    (ANY_TABLE: possibly every one). ``state_apps``: the models as migrate left them."""
    tables: set[str] = set()
    for migration, backwards in plan or ():
        for operation in _operations(migration.operations):
            if isinstance(operation, CODE_OPERATIONS):
                return ANY_TABLE
            if _fills_rows(operation, backwards):
                found = _tables(state_apps, migration.app_label, operation)
                if found is ANY_TABLE:
                    return ANY_TABLE
                tables |= found
    return tables


def outdated(definitions, tables: set[str] | None) -> list:
    """Return the definitions among ``definitions`` whose table is in ``tables`` (every one for ANY_TABLE)."""
    return [d for d in definitions if tables is ANY_TABLE or d.model._meta.db_table in tables]
