"""Which watched tables a statement logged as text mentions.

Row-based logging still writes DDL (ALTER, RENAME, DROP, TRUNCATE, CREATE)
as statements. Parsing SQL properly is not needed: a statement that names a
watched table anywhere (even in a comment) bumps that table's containers.
A false positive costs one generation bump; a miss would serve stale rows.
"""

from __future__ import annotations

import re

# `quoted` (with `` for a backquote), "quoted" (ANSI_QUOTES) or bare identifiers.
_IDENTIFIER = re.compile(r"`((?:[^`]|``)+)`|\"((?:[^\"]|\"\")+)\"|([0-9A-Za-z_$\u0080-\uffff]+)")
# Statements that end a transaction, and those that only frame one.
_ENDING = re.compile(r"\s*((COMMIT|ROLLBACK)\s*;?\s*$|XA\s+(COMMIT|ROLLBACK)\b)", re.IGNORECASE)
_FRAMING = re.compile(
    r"\s*(BEGIN|START\s+TRANSACTION|ROLLBACK\s+TO|XA\s|SAVEPOINT|RELEASE\s+SAVEPOINT)\b", re.IGNORECASE
)

ENDS, FRAMES, CHANGES = "ends", "frames", "changes"


def kind(query: str) -> str:
    """Say whether a logged statement ends a transaction, only frames one
    (BEGIN, SAVEPOINT, XA START...), or changes tables (DDL: a transaction of its own)."""
    if _ENDING.match(query):
        return ENDS
    if _FRAMING.match(query):
        return FRAMES
    return CHANGES


def mentioned(query: str, tables) -> set[str]:
    """Return the names in ``tables`` that ``query`` mentions (case-insensitively)."""
    wanted = {name.lower(): name for name in tables}
    found = set()
    for quoted, ansi, bare in _IDENTIFIER.findall(query):
        word = (quoted.replace("``", "`") if quoted else ansi.replace('""', '"') if ansi else bare).lower()
        if word in wanted:
            found.add(wanted[word])
    return found
