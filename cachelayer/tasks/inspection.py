"""Compare what a container's cache would serve with its database (cache_inspect).

Keys are checked one chunk at a time: their cached state through the read
path's own ``versions.fetch`` (one multi-get), then their rows (one query).
Nothing is filled; ``fetch`` only creates counters that were missing, as
any read would. A key that disagrees is a *suspect*, and counts only when a
second look confirms it: its row read again, then, a moment later, its
cached state still at the same generation and version and still different.
So a write that commits between the two reads (its invalidation lands after
commit) is never reported, while an entry no invalidation reached is.

An index container is compared one distinct value at a time: the cached
list (or the length stored for a list over INDEX_MAX_ROWS) against the list
the database gives now.

Like a read, an inspection inside ``atomic`` sees the database for the keys
its transaction wrote (those are not compared: the cache rightly still holds
what others see), and is refused unless under READ COMMITTED, where its
database reads could be older than the cache.
"""

from __future__ import annotations

import decimal
import math
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction

from cachelayer.engine import loaders, stats, transactions, versions
from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import registry, resolve
from cachelayer.exceptions import CachelayerError, CacheUnavailable, OperationDisabled
from cachelayer.tasks import warming

CHUNK_SIZE = warming.CHUNK_SIZE  # keys per multi-get / query
EXAMPLES = 10  # keys of each kind a result names
CONFIRM_DELAY = 0.05  # s between a suspect's second database read and second cache read:
# far longer than the gap between a writer's commit and its invalidation

_NAN = object()  # what every NaN compares as

STALE = "stale"
MISSING_BUT_PRESENT = "missing_but_present"


@dataclass
class InspectionResult:
    """What an inspection of one container found.

    ``cached`` counts the keys the cache would serve: rows and negative
    entries. ``stale`` counts cached rows that differ from the database row
    or whose row is gone; ``missing_but_present`` cached negative entries
    whose row exists. ``stale_keys`` / ``missing_but_present_keys`` name up
    to EXAMPLES of each. ``skipped`` says why nothing was checked.
    """

    container: str
    scope: str = "all rows"
    checked: int = 0
    cached: int = 0
    stale: int = 0
    missing_but_present: int = 0
    stale_keys: list[str] = field(default_factory=list)
    missing_but_present_keys: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0
    finished: float = 0.0  # unix time

    @property
    def ok(self) -> bool:
        """True when the cache serves nothing the database contradicts."""
        return not (self.stale or self.missing_but_present)

    @property
    def consistency(self) -> float:
        """Return 1 - (stale + missing_but_present) / cached: 1.0 when nothing is cached."""
        return float(self._ratio())

    @property
    def nines(self) -> str:
        """Return the consistency as a percentage, e.g. ``99.99%``."""
        return nines(self._ratio())

    def _ratio(self) -> Fraction:
        wrong = self.stale + self.missing_but_present
        return Fraction(self.cached - wrong, self.cached) if self.cached else Fraction(1)

    def as_dict(self) -> dict:
        """Return the result as JSON can carry it (also what the admin shows)."""
        return {**asdict(self), "ok": self.ok, "consistency": self.consistency, "nines": self.nines}


def nines(ratio: Fraction) -> str:
    """Format a ratio as a percentage with its nines: never rounded up to 100%.

    ``Fraction(9999, 10000)`` is ``99.99%``, ``Fraction(1)`` ``100%``.
    """
    if ratio >= 1:
        return "100%"
    decimals = max(0, math.ceil(-math.log10(1 - ratio)) - 2)
    return f"{decimal.Decimal(math.floor(ratio * 100 * 10**decimals)).scaleb(-decimals):f}%"


def _comparable(value):
    """Return a value as equality should see it once it went through a serializer.

    A list and a tuple of equal items are equal (JSON payloads written before
    0.1.0 hold lists as tuples), a BinaryField may read as memoryview, and
    NaN equals nothing, not even itself.
    """
    if isinstance(value, (tuple, list)):
        return tuple(_comparable(item) for item in value)
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, (float, decimal.Decimal)) and value != value:
        return _NAN
    return value


def same(cached, fresh) -> bool:
    """Return True when a cached row and a database row hold the same data.

    Values compare as Python does (Decimal("1.10") == Decimal("1.1"); aware
    datetimes by instant) after ``_comparable``. The one comparison
    cache_inspect makes.
    """
    return _comparable(cached) == _comparable(fresh)


def verdict(cached, fresh) -> str | None:
    """Return STALE, MISSING_BUT_PRESENT or None for a key's cached state and its row (None: no row)."""
    if cached is versions.MISSING:
        return None  # a miss: the read path would go to the database
    if cached is versions.ABSENT:
        return MISSING_BUT_PRESENT if fresh is not None else None
    return STALE if fresh is None or not same(cached, fresh) else None


def skip_reason(definition: Definition) -> str | None:
    """Return why a container's cache holds nothing to inspect, or None."""
    try:
        return warming.unfilled(definition)
    except OperationDisabled as exc:
        return str(exc)


def inspect(
    definition, sample: int | None = None, *, keys=None, chunk_size: int = CHUNK_SIZE, progress=None
) -> InspectionResult:
    """Compare what the cache would serve for a container with its database.

    ``definition`` is a Definition, a container name or a model. Checks every
    row in key order, or ``sample`` rows chosen at random, or exactly
    ``keys`` (key values as ``Model.cached.get`` takes them; rows that no
    longer exist included, which is how a deleted row still cached is
    found). ``progress(n)`` is called after each chunk. Records the result
    for ``stats.shared()`` (the admin's stats page) and returns it; a write
    path test ends with ``assert inspect(Item, keys=touched).ok``.

    Raises CacheUnavailable when a key's cache server cannot be read, and
    CachelayerError inside ``atomic`` unless under READ COMMITTED.
    """
    if not isinstance(definition, Definition):
        definition = resolve(definition)
    if not transactions.may_fill(definition.db_alias()):
        raise CachelayerError(
            f"cannot inspect {definition.name} inside a transaction that is not READ COMMITTED: "
            "its reads may be older than the cache"
        )
    started = time.monotonic()
    result = InspectionResult(definition.name, scope=_scope(sample, keys))
    result.skipped = skip_reason(definition)
    if result.skipped:
        return result
    for chunk in _chunks(definition, sample, keys, chunk_size):
        while True:
            try:
                canonical = (definition.codec.user_key(key) for key in chunk)
                _check(definition, [key for key in canonical if key is not None], result)
                break
            except versions.Restart:  # the configuration changed: check the chunk with the new definition
                definition = registry.get(definition.name)
                result.skipped = skip_reason(definition)
                if result.skipped:
                    return result
        if progress:
            progress(len(chunk))
    result.seconds, result.finished = time.monotonic() - started, time.time()
    _record(result)
    return result


def _scope(sample, keys) -> str:
    if keys is not None:
        return f"{len(keys)} keys"
    return "all rows" if sample is None else f"sample of {sample}"


def _chunks(definition: Definition, sample, keys, chunk_size: int):
    """Yield the keys to check, ``chunk_size`` at a time (as key column tuples, or as given)."""
    if sample is None and keys is None:
        last = None
        while page := warming.keys_after(definition, last, chunk_size)[0]:
            yield page
            last = page[-1]
        return
    if keys is None:
        attnames = [f.attname for f in definition.key_fields]
        manager = definition.model._base_manager.using(definition.db_alias())
        keys = list(manager.order_by("?").values_list(*attnames)[:sample])
    for start in range(0, len(keys), chunk_size):
        yield keys[start : start + chunk_size]


def _check(definition: Definition, keys: list[str], result: InspectionResult) -> None:
    """Check one chunk and add it to ``result`` (untouched when Restart is raised)."""
    keys = list(dict.fromkeys(keys))  # a key named twice is checked once
    cached, confirmed = compare(definition, keys)
    result.checked += len(keys)
    result.cached += cached
    for key, kind in confirmed.items():
        setattr(result, kind, getattr(result, kind) + 1)
        examples = getattr(result, f"{kind}_keys")
        if len(examples) < EXAMPLES:
            examples.append(key)


def compare(definition: Definition, keys: list[str]) -> tuple[int, dict[str, str]]:
    """Return how many of ``keys`` (canonical, distinct) the cache would serve, and
    ``{key: STALE or MISSING_BUT_PRESENT}`` for those a second look confirms wrong.

    Fills nothing; at most two queries (the rows, and the suspects' rows again).
    Raises CacheUnavailable, and versions.Restart when the configuration changed.
    """
    states = _fetch(definition, keys)
    using = definition.db_alias()
    written = transactions.written_test(using, definition.name)
    if written is not None:  # the read path serves these from the database in this transaction
        states = {key: state for key, state in states.items() if not written(key)}
    rows = _database(definition, keys, using)
    suspects = {key: state for key, state in states.items() if verdict(state.row, rows.get(key))}
    confirmed = _confirm(definition, suspects, using) if suspects else {}
    return sum(state.row is not versions.MISSING for state in states.values()), confirmed


def _confirm(definition: Definition, suspects: dict, using: str) -> dict[str, str]:
    """Return ``{key: verdict}`` for the suspects still wrong on a second look.

    The rows are read again, then (after CONFIRM_DELAY) the cache: a key
    whose generation or version moved since the first look was invalidated
    by a write, as it should be, and is not counted.
    """
    keys = list(suspects)
    rows = _database(definition, keys, using)
    time.sleep(CONFIRM_DELAY)
    confirmed = {}
    for key, later in _fetch(definition, keys).items():
        first = suspects[key]
        if (later.gen, later.ver) == (first.gen, first.ver) and (kind := verdict(later.row, rows.get(key))):
            confirmed[key] = kind
    return confirmed


def _database(definition: Definition, keys: list[str], using: str) -> dict:
    """Return what a fill would store for ``keys`` now: rows, or an index's lists."""
    return loaders.of(definition).stored(definition, keys, using)


def _fetch(definition: Definition, keys: list[str]) -> dict:
    states, unreachable = versions.fetch(definition, keys)
    if unreachable:
        raise CacheUnavailable(
            f"cache {definition.cache_alias} cannot be read now; inspect {definition.name} later",
            cache=definition.cache_alias,
        )
    return states


def _record(result: InspectionResult) -> None:
    """Keep the result where every process's admin sees it; a cache that fails now only loses that."""
    try:
        stats.note_inspection(result.container, result.as_dict())
    except CacheUnavailable:
        pass
