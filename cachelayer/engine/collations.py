"""Fold string keys the way their column's collation compares them.

Where the database holds different strings equal (MariaDB/MySQL ``_ci``
collations: ``"ab-1"`` is ``"AB-1"``; PAD SPACE: ``"AB-1 "`` is too), a key
must be the same for all of them, or a read under one form misses the row
the ORM finds and a write under another leaves the stored form stale. A fold
maps every string to one representative of its class, chosen by the
collation itself, never guessed:

- ``*_bin`` (PAD SPACE): trailing spaces dropped; ``*_nopad_bin``: nothing.
- ``utf8mb4_general_ci`` and its siblings compare character by character:
  each character weighs what ``WEIGHT_STRING`` says (asked of the database
  once per character and process, then kept), and the representative of a
  string is the characters its weights name (``"äb"`` -> ``"AB"``), which the
  collation holds equal to it (tests/layer/test_canonical_keys.py checks
  every character of the Basic Multilingual Plane).
- SQLite: ``NOCASE`` folds ASCII letters, ``RTRIM`` trailing spaces.
- PostgreSQL: deterministic collations need no fold.
- Any other collation (``utf8mb4_unicode_ci``, ``utf8mb4_0900_ai_ci``: their
  expansions, contractions and ignorable characters are not per character)
  cannot be folded exactly: the container's reads go to the database (the
  cache is neither read nor filled), and ``manage.py check`` says so
  (cachelayer.W040).
"""

from __future__ import annotations

import re
import threading

from django.db import connections, models

from cachelayer.core.codec import column_type

FOLDED_EXACTLY = "cachelayer.I040"
NOT_FOLDED = "cachelayer.W040"
_PER_CHARACTER = re.compile(r"^(utf8mb4|utf8mb3|utf8)_general(_nopad)?_ci$")
_NAME = re.compile(r"^\w+$")
_CHUNK = 500  # characters weighed per query


class Rule:
    """How one collation folds: ``rule(text)`` is the representative of ``text``."""

    exact = True  # False: reads go to the database
    folds = True  # False: strings are equal only when identical

    def __init__(self, collation: str, how: str, pad: bool = False):
        self.collation, self.how, self.pad = collation, how, pad

    def __call__(self, text: str, offline: bool = False) -> str:
        return text.rstrip(" ") if self.pad else text

    def describe(self) -> str:
        return self.how


class NoFold(Rule):
    """A collation under which strings are equal only when identical."""

    folds = False


class AsciiCase(Rule):
    """SQLite's NOCASE: ASCII letters compare without case."""

    def __call__(self, text: str, offline: bool = False) -> str:
        return text.upper() if text.isascii() else "".join(c.upper() if c.isascii() else c for c in text)


class Unfoldable(Rule):
    """A collation no per-character rule reproduces: keys stay as given, reads go to the database."""

    exact = False


_weights: dict[tuple[str, str], dict[str, str]] = {}  # (alias, collation) -> {character: representative}
_lock = threading.Lock()


class Weights(Rule):
    """A collation that compares character by character (MariaDB's ``*_general_ci``).

    Weighed as its utf8mb4 twin: Django's connections send utf8mb4, and a utf8mb3
    column is compared with them so (same weights in the Basic Multilingual Plane,
    and every character past it weighs as U+FFFD, which a utf8mb3 column can hold)."""

    def __init__(self, alias: str, collation: str, pad: bool):
        super().__init__(collation, "", pad)
        self.alias, self.weighed_as = alias, "utf8mb4_" + collation.split("_", 1)[1]
        with _lock:
            self.table = _weights.setdefault((alias, self.weighed_as), {})

    def __call__(self, text: str, offline: bool = False) -> str:
        if self.pad:
            text = text.rstrip(" ")
        table = self.table
        missing = {char for char in text if char not in table}
        if missing:
            if offline:
                raise LookupError(f"the weights of {len(missing)} character(s) are not known yet")
            self._weigh(sorted(missing))
        return "".join(table[char] for char in text)

    def _weigh(self, chars: list[str]) -> None:
        cast = f"WEIGHT_STRING(CAST(%s AS CHAR CHARACTER SET utf8mb4) COLLATE {self.weighed_as})"
        with connections[self.alias].cursor() as cursor:
            for start in range(0, len(chars), _CHUNK):
                chunk = chars[start : start + _CHUNK]
                cursor.execute("SELECT " + ", ".join([cast] * len(chunk)), chunk)
                for char, weight in zip(chunk, cursor.fetchone()):
                    self.table[char] = chr(int.from_bytes(bytes(weight), "big")) if weight else ""

    def describe(self) -> str:
        spaces = "; trailing spaces ignored (PAD SPACE)" if self.pad else ""
        return f"folded exactly by the collation's own character weights (asked of the database once per character){spaces}"


def _string_field(field):
    """Return the field whose type the column has (a foreign key's target), or None when it holds no text."""
    typed = column_type(field)
    return typed if isinstance(typed, (models.CharField, models.TextField)) else None


def _mysql_rule(alias: str, table: str, column: str) -> Rule | None:
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
            [table, column],
        )
        found = cursor.fetchone()
    if found is None or found[0] is None:
        return None  # no such table yet, or not a string column
    collation = found[0]
    if not _NAME.match(collation):
        return Unfoldable(collation, "an unexpected collation name")
    pad = "nopad" not in collation and "_0900_" not in collation  # MySQL 8's 0900 collations are NO PAD
    if _PER_CHARACTER.match(collation):
        return Weights(alias, collation, pad)
    if collation.endswith("_bin"):
        return (
            Rule(collation, "folded exactly: trailing spaces ignored (PAD SPACE)", pad)
            if pad
            else NoFold(collation, "")
        )
    return Unfoldable(
        collation,
        "cannot be folded exactly (not compared character by character): the container's reads go to "
        "the database, its cache is neither read nor filled. Give the column a *_general_ci or *_bin "
        "collation (db_collation) to cache it",
    )


def _postgresql_rule(alias: str, collation: str) -> Rule:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT collisdeterministic FROM pg_collation WHERE collname = %s", [collation])
        found = cursor.fetchone()
    if found is None or found[0]:
        return NoFold(collation, "")
    return Unfoldable(collation, "nondeterministic: the container's reads go to the database")


_SQLITE = {
    "binary": lambda name: NoFold(name, ""),
    "rtrim": lambda name: Rule(name, "folded exactly: trailing spaces ignored", pad=True),
    "nocase": lambda name: AsciiCase(name, "folded exactly: ASCII letters without case"),
}


def rule_of(alias: str, model, field) -> Rule | None:
    """Return the fold of ``field``'s column on ``alias``: None when it holds no text,
    or its table does not exist yet. MySQL/MariaDB and PostgreSQL are asked."""
    typed = _string_field(field)
    if typed is None:
        return None
    vendor = connections[alias].vendor
    if vendor == "mysql":
        return _mysql_rule(alias, model._meta.db_table, field.column)
    declared = getattr(typed, "db_collation", None)
    if not declared:
        return NoFold("", "")
    if vendor == "sqlite":
        make = _SQLITE.get(declared.lower())
        return make(declared) if make else Unfoldable(declared, "unknown to cachelayer: reads go to the database")
    if vendor == "postgresql":
        return _postgresql_rule(alias, declared)
    return Unfoldable(declared, "unknown to cachelayer: reads go to the database")


def needs_fold(alias: str, field) -> bool:
    """Return True when ``field``'s column may hold different strings equal on ``alias`` (no query)."""
    typed = _string_field(field)
    if typed is None:
        return False
    return connections[alias].vendor == "mysql" or bool(getattr(typed, "db_collation", None))


_rules: dict[tuple[str, str, str], Rule] = {}  # (alias, table, column) -> its rule, asked once per process


class ColumnFold:
    """The fold of one key column of a definition, resolved on first use (one query per process:
    a column's collation changes only with a migration, which comes with a deploy)."""

    def __init__(self, alias, model, field):
        self._alias, self._model, self._field = alias, model, field  # alias: a callable (routers decide late)
        self._rule: Rule | None = None
        self._rule_alias: str | None = None  # the database self._rule was asked of

    def rule(self, offline: bool = False) -> Rule | None:
        """Return the column's rule on the database the container is on now (None: its
        table does not exist yet, asked again next time); ``offline``: raise
        LookupError rather than ask the database. A router may send the container
        elsewhere later: the rule (and the weights it asks for) follows it."""
        alias = self._alias()
        if self._rule is None or self._rule_alias != alias:
            self._rule_alias = alias
            known = (alias, self._model._meta.db_table, self._field.column)
            self._rule = _rules.get(known)
            if self._rule is None:
                if offline:
                    raise LookupError("the column's collation is not known yet")
                self._rule = rule_of(alias, self._model, self._field)
                if self._rule is not None:
                    _rules[known] = self._rule
        return self._rule

    def exact(self, offline: bool = False) -> bool:
        rule = self.rule(offline)
        return rule is None or rule.exact

    def __call__(self, text: str, offline: bool = False) -> str:
        rule = self.rule(offline)
        return text if rule is None else rule(text, offline)


def folds(alias, model, fields) -> list:
    """Return a fold (or None) per key field of a container on the database ``alias()`` names."""
    return [ColumnFold(alias, model, field) if needs_fold(alias(), field) else None for field in fields]
