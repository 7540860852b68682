"""Which models hold credentials or sessions, and what cache_serve may do with them.

One rule, used by Container.clean() (admin and API saves), the system checks
(rows already in the database) and cache_serve (at serve time): a model is
sensitive when its label is in ``PROTOCOL_SENSITIVE_MODELS`` or a concrete
field's name or class name matches ``PROTOCOL_SENSITIVE_FIELDS``. A sensitive
model is never reachable through the protocol unless
``PROTOCOL_SENSITIVE_ALLOWED`` names it ("read" or "write"), and never
flushed to the database through it: a password hash, a session or an API
token must not be one ``get`` away from anyone who reaches the port.
"""

from __future__ import annotations

import re

from cachelayer.core import conf
from cachelayer.core.policies import touches_database

NONE, READ, WRITE = "none", "read", "write"  # what the protocol may do with a model's container
GRANTS = (READ, WRITE)  # what PROTOCOL_ACCESS and PROTOCOL_SENSITIVE_ALLOWED may grant
WRITE_POLICIES = ("set_policy", "delete_policy")


def reason(model) -> str | None:
    """Return why ``model`` counts as sensitive, or None when it does not."""
    label = model._meta.label
    if label in conf.get("PROTOCOL_SENSITIVE_MODELS"):
        return f"{label} is listed in PROTOCOL_SENSITIVE_MODELS"
    pattern = re.compile(conf.get("PROTOCOL_SENSITIVE_FIELDS"), re.IGNORECASE)
    for field in model._meta.concrete_fields:
        if pattern.search(field.name) or pattern.search(type(field).__name__):
            return f"{label}.{field.name} ({type(field).__name__}) looks like a credential"
    return None


def protocol_access(model) -> str:
    """Return NONE, READ or WRITE: the most cache_serve may do with ``model``'s containers."""
    if reason(model) is None:
        return WRITE
    return conf.get("PROTOCOL_SENSITIVE_ALLOWED").get(model._meta.label, NONE)


def exposure_errors(model, exposed: bool, policies: dict[str, str]) -> dict[str, list[str]]:
    """Return the errors, by Container field, of exposing ``model`` with these policies."""
    why = reason(model) if exposed else None
    if why is None:
        return {}
    label = model._meta.label
    access = protocol_access(model)
    if access == NONE:
        hint = f"Name it in CACHELAYER['PROTOCOL_SENSITIVE_ALLOWED'] (e.g. {{{label!r}: 'read'}}) to expose it anyway."
        return {"exposed": [f"{why}: it cannot be exposed to cache_serve. {hint}"]}
    problems = []
    if touches_database(policies["flush_policy"]):
        problems.append("its flush policy deletes rows, which the protocol never does for a sensitive model")
    if access == READ and any(touches_database(policies[name]) for name in WRITE_POLICIES):
        problems.append(
            "PROTOCOL_SENSITIVE_ALLOWED lets clients only read it, but its set/delete policy writes the database"
        )
    return {"policy": [f"{why}: {problem}." for problem in problems]} if problems else {}
