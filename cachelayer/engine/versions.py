"""The gen/ver/val protocol: versioned read-through over an adapter.

A read fetches the configuration version, the container generation, the row
version and the payload in ONE multi-get, and counts a hit only when the
payload's generation, version and schema equal the current ones. A fill
stores the generation and version read BEFORE the database read; writers
bump the version only after commit. A fill that raced with a write is
therefore stored under an old version and never served.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from cachelayer.adapters.base import Adapter, Route, new_counter
from cachelayer.adapters.multiget import Fetched
from cachelayer.core import conf
from cachelayer.engine import outbox, stats, topology
from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import registry
from cachelayer.exceptions import CacheUnavailable, ForgedPayload

logger = logging.getLogger("cachelayer")

ABSENT = object()  # the row does not exist (cached as a negative entry)
MISSING = object()  # the cache holds no usable payload

_warned_too_large: set[str] = set()  # containers already logged (once per process)
_warned_rejected: set[str] = set()  # the same, for payloads that failed authentication
_warned_unencodable: set[tuple[str, str]] = set()  # (model label, field) whose values failed to encode


class Restart(Exception):
    """The configuration changed under an operation: resolve the container again."""


class State:
    """What the cache said about one key."""

    __slots__ = ("gen", "key", "part", "raw", "row", "ver")

    def __init__(self, key, part, gen, ver, row, raw):
        self.key, self.part, self.gen, self.ver, self.row, self.raw = key, part, gen, ver, row, raw


class Read(NamedTuple):
    """What the cache said: the state of each key it answered for, and the
    keys it could not answer for (their server is down, or owed invalidations)."""

    states: dict[str, State]
    unreachable: list[str]

    def state(self, key: str) -> State | None:
        """Return a key's state, or None when its server could not answer for it."""
        return self.states.get(key)


def fetch(definition: Definition, user_keys: list[str], reload: bool = True) -> Read:
    """Return the cached state of each key: one round trip per cache server.

    Keys the cache cannot answer for are returned apart; the caller decides
    (the read path asks the database). Creates missing counters
    (from a time-based base) and raises Restart when the configuration
    version shows the definitions are out of date. A payload counts only
    when its generation, version and schema equal the current ones; one that
    cannot be decoded, or whose MAC fails (core/signing.py), is a miss. ``reload=False`` raises Restart on a new
    configuration version without loading it (a caller that must not query
    the database).
    """
    parts, groups = _groups(definition, user_keys)
    # The keys of one server share one dict: looked up by name, never copied per key.
    fetched = fetch_fresh(definition.adapter, groups, shared=True)
    found: dict[str, dict[str, Any]] = fetched.found  # type: ignore[assignment]  # the routes are user keys
    unreachable: list[str] = fetched.unreachable  # type: ignore[assignment]
    return _read(definition, parts, groups, found, unreachable, reload)


def fetch_together(wanted: dict[Definition, list[str]]) -> dict[Definition, Read]:
    """``fetch`` the keys of several containers of one cache in one multi-get (one
    round trip per server): their keys travel by user key, as a delivery's do."""
    if len(wanted) == 1:
        ((definition, user_keys),) = wanted.items()
        return {definition: fetch(definition, user_keys)}
    named = {definition: _groups(definition, user_keys) for definition, user_keys in wanted.items()}
    merged: dict[Route, dict[str, None]] = {}  # containers may share a route (user key), and name the config key alike
    for _, groups in named.values():
        for route, names in groups.items():
            merged.setdefault(route, {}).update(dict.fromkeys(names))
    adapter = next(iter(wanted)).adapter
    fetched = fetch_fresh(adapter, {route: list(names) for route, names in merged.items()}, shared=True)
    lost = set(fetched.unreachable)
    return {
        definition: _read(
            definition,
            parts,
            groups,
            {key: fetched.found[key] for key in groups if key in fetched.found},  # own copy: keys may leave it
            [key for key in groups if key in lost],
        )
        for definition, (parts, groups) in named.items()
    }


def _read(
    definition: Definition, parts: dict, groups: dict, found: dict, unreachable: list, reload: bool = True
) -> Read:
    """Turn what a multi-get found into the keys' states, creating missing counters (see ``fetch``)."""
    missing = _missing_counters(definition, groups, found)
    if missing:
        unreachable += _create_counters(definition, parts, found, missing)
    return _states(definition, parts, groups, found, unreachable, reload)


async def fetch_async(definition: Definition, user_keys: list[str]) -> Read:
    """``fetch(reload=False)`` for an event loop that must neither wait on a socket nor
    query the database (cache_serve's): the multi-get is the loop's own I/O. Counters
    are not created: a key without its version is a miss (no payload can match a
    version yet to be created), one without the container's counters comes back
    unreachable (the caller sends it where they may be created), as do the keys of a
    server the outbox owes."""
    parts, groups = _groups(definition, user_keys)
    fetched = await definition.adapter.fetch_async(groups, shared=True)
    found: dict[str, dict[str, Any]] = fetched.found  # type: ignore[assignment]  # the routes are user keys
    unreachable: list[str] = fetched.unreachable  # type: ignore[assignment]
    for key, names in _missing_counters(definition, groups, found).items():
        if names != [groups[key][2]]:
            del found[key]
            unreachable.append(key)
    return _states(definition, parts, groups, found, unreachable, reload=False)


def _groups(definition: Definition, user_keys: list[str]) -> tuple[dict, dict[Route, list[str]]]:
    """Return each key's part and the cache keys its read needs (counters, then payload), by route."""
    keys = definition.keys
    config, gen_key, ver_of, data_of, part_of = keys.config, keys.gen, keys.ver, keys.data, keys.part
    parts: dict = {}
    groups: dict[Route, list[str]] = {}  # routed by user key
    for key in user_keys:
        part = parts[key] = part_of(key)
        groups[key] = [config, gen_key, ver_of(part), data_of(part)]
    return parts, groups


def _missing_counters(definition: Definition, groups: dict, found: dict) -> dict:
    """Return ``{key: its counters the cache does not hold}`` for the keys read."""
    config, gen_key = definition.keys.config, definition.keys.gen
    missing = {}
    for key, values in found.items():
        names = groups[key]
        if names[2] not in values or gen_key not in values or config not in values:
            missing[key] = [name for name in names[:3] if name not in values]
    return missing


def _states(definition: Definition, parts: dict, groups: dict, found: dict, unreachable: list, reload: bool) -> Read:
    """Return the Read of the keys found: their versions and current payloads."""
    config, gen_key = definition.keys.config, definition.keys.gen
    versions_seen = {values[config] for values in found.values()}  # one per server
    alias = definition.cache_alias
    if reload:
        reloaded = False
        for version in versions_seen:  # observe records every version: none may be skipped
            reloaded = registry.observe(alias, int(version)) or reloaded
        if reloaded:
            topology.stale(definition.adapter)  # a new server list may have been announced
            raise Restart
    elif not all(registry.knows(alias, int(version)) for version in versions_seen):
        raise Restart
    loads, unsign, schema = definition.serializer.loads, definition.signer.open, definition.schema
    decode = definition.conversions and definition.conversions.decode
    states = {}
    for key, values in found.items():
        ver_key, data_key = groups[key][2:]
        gen, ver, raw = int(values[gen_key]), values.get(ver_key), values.get(data_key)
        row = MISSING
        if ver is None:  # (fetch_async only) no version yet: no payload can match
            raw = None
        else:
            ver = int(ver)
        if raw is not None:
            try:
                p_gen, p_ver, p_schema, data = loads(unsign(data_key, raw))
                if p_gen == gen and p_ver == ver and p_schema == schema:
                    row = ABSENT if data is None else (decode(data) if decode else data)
            except ForgedPayload:
                _rejected(definition, key)  # never decoded: a miss, overwritten by the fill
            except Exception:
                pass  # corrupt or foreign (or a field's cache_decode refused it): a miss, overwritten by the fill
        states[key] = State(key, parts[key], gen, ver, row, raw)
    return Read(states, unreachable)


def fetch_fresh(adapter: Adapter, groups: dict[Route, list[str]], shared: bool = False) -> Fetched:
    """``adapter.fetch``; routes it could not read are read once more when the
    outbox's replay (outbox.py) just cleaned their server. A hit never replays
    (nor checks the topology, but every third of POOL_MEMBERSHIP_TTL)."""
    topology.ensure(adapter)
    fetched = adapter.fetch(groups, shared)
    if not fetched.unreachable or not outbox.replay_owed(adapter):
        return fetched
    again = adapter.fetch({route: groups[route] for route in fetched.unreachable}, shared)
    fetched.found.update(again.found)
    return Fetched(fetched.found, again.unreachable)


def _create_counters(definition: Definition, parts: dict, found: dict, missing: dict) -> list[str]:
    """Add each missing counter from a time-based base; re-read only those another
    process added first. Returns the keys whose counters the cache could not give
    (they leave ``found``)."""
    adapter, keys = definition.adapter, definition.keys
    lost: dict[Route, list[str]] = {}
    try:
        for key, names in missing.items():
            for name in names:
                if name in found[key]:
                    continue  # shared with a key created just before (one dict per server)
                value = new_counter()
                timeout = conf.get("VERSION_TIMEOUT") if name == keys.ver(parts[key]) else 0
                if adapter.add(name, value, timeout, key):
                    found[key][name] = value
                else:
                    lost.setdefault(key, []).append(name)
    except CacheUnavailable:
        pass  # the breaker logged it; the keys left without counters are unreachable below
    if lost:
        for key, values in adapter.fetch(lost).found.items():
            found[key].update(values)
    failed = [key for key, names in missing.items() if any(name not in found[key] for name in names)]
    for key in failed:
        del found[key]
    return failed


def revalidate(definition: Definition) -> bool:
    """Read the configuration version alone; return True when definitions were reloaded."""
    key = definition.keys.config
    value = fetch_fresh(definition.adapter, {None: [key]}).value(key)
    return value is not None and registry.observe(definition.cache_alias, int(value))


def payload(definition: Definition, state: State, row) -> bytes:
    """Encode and sign a row (or ABSENT) for the version ``state`` was read at.

    Raises whatever the serializer (or a field's ``cache_encode``) raises for
    a value it cannot carry."""
    return definition.signer.sign(definition.keys.data(state.part), _body(definition, state.gen, state.ver, row))


def _body(definition: Definition, gen: int, ver: int, row) -> bytes:
    data = None if row is ABSENT else row
    if data is not None and definition.conversions is not None:
        data = definition.conversions.encode(data)
    return definition.serializer.dumps((gen, ver, definition.schema, data))


def fill(definition: Definition, states: list[State], rows: dict, max_size: int | None = None) -> list[str]:
    """Store rows read from the database under the versions read before.

    Payloads over ``max_size`` (default: the backend's item size limit) are
    not stored (counted as ``too_large``, logged once per container), nor
    are rows holding a value the serializer cannot encode (counted as
    ``errors``, logged once per field): those rows keep coming from the
    database. Returns the keys of the first.
    """
    groups, too_large = payloads(definition, states, rows, max_size)
    store({definition: groups})
    return too_large


def payloads(
    definition: Definition, states: list[State], rows: dict, max_size: int | None = None
) -> tuple[dict[Route, dict[str, bytes]], list[str]]:
    """Return what ``fill`` stores, by route, and the keys too large to store (see ``fill``)."""
    limit = max_size or definition.adapter.max_item_size
    groups, too_large = {}, []
    for s in states:
        row = rows.get(s.key, ABSENT)
        try:
            data = payload(definition, s, row)
        except Exception as exc:
            _unencodable(definition, row, exc)
            continue
        if limit and len(data) > limit:
            _too_large(definition, s.key, len(data), limit)
            too_large.append(s.key)
        else:
            groups[s.key] = {definition.keys.data(s.part): data}
    return groups, too_large


def store(filled: dict[Definition, dict[Route, dict[str, bytes]]]) -> None:
    """Store ``payloads``' groups of several containers: one multi-set per cache and
    timeout (containers may share a route, the user key), and count the fills."""
    batches: dict[tuple[Adapter, float], dict[Route, dict[str, bytes]]] = {}
    for definition, groups in filled.items():
        batch = batches.setdefault((definition.adapter, definition.timeout), {})
        for route, named in groups.items():
            batch[route] = {**batch[route], **named} if route in batch else named
    for (adapter, timeout), groups in batches.items():
        if groups:
            adapter.store(groups, timeout)
    for definition, groups in filled.items():
        if groups:
            stats.incr(definition.name, "fills", len(groups))


def _rejected(definition: Definition, key: str) -> None:
    stats.incr(definition.name, "rejected")
    if definition.name not in _warned_rejected:
        _warned_rejected.add(definition.name)
        logger.warning(
            "cachelayer: %s %r: a cached payload failed authentication (forged, or signed with a key this "
            "process does not accept: see PAYLOAD_KEY); served from the database, counted as 'rejected'",
            definition.name,
            key,
            extra=definition.log_fields(keys=[key]),
        )


def _unencodable(definition: Definition, row, exc: Exception) -> None:
    """Count a row the serializer cannot encode; log each field at fault once per process."""
    stats.incr(definition.name, "errors")
    label = definition.model._meta.label
    for attname in _fields_at_fault(definition, row) or ["?"]:
        if (label, attname) in _warned_unencodable:
            continue
        _warned_unencodable.add((label, attname))
        logger.warning(
            "cachelayer: %s: the %s serializer cannot encode the values of %s.%s (%s: %s); rows holding them "
            "are served from the database, counted as 'errors'. Declare how they round-trip: cache_encode() "
            "and cache_decode() on the field (see docs/consistency.md, 'Payload format').",
            definition.name,
            conf.get("SERIALIZER"),
            label,
            attname,
            type(exc).__name__,
            exc,
            extra=definition.log_fields(),
        )


def _fields_at_fault(definition: Definition, row) -> list[str]:
    """Return the stored fields whose value alone fails to encode (a row, or an index's rows)."""
    rows = [r for r in row if isinstance(r, tuple)] if definition.is_index else [row]
    found = []
    for position, attname in enumerate(definition.stored):
        for values in rows:
            alone = tuple(value if i == position else None for i, value in enumerate(values))
            try:
                _body(definition, 0, 0, (alone,) if definition.is_index else alone)
            except Exception:
                found.append(attname)
                break
    return found


def _too_large(definition: Definition, key: str, size: int, limit: int) -> None:
    stats.incr(definition.name, "too_large")
    if definition.name not in _warned_too_large:
        _warned_too_large.add(definition.name)
        logger.warning(
            "cachelayer: %s %r encodes to %d bytes, over the cache's %d; such rows are served from the database",
            definition.name,
            key,
            size,
            limit,
            extra=definition.log_fields(keys=[key]),
        )
