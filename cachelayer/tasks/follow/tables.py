"""Which tables the follower watches, and how a binlog row becomes cache keys.

A ``Tables`` snapshot is built from the container definitions (and the
server's information_schema) and never changes; the follower builds a new
one and restarts its stream when definitions reload or a watched table's
DDL goes by. Keys are built from column values exactly as the ORM would
have loaded them (the backend's and the field's database converters), then
by ``KeyCodec.key_or_none`` (core/codec.py), so they equal the keys in-process writes use.

InnoDB does not log the rows a foreign key cascade changes, so a change of
a parent row bumps the generation of every container of the tables its
cascades can reach. So does a row whose key cannot be derived.

With multi-table inheritance a child's cached row holds its parents'
columns too, so a row of a parent's table also outdates the child's
containers, under the parent's primary key (the child's parent link).
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connections
from pymysqlreplication.row_event import DeleteRowsEvent

from cachelayer.core.codec import UNLISTED
from cachelayer.tasks.follow import ddl
from cachelayer.tasks.follow.aliases import server_of
from cachelayer.tasks.follow.server import Server

CHANGING_RULES = {"CASCADE", "SET NULL", "SET DEFAULT"}  # foreign key rules that change child rows


class Changes:
    """What one committed transaction outdates."""

    __slots__ = ("generations", "keys", "reload", "rows")

    def __init__(self):
        self.keys = defaultdict(set)  # {definition: user keys}
        self.generations = set()  # definitions whose every key is outdated
        self.rows = 0  # row images seen
        self.reload = False  # a watched table's DDL went by: rebuild the snapshot


class KeyMaker:
    """Build one container's user key from ``{column: binlog value}`` of a row of
    ``model``'s table: the container's own, or a multi-table parent's."""

    def __init__(self, definition, model):
        self.definition = definition
        connection = connections[definition.db_alias()]
        self.columns = []
        for field in definition.key_fields:
            col = field.get_col(definition.model._meta.db_table)
            converters = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
            # A child's primary key is its parent link: in a parent's row, the parent's primary key.
            column = model._meta.pk.column if field.primary_key else field.column
            self.columns.append((column, field.attname, col, converters, connection))

    def __call__(self, row: dict):
        """Return the key (UNLISTED when a key column is NULL); KeyError when the row
        lacks a key column, ValueError when its value makes no key."""
        values = {}
        for column, attname, col, converters, connection in self.columns:
            value = row[column]
            for converter in converters:
                value = converter(value, col, connection)
            values[attname] = value
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

    def __init__(self, schema: str, name: str, columns: list[str], sources, cascades):
        """``sources``: (definition, model whose table this is) pairs."""
        self.schema, self.name, self.columns = schema, name, columns
        self.definitions = [definition for definition, _ in sources]
        self.makers = [KeyMaker(definition, model) for definition, model in sources]
        self.cascades = cascades

    def _named(self, event):
        """Return a function giving ``{column: value}`` for a row image, or None if columns are unknown."""
        names = [column.name for column in event.columns]
        if None not in names:
            return lambda values: values
        if len(names) != len(self.columns):  # no row metadata, and the table changed since: give up
            return None
        columns = self.columns
        return lambda values: dict(zip(columns, values.values()))

    def apply(self, event, changes: Changes) -> None:
        """Add the keys (or generations) a row event outdates."""
        rows = event.rows
        changes.rows += len(rows)
        named = self._named(event)
        if named is None:
            changes.generations.update(self.definitions)
            changes.generations.update(d for cascade in self.cascades for d in cascade.reached)
            return
        deleting = isinstance(event, DeleteRowsEvent)
        for row in rows:
            images = (
                [named(row["values"])] if "values" in row else [named(row["before_values"]), named(row["after_values"])]
            )
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


class Tables:
    """Every table one follower watches, by (schema, table)."""

    def __init__(self, by_key: dict, definitions: list):
        self.by_key = by_key
        self.definitions = definitions  # every container of the followed server
        self.names = sorted({name for _, name in by_key})
        self.schemas = sorted({schema for schema, _ in by_key})

    @classmethod
    def build(cls, server: Server, registry, alias: str) -> Tables:
        """Read the definitions of ``alias``'s server and its tables' columns and foreign keys."""
        here = server_of(alias)
        sources = defaultdict(list)  # table -> [(definition, the table's model)]
        definitions = []
        for model_definitions in registry.by_model.values():
            for definition in model_definitions:
                using = definition.db_alias()
                if server_of(using) == here:
                    definitions.append(definition)
                    model = definition.model._meta.concrete_model
                    for table_model in (model, *model._meta.get_parent_list()):
                        key = (connections.settings[using]["NAME"], table_model._meta.db_table)
                        sources[key].append((definition, table_model))
        mapped = {key: [definition for definition, _ in pairs] for key, pairs in sources.items()}
        schemas = sorted({schema for schema, _ in mapped})
        columns = server.columns(schemas)
        cascades = _cascades(server.cascades(schemas), mapped)
        by_key = {
            key: Table(key[0], key[1], columns.get(key, []), sources.get(key, []), cascades.get(key, []))
            for key in {*mapped, *cascades}
        }
        return cls(by_key, definitions)

    def apply(self, event, changes: Changes) -> None:
        table = self.by_key.get((event.schema, event.table))
        if table is not None:
            table.apply(event, changes)

    def apply_statement(self, query: str, changes: Changes) -> None:
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
