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
import time
from typing import Any, NamedTuple, cast

from cachelayer.adapters import Adapter
from cachelayer.adapters.base import Fetched, Route, new_counter
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
    the database, such as cache_serve's event loop).
    """
    keys = definition.keys
    config, gen_key, ver_of, data_of, part_of = keys.config, keys.gen, keys.ver, keys.data, keys.part
    groups: dict[Route, list[str]]  # routed by user key
    parts, groups = {}, {}
    for key in user_keys:
        part = parts[key] = part_of(key)
        groups[key] = [config, gen_key, ver_of(part), data_of(part)]  # counters, then payload
    # The keys of one server share one dict: looked up by name, never copied per key.
    found, unreachable = cast(
        "tuple[dict[str, dict[str, Any]], list[str]]", fetch_fresh(definition.adapter, groups, shared=True)
    )
    missing = {}
    for key, values in found.items():
        names = groups[key]
        if names[2] not in values or gen_key not in values or config not in values:
            missing[key] = [name for name in names[:3] if name not in values]
    if missing:
        unreachable += _create_counters(definition, parts, found, missing)
    versions_seen = {values[config] for values in found.values()}  # one per server
    alias = definition.cache_alias
    if reload:
        # A list, not a generator: observe records every version, so none may be skipped.
        observed = [registry.observe(alias, int(version)) for version in versions_seen]
        if any(observed):
            topology.stale(definition.adapter)  # a new server list may have been announced
            raise Restart
    elif not all(registry.knows(alias, int(version)) for version in versions_seen):
        raise Restart
    loads, unsign, schema = definition.serializer.loads, definition.signer.open, definition.schema
    decode = definition.conversions and definition.conversions.decode
    states = {}
    for key, values in found.items():
        ver_key, data_key = groups[key][2:]
        gen, ver, raw = int(values[gen_key]), int(values[ver_key]), values.get(data_key)
        row = MISSING
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
    if groups:
        definition.adapter.store(groups, definition.timeout)
        stats.incr(definition.name, "fills", len(groups))
    return too_large


def _rejected(definition: Definition, key: str) -> None:
    stats.incr(definition.name, "rejected")
    if definition.name not in _warned_rejected:
        _warned_rejected.add(definition.name)
        logger.warning(
            "cachelayer: %s %r: a cached payload failed authentication (forged, or signed with a key this "
            "process does not accept: see PAYLOAD_KEY); served from the database, counted as 'rejected'",
            definition.name,
            key,
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
            "and cache_decode() on the field (see the README's Payload format).",
            definition.name,
            conf.get("SERIALIZER"),
            label,
            attname,
            type(exc).__name__,
            exc,
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
        )


def query_rows(definition: Definition, user_keys: list[str], using: str) -> dict[str, tuple]:
    """Read rows by key from the database in one query (values in ``stored`` order).

    Under a collation that cannot be folded exactly, rows cannot be told apart by
    key in Python: each key is read by a query of its own."""
    from django.db.models import Q

    pairs = key_lookups(definition, user_keys)
    if not pairs:
        return {}
    manager = definition.model._base_manager.using(using)
    if not definition.codec.exact():
        found = ((key, manager.filter(**lookup).values_list(*definition.stored).first()) for key, lookup in pairs)
        return {key: row for key, row in found if row is not None}
    lookups = [lookup for _, lookup in pairs]
    if len(definition.key_fields) == 1:
        attname = definition.key_fields[0].attname
        qs = manager.filter(**{f"{attname}__in": [lookup[attname] for lookup in lookups]})
    else:
        condition = Q()
        for lookup in lookups:
            condition |= Q(**lookup)
        qs = manager.filter(condition)
    keyed = ((definition.codec.key_of(row), row) for row in qs.values_list(*definition.stored))
    return {key: row for key, row in keyed if key is not None}  # None: a stored value no key is made of


def key_lookups(definition: Definition, user_keys: list[str]) -> list[tuple[str, dict]]:
    """Return ``(key, ORM filter)`` of the keys a row can have."""
    pairs = ((key, definition.codec.lookup(key)) for key in user_keys)
    return [(key, lookup) for key, lookup in pairs if lookup is not None]


def wait_for_fill(definition: Definition, state: State, deadline: float):
    """Poll the cache until a payload for ``state``'s key appears or the deadline passes."""
    interval = conf.get("LEASE_POLL_INTERVAL")
    while time.monotonic() < deadline:
        time.sleep(interval)
        fresh = fetch(definition, [state.key]).state(state.key)
        if fresh is None:
            return MISSING  # its server went away: the caller reads the database
        if fresh.row is not MISSING:
            return fresh.row
        interval = min(interval * 1.5, 0.05)
    return MISSING
