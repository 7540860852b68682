"""Row snapshots (``{attname: value}``): what a write needs to know to outdate a row.

A row is cached under each container's key. A write must outdate the key the
row has in the database when it is written (old) and the key it ends with
(new). An instance in memory cannot tell the old one: it may have been built
by hand, loaded without its key columns, or loaded before another writer
changed them. So the key columns of containers not keyed by the primary key
are read from the database, locked when inside ``atomic``, right before the
write. Containers keyed by the primary key need no query.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connections

from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import registry


def key_attnames(definitions: list[Definition]) -> set[str]:
    """Return the attnames of every key column of ``definitions``."""
    return {f.attname for definition in definitions for f in definition.key_fields}


def needs_database(definitions: list[Definition]) -> set[str]:
    """Return the key attnames an instance cannot vouch for (all but the primary key)."""
    return {f.attname for d in definitions for f in d.key_fields if not (len(d.key_fields) == 1 and f.primary_key)}


def loaded(instance) -> dict:
    """Return the concrete field values an instance holds (deferred ones left out)."""
    values = instance.__dict__
    return {f.attname: values[f.attname] for f in instance._meta.concrete_fields if f.attname in values}


def written(model, using: str, pk, assigned: dict) -> dict:
    """Return the snapshot of a row just saved from the values its instance was given.

    A value may be an expression the database computed (``F("n") + 1``,
    ``Concat(...)``): the instance holds the expression, not the value. Those
    are left out, and when one is a key column the row's key columns are read
    back from the database (in the save's transaction, when there is one).
    (A ``bulk_update`` runs ``QuerySet.update``, which reads them itself.)
    """
    computed = {attname for attname, value in assigned.items() if hasattr(value, "resolve_expression")}
    if not computed:
        return assigned
    plain = {attname: value for attname, value in assigned.items() if attname not in computed}
    every, _ = mapped_key_attnames(model)
    if computed & every:
        plain.update(read(model, using, [pk], every).get(pk, {}))
    return plain


# (model, alias, attnames, number of pks, locked) -> the query's SQL, or "" when
# its result needs Django's converters (then the ORM runs it every time).
_compiled: dict[tuple, str] = {}


def read(model, using: str, pks, attnames) -> dict:
    """Return ``{pk: {attname: value}}`` for the rows of ``pks`` as the database has them now,
    keyed by the pks as given (``"07"`` finds the row 7; the snapshot holds 7).

    Locks them (SELECT ... FOR UPDATE) inside ``atomic``, so that no other
    writer can change their keys between this read and the write. Every
    ``save()`` of a model with a container not keyed by the primary key runs
    it, so the query is compiled once per shape and then sent as it is:
    building it through the ORM cost more than the query (~110 us of ~180).
    """
    pks = list(dict.fromkeys(pk for pk in pks if _complete(pk)))  # as ``__in`` sends them
    if not pks:
        return {}
    pk_field = model._meta.pk
    names = (pk_field.attname, *sorted(set(attnames) - {pk_field.attname}))
    connection = connections[using]
    locked = connection.in_atomic_block
    shape = (model, using, names, len(pks), locked)
    sql = _compiled.get(shape)
    if sql is None:
        sql = _compiled[shape] = _compile(_queryset(model, using, pks, names, locked), connection, pks)
    if not sql:
        return _as_given(pk_field, pks, names, list(_queryset(model, using, pks, names, locked)))
    params = [pk_field.get_db_prep_value(pk, connection, prepared=False) for pk in pks]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _as_given(pk_field, pks, names, cursor.fetchall())


def _complete(pk) -> bool:
    """Return False for a pk no row can have yet: None, or a composite pk with a part
    missing (a part ``pre_save`` fills, such as ``auto_now_add``: an INSERT has no old key)."""
    return pk is not None and not (isinstance(pk, tuple) and None in pk)


def _as_given(pk_field, pks: list, names: tuple, rows) -> dict:
    """Key ``rows`` by the pks asked for: one pk finds its one row whatever its form (a
    collation may hold ``"ab-1"`` equal to ``"AB-1"``); several are matched by value (a
    pk not matched has no snapshot: the write outdates what it cannot name by generation)."""
    if len(pks) == 1:
        return {pks[0]: dict(zip(names, rows[0]))} if rows else {}
    found = {_value(pk_field, row[0]): dict(zip(names, row)) for row in rows}
    return {pk: found[value] for pk in pks if (value := _value(pk_field, pk)) in found}


def _value(pk_field, pk):
    try:
        return pk_field.to_python(pk)
    except ValidationError:
        return None


def _queryset(model, using: str, pks: list, names: tuple, locked: bool):
    rows = model._base_manager.using(using).filter(pk__in=pks)
    return (rows.select_for_update() if locked else rows).values_list(*names)


def _compile(queryset, connection, pks: list) -> str:
    """Return the SQL of ``queryset`` when it can be sent again with other pks as its
    only parameters and its rows need no converters; else "" (pinned in
    tests/test_django_internals.py)."""
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    pk_field = queryset.model._meta.pk
    expected = [pk_field.get_db_prep_value(pk, connection, prepared=False) for pk in pks]
    columns = [column[0] for column in compiler.select[: compiler.col_count]]
    if list(params) != expected or compiler.get_converters(columns):
        return ""
    return sql


def mapped_key_attnames(model) -> tuple[set[str], set[str]]:
    """Return (every key attname of the containers the model's rows are in, those only
    the database knows), among the model's own columns (registry.sharing_rows)."""
    definitions = registry.sharing_rows(model)
    if not definitions:
        return set(), set()
    own = {f.attname for f in model._meta.concrete_fields}
    return key_attnames(definitions) & own, needs_database(definitions) & own
