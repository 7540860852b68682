"""Which tables the follower watches, and how a logged row becomes cache keys.

A ``Tables`` snapshot is built from the container definitions (and the
followed server's catalog, through the source) and never changes; the follower builds a new
one and restarts its stream when definitions reload or a watched table's
DDL goes by. Keys are built from column values exactly as the ORM would
have loaded them (the backend's and the field's database converters), then
by ``KeyCodec.key_or_none`` (core/codec.py), so they equal the keys in-process writes use.

InnoDB does not log the rows a foreign key cascade changes, so a change of
a parent row bumps the generation of every container of the tables its
cascades can reach (PostgreSQL logs them: its source reports no cascades).
So does a row whose key cannot be derived.

With multi-table inheritance a child's cached row holds its parents'
columns too, so a row of a parent's table also outdates the child's
containers, under the parent's primary key (the child's parent link).
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connections

from cachelayer.core.codec import UNLISTED
from cachelayer.tasks.follow import ddl

CHANGING_RULES = {"CASCADE", "SET NULL", "SET DEFAULT"}  # foreign key rules that change child rows


class LoggedChanges:
    """What one committed transaction outdates."""

    __slots__ = ("generations", "keys", "reload", "rows")

    def __init__(self):
        self.keys = defaultdict(set)  # {definition: user keys}
        self.generations = set()  # definitions whose every key is outdated
        self.rows = 0  # row images seen
        self.reload = False  # a watched table's DDL went by: rebuild the snapshot


class KeyMaker:
    """Build one container's user key from ``{column: logged value}`` of a row of
    ``model``'s table: the container's own, or a multi-table parent's."""

    def __init__(self, definition, model, decode):
        self.definition = definition
        connection = connections[definition.db_alias()]
        self.columns = []
        for field in definition.key_fields:
            col = field.get_col(definition.model._meta.db_table)
            converters = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
            # A child's primary key is its parent link: in a parent's row, the parent's primary key.
            column = model._meta.pk.column if field.primary_key else field.column
            self.columns.append((column, field, col, converters, connection))
        self.decode = decode

    def __call__(self, row: dict):
        """Return the key (UNLISTED when a key column is NULL); KeyError when the row
        lacks a key column, ValueError when its value makes no key."""
        values = {}
        for column, field, col, converters, connection in self.columns:
            value = self.decode(field, row[column])
            for converter in converters:
                value = converter(value, col, connection)
            values[field.attname] = value
        key = self.definition.codec.key_or_none(values)
        if key is None:
            raise ValueError(f"no key of {self.definition.name} can be made of {values!r}")
        return key


class Cascade:
    """A foreign key from a child to this table whose rules change child rows."""

    __slots__ = ("columns", "on_delete", "on_update", "reached")

    def __init__(self, columns, on_update: bool, on_delete: bool, reached):
        self.columns, self.on_update, self.on_delete, self.reached = columns, on_update, on_delete, reached


class Table:
    """One watched table: its containers, its columns, the containers its cascades reach."""

    def __init__(self, schema: str, name: str, columns: list[str], sources, cascades, decode):
        """``sources``: (definition, model whose table this is) pairs."""
        self.schema, self.name, self.columns = schema, name, columns
        self.definitions = [definition for definition, _ in sources]
        self.makers = [KeyMaker(definition, model, decode) for definition, model in sources]
        self.cascades = cascades

    def apply(self, images: list[dict], deleting: bool, changes: LoggedChanges) -> None:
        """Add the keys (or generations) one changed row outdates, given its images
        as ``{column: value}``: the row (insert, delete), or before and after (update)."""
        for maker in self.makers:
            try:
                keys = [maker(image) for image in images]
                changes.keys[maker.definition].update(key for key in keys if key is not UNLISTED)
            except (KeyError, ValueError, TypeError):
                changes.generations.add(maker.definition)
        for cascade in self.cascades:
            if (deleting and cascade.on_delete) or (
                len(images) == 2
                and cascade.on_update
                and any(images[0].get(column) != images[1].get(column) for column in cascade.columns)
            ):
                changes.generations.update(cascade.reached)

    def bump(self, changes: LoggedChanges) -> None:
        """Outdate every key of this table's containers and of those its cascades reach."""
        changes.generations.update(self.definitions)
        changes.generations.update(d for cascade in self.cascades for d in cascade.reached)


class Tables:
    """Every table one follower watches, by (schema, table)."""

    def __init__(self, by_key: dict, definitions: list):
        self.by_key = by_key
        self.definitions = definitions  # every container of the followed server
        self.names = sorted({name for _, name in by_key})
        self.schemas = sorted({schema for schema, _ in by_key})

    @classmethod
    def build(cls, source, registry) -> Tables:
        """Read the definitions of the containers ``source`` follows, and their tables' columns and foreign keys."""
        sources = defaultdict(list)  # table -> [(definition, the table's model)]
        definitions = []
        for definition in registry.definitions():
            using = definition.db_alias()
            if source.follows(using):
                definitions.append(definition)
                model = definition.model._meta.concrete_model
                for table_model in (model, *model._meta.get_parent_list()):
                    sources[source.table_key(using, table_model._meta.db_table)].append((definition, table_model))
        mapped = {key: [definition for definition, _ in pairs] for key, pairs in sources.items()}
        columns = source.columns(sorted(mapped))
        cascades = _cascades(source.cascades(sorted(mapped)), mapped)
        by_key = {
            key: Table(key[0], key[1], columns.get(key, []), sources.get(key, []), cascades.get(key, []), source.decode)
            for key in {*mapped, *cascades}
        }
        return cls(by_key, definitions)

    def apply_statement(self, query: str, changes: LoggedChanges) -> None:
        """Bump the containers of every watched table a statement (DDL, TRUNCATE...) mentions."""
        hit = ddl.mentioned(query, self.names)
        for (_, name), table in self.by_key.items():
            if name in hit:
                changes.generations.update(table.definitions)
                changes.reload = True


def _cascades(foreign_keys, mapped) -> dict:
    """Return ``{parent table: [Cascade]}`` for the cascades that reach a mapped table."""
    edges: defaultdict[tuple, dict[tuple, set]] = defaultdict(
        dict
    )  # parent -> {(child, on update changes, on delete changes): parent columns}
    for child_schema, child, schema, parent, column, update_rule, delete_rule in foreign_keys:
        edge = ((child_schema, child), update_rule in CHANGING_RULES, delete_rule in CHANGING_RULES)
        edges[(schema, parent)].setdefault(edge, set()).add(column)
    found = defaultdict(list)
    for parent, children in edges.items():
        for (child, on_update, on_delete), columns in children.items():
            reached = [d for table in _reachable(child, edges) for d in mapped.get(table, [])]
            if reached and (on_update or on_delete):
                found[parent].append(Cascade(columns, on_update, on_delete, reached))
    return found


def _reachable(start, edges) -> set:
    """Return ``start`` and every table a changed row of it can change in turn."""
    seen, todo = {start}, [start]
    while todo:
        for child, on_update, on_delete in edges.get(todo.pop(), {}):
            if (on_update or on_delete) and child not in seen:
                seen.add(child)
                todo.append(child)
    return seen
