"""Invalidate after commit: bump row versions, or the generation when the
affected keys are unknown.

A write records *what changed*: snapshots of rows (``{attname: value}``, old
and new), keys of one container, or whole containers. Keys are worked out
only at delivery, against the definitions current then: the delivery reads
the configuration version in the same round trip, and when an admin edit
happened since this process last looked, it reloads and also outdates the
containers it did not know. A snapshot that lacks a container's key column
outdates that container's generation.

Nothing touches the cache before the commit, so a rollback leaves it
untouched; what the cache does not take after the commit is kept in the
outbox (outbox.py). Delivery never raises into the writer, whose
transaction has committed: whatever goes wrong (a bug, a client error no
adapter translates), it is logged and the generation of every container the
changes name is bumped through the outbox.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from cachelayer import signals
from cachelayer.adapters.base import Adapter, Route
from cachelayer.adapters.registry import get_adapter
from cachelayer.core import conf, logfields
from cachelayer.core.codec import UNLISTED
from cachelayer.core.keys import KeySpace, config_key
from cachelayer.engine import memo, outbox, refills, samples, stats, topology, transactions
from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import lineage, registry
from cachelayer.models import Container

logger = logging.getLogger("cachelayer")


@dataclass
class Changes:
    """What one transaction changed, resolved to cache keys only at delivery."""

    rows: dict = field(default_factory=dict)  # model label -> (model, [snapshot])
    whole_models: dict = field(default_factory=dict)  # model label -> model: rows unknown
    keys: defaultdict = field(default_factory=lambda: defaultdict(set))  # container name -> user keys
    containers: set = field(default_factory=set)  # container names: bump the generation
    # Saves captured before the write (capture.py): each gives its rows() unless its post_save did.
    captures: list = field(default_factory=list)
    configuration: set | None = None  # a configuration edit: bump the version (and these generations)
    # Refill the keys outdated, where the policy asks (refills.py); False for a bump before the write.
    refill: bool = True

    def merge(self, other: Changes) -> None:
        for label, (model, snapshots) in other.rows.items():
            self.rows.setdefault(label, (model, []))[1].extend(snapshots)
        self.whole_models.update(other.whole_models)
        for name, keys in other.keys.items():
            self.keys[name].update(keys)
        self.containers.update(other.containers)
        self.captures.extend(other.captures)
        if other.configuration is not None:
            self.configuration = (self.configuration or set()) | other.configuration
        self.refill = self.refill or other.refill

    def log_fields(self, error: BaseException | None = None) -> dict:
        """Return the ``extra`` of a log record about these changes: their container and its
        keys when they name one container (rows are resolved to containers only at delivery)."""
        names = set(self.keys) | self.containers
        if len(names) != 1:
            return logfields.fields(error=error)
        (name,) = names
        return logfields.fields(
            container=name, keys=sorted(self.keys[name]) if name in self.keys else None, error=error
        )

    def models(self) -> list:
        """Return every model whose rows these changes name."""
        return (
            [model for model, _ in self.rows.values()]
            + list(self.whole_models.values())
            + [capture.model for capture in self.captures]
        )

    def resolve(self) -> tuple[dict[Definition, set], set[Definition]]:
        """Return ``({definition: keys}, {definitions to bump})`` under the current definitions."""
        keys: defaultdict[Definition, set] = defaultdict(set)
        generations: set[Definition] = set()
        rows = [*self.rows.values(), *((c.model, c.rows()) for c in self.captures if not c.done)]
        for model, snapshots in rows:
            found, unknown = row_keys(model, snapshots)
            for definition, names in found.items():
                keys[definition].update(names)
            generations.update(unknown)
        for model in self.whole_models.values():
            generations.update(registry.sharing_rows(model))
        for model in self.models():
            generations.update(registry.unreadable(model))  # type: ignore[arg-type]  # bumped alike
        for name, names_keys in self.keys.items():
            if (named := registry.find(name)) is not None:
                keys[named].update(names_keys)
        generations.update(d for d in map(registry.find, self.containers) if d is not None)
        return keys, generations


def row_keys(model, snapshots: list) -> tuple[dict[Definition, set], set[Definition]]:
    """Return ``({definition: keys}, {definitions})`` for snapshots of ``model`` rows: the
    keys they name in each container that keeps those rows, and the containers
    whose key columns some snapshot lacks (their generation is to be bumped)."""
    keys: defaultdict[Definition, set] = defaultdict(set)
    generations: set[Definition] = set()
    for definition in registry.sharing_rows(model):
        for snapshot in rows_of(definition.model, model, snapshots):
            key = definition.codec.key_or_none(snapshot)
            if key is None:
                generations.add(definition)
            elif key is not UNLISTED:
                keys[definition].add(key)
    return keys, generations


def rows_of(target, model, snapshots: list) -> list:
    """Return snapshots of ``model`` rows as rows of ``target``.

    A multi-table child's primary key is its parent link, which holds the
    parent's primary key. Another model on the same table names the columns
    its own way: values are matched by column, and a column ``target`` does
    not have is left out (a container keyed by it gets its generation bumped).
    """
    if _label(model) == _label(target):
        return snapshots
    if _label(model) in lineage(target):
        link, pk = target._meta.concrete_model._meta.pk.attname, model._meta.pk.attname
        return [{**snapshot, link: snapshot[pk]} if pk in snapshot else snapshot for snapshot in snapshots]
    if _label(target) in lineage(model):
        return snapshots  # a parent's columns are the child's too, under the same attnames
    theirs = {f.column: f.attname for f in target._meta.concrete_fields}
    mine = {f.attname: theirs.get(f.column) for f in model._meta.concrete_fields}
    return [{mine[a]: v for a, v in snapshot.items() if mine.get(a)} for snapshot in snapshots]


def _label(model) -> str:
    return model._meta.concrete_model._meta.label_lower  # historical models (migrations) share it


def _record(using: str | None, changes: Changes, marks: Changes | None = None) -> None:
    """Add ``changes`` to the current transaction's, or deliver them at once outside ``atomic``.

    The keys ``marks`` (default: ``changes``) names bypass the cache for the
    rest of the transaction (read-your-writes, under this process's definitions)."""
    memo.wrote()
    current = transactions.pending(using, Changes, deliver) if using is not None else None
    if current is None:
        deliver(changes, using)
        return
    current.changes.merge(changes)
    keys, generations = (marks or changes).resolve()
    current.keys.update((definition.name, key) for definition, names in keys.items() for key in names)
    current.containers.update(definition.name for definition in generations)


def record_rows(using: str | None, model, snapshots) -> None:
    """Outdate the rows described by ``snapshots`` (``{attname: value}``, old
    and new values alike) in every container of ``model``, after commit."""
    snapshots = [snapshot for snapshot in snapshots if snapshot]
    if snapshots:
        _record(using, Changes(rows={_label(model): (model, snapshots)}))


def record_model(using: str | None, model) -> None:
    """Outdate every row of ``model`` in every container, after commit (rows unknown)."""
    _record(using, Changes(whole_models={_label(model): model}))


def record_capture(using: str, capture) -> None:
    """Keep a save captured before its write (capture.py) in the current transaction,
    which delivers it at commit unless its post_save did (``capture.done``):
    no receiver that raises or runs first can skip it."""
    marks = Changes(keys=_names(known_keys(capture.model, capture.rows())))
    _record(using, Changes(captures=[capture]), marks)


def known_keys(model, snapshots: list) -> dict[Definition, set]:
    """Return the keys ``snapshots`` name in full in each container (none bumped for what they lack)."""
    return row_keys(model, [snapshot for snapshot in snapshots if snapshot])[0]


def _names(keys: dict) -> defaultdict:
    named: defaultdict[str, set] = defaultdict(set)
    for definition, names in keys.items():
        named[definition.name].update(names)
    return named


def record_configuration(using: str | None, names=()) -> None:
    """Bump the configuration version (and the generations of containers ``names``)
    once the current transaction commits, with its other invalidations."""
    _record(using, Changes(configuration=set(names)))


def invalidate_keys(using: str | None, definition: Definition, keys) -> None:
    """Outdate ``keys`` of a container once the current transaction commits."""
    invalidate_many(using, {definition: keys})


def invalidate_many(using: str | None, changes: dict, refill: bool = True) -> None:
    """Outdate ``{definition: keys}`` once the current transaction commits
    (``refill=False``: a bump before the write, which a refill would only undo)."""
    keys = _names(changes)
    if any(keys.values()):
        _record(using, Changes(keys=keys, refill=refill))


def invalidate_container(using: str | None, definition: Definition) -> None:
    """Outdate every key of a container (O(1): bump its generation) after commit; ``using`` None: now."""
    _record(using, Changes(containers={definition.name}))


def deliver(changes: Changes, using: str | None = None) -> None:
    """Outdate what ``changes`` names now; never raises (see the module's docstring)."""
    delivered: dict[Definition, list[str]] = {}
    try:
        delivered = _deliver(changes, using)
    except Exception as exc:
        logger.exception(
            "cachelayer: delivering invalidations failed; the outbox outdates their containers",
            extra=changes.log_fields(error=exc),
        )
        _keep_generations(changes, using)
    finally:
        memo.wrote()  # once the cache was bumped: a memo may have read the old payload since the write
    if changes.configuration is not None:
        try:
            bump_configuration(using, sorted(changes.configuration))
        except Exception as exc:
            logger.exception("cachelayer: bumping the configuration version failed", extra=logfields.fields(error=exc))
    if changes.refill and delivered:
        refills.refill(delivered)  # never raises


def _keep_generations(changes: Changes, using: str | None) -> None:
    """Put a generation bump of every container ``changes`` may touch in the
    outbox (its servers are marked dirty: no read uses them until the replay)."""
    try:
        named = {d for d in map(registry.find, (*changes.keys, *changes.containers)) if d is not None}
        for model in changes.models():
            named.update(registry.sharing_rows(model))
            named.update(registry.unreadable(model))  # type: ignore[arg-type]  # kept alike
        for definition in named:
            outbox.record(using, definition.adapter, definition.name, shared=[definition.keys.gen])
    except Exception:
        logger.exception(
            "cachelayer: could not keep undelivered invalidations of %s", changes, extra=changes.log_fields()
        )


def _deliver(changes: Changes, using: str | None) -> dict[Definition, list[str]]:
    """Outdate what ``changes`` names now: one round trip per cache server;
    return the keys the cache took (``{definition: keys}``).

    The configuration version travels in the same round trip; when it shows
    an edit this process has not loaded, the definitions are reloaded and
    the containers they add are outdated too. What the cache does not take
    goes to the outbox (in ``using``, the database of the write).
    """
    done_keys: set[tuple[str, str]] = set()
    done_generations: set[str] = set()
    delivered: dict[Definition, list[str]] = {}
    keys: dict[Definition, Any]  # resolve()'s sets of user keys, then the sorted lists still owed
    generations: Collection[Definition]
    for _ in range(2):
        keys, generations = changes.resolve()
        keys = {d: sorted(k for k in names if (d.name, k) not in done_keys) for d, names in keys.items()}
        keys = {d: names for d, names in keys.items() if names}
        generations = [d for d in generations if d.name not in done_generations]
        versions_seen = _deliver_keys(keys, using, delivered)
        for definition in generations:
            deliver_generation(definition, using)
        if not versions_seen and registry.loaded:  # (not loaded: cachelayer's tables do not exist yet)
            versions_seen = registry.config_version(conf.get("CACHE_ALIAS"))
        done_keys.update((d.name, k) for d, names in keys.items() for k in names)
        done_generations.update(d.name for d in generations)
        # A list, not a generator: observe records every version, so none may be skipped.
        observed = [registry.observe(alias, version) for alias, version in versions_seen.items()]
        if not any(observed):
            return delivered
    return delivered


def _deliver_keys(changes: dict, using: str | None, delivered: dict) -> dict[str, int]:
    """Bump the row versions of ``{definition: keys}``, one adapter call per cache;
    return the configuration version each cache answered with, and add the keys
    the cache took to ``delivered``."""
    by_adapter: defaultdict[Adapter, dict[Definition, Any]] = defaultdict(dict)
    for definition, keys in changes.items():
        by_adapter[definition.adapter][definition] = keys
    versions_seen = {}
    config = config_key(conf.get("KEY_PREFIX"))
    for adapter, part in by_adapter.items():
        topology.ensure(adapter)
        owed = {definition: _groups(definition, keys) for definition, keys in part.items()}
        merged: defaultdict[Route, tuple[list[str], list[str]]] = defaultdict(
            lambda: ([], [])
        )  # containers may share a route (user key)
        for groups in owed.values():
            for route, (counters, payloads) in groups.items():
                merged[route][0].extend(counters)
                merged[route][1].extend(payloads)
        failed: Collection[Route]
        failed, read = adapter.invalidate(merged, read=[config])
        failed = set(failed)
        if config in read:
            versions_seen[adapter.alias] = int(read[config])
        for definition, groups in owed.items():
            lost = {route: groups[route] for route in groups if route in failed}
            if lost:
                outbox.record(using, adapter, definition.name, groups=lost, generation=definition.keys.gen)
            taken = [key for key in part[definition] if key not in failed]
            if taken:
                delivered.setdefault(definition, []).extend(taken)
            _count_and_signal(definition, part[definition], failed=bool(lost))
            samples.publish(definition, part[definition])
    return versions_seen


def deliver_generation(definition: Definition, using: str | None = None) -> None:
    """Bump the container generation on every server now (outbox for those that fail)."""
    adapter, space = definition.adapter, definition.keys
    topology.ensure(adapter)
    failed = adapter.incr_everywhere(space.gen)
    if failed:
        outbox.record(using, adapter, definition.name, shared=[space.gen], servers=failed)
    _count_and_signal(definition, None, failed=bool(failed))


def _groups(definition: Definition, keys) -> dict:
    space = definition.keys
    parts = {key: space.part(key) for key in keys}
    return {key: ([space.ver(part)], [space.data(part)]) for key, part in parts.items()}


def _count_and_signal(definition: Definition, keys, failed: bool) -> None:
    if failed:
        stats.incr(definition.name, "errors")
    stats.incr(definition.name, "invalidations", len(keys) if keys else 1)
    signals.cache_invalidated.send(sender=definition.model, container=definition.name, keys=keys)


def bump_configuration(using: str | None, names=()) -> None:
    """Bump the configuration version on every cache a container uses, and the
    generation of each container named, so that every process reloads its
    definitions (and payloads left in a cache a container moved away from die).

    Run after the commit of a configuration edit: one bump covers any number
    of containers (migrate creates them all at once)."""
    aliases = {conf.get("CACHE_ALIAS")}
    aliases.update(a or conf.get("CACHE_ALIAS") for a in Container.objects.values_list("cache_alias", flat=True))
    registry.mark_stale()
    prefix = conf.get("KEY_PREFIX")
    shared = [config_key(prefix), *(KeySpace(prefix, name).gen for name in names)]
    for alias in aliases:
        adapter = get_adapter(alias)
        for key in shared:
            failed = adapter.incr_everywhere(key)
            if failed:
                outbox.record(using, adapter, "", shared=[key], servers=failed)
