"""Read a key's row version, to show the demo's visitor the version a write moved.

cachelayer has no public API for versions (they are an implementation
detail of its consistency rules), so this helper reads them the way a read
does: ``cachelayer.engine.registry.resolve`` finds the container's definition and
``cachelayer.engine.versions.fetch`` does the one multi-get of a read. It writes
nothing, except the counters a read would create anyway when they are absent.
"""

from __future__ import annotations


def row_version(model, key) -> int | None:
    """Return the current row version of ``key`` in the model's container, or None if unknown."""
    from cachelayer.engine.registry import resolve
    from cachelayer.engine.versions import fetch

    try:
        definition = resolve(model)
        user_key = definition.codec.user_key(key)
        state = fetch(definition, [user_key]).states.get(user_key)
    except Exception:  # the cache is down, or the configuration just changed: nothing to show
        return None
    return None if state is None else state.ver
