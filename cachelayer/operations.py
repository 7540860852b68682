"""Run an operation against the current definition of a container.

Resolves the container, applies the policy of the operation, and starts
over once when the read showed that the configuration changed.
"""

from __future__ import annotations

from cachelayer import versions
from cachelayer.containers import Definition, resolve
from cachelayer.exceptions import OperationDisabled
from cachelayer.policies import Policy

READ_MODES = {  # get policy -> how versions.read runs
    Policy.CACHING: {"use_cache": True, "use_db": True},
    Policy.DB_ONLY: {"use_cache": False, "use_db": True},
    Policy.CACHE_ONLY: {"use_cache": True, "use_db": False},
}


def with_definition(target, operation: str, run):
    """Call ``run(definition, policy)``, retrying once after a configuration change.

    Operations that read no payload (db_only, database writes, disabled) check
    the configuration version first: one round trip, off the hit path.
    """
    for attempt in (1, 2):
        definition = resolve(target)
        try:
            policy = definition.policy(operation)
        except OperationDisabled:
            if attempt == 1 and versions.revalidate(definition):
                continue
            raise
        reads_payload = policy == Policy.CACHE_ONLY or (operation == "get" and policy == Policy.CACHING)
        if not reads_payload and attempt == 1 and versions.revalidate(definition):
            continue
        try:
            return run(definition, policy)
        except versions.Restart:
            if attempt == 2:
                raise


def read_rows(target, operation: str, keys) -> tuple[Definition, dict]:
    """Return the definition and ``{key: row}`` for the keys (as given) that exist."""

    def run(definition, policy):
        user_keys = {key: definition.user_key(key) for key in keys}
        rows = versions.read(definition, list(user_keys.values()), **READ_MODES[policy])
        return definition, {key: rows[user_key] for key, user_key in user_keys.items() if user_key in rows}

    return with_definition(target, operation, run)
