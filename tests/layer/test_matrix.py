"""The write-path matrix: random sequences of Django writes, and after each
committed step every container's cached read equals a fresh database read.

Hypothesis drives a state machine over Django's write APIs (save, create,
delete, QuerySet.update/delete, bulk_create, bulk_update, update_or_create,
get_or_create, m2m add/remove/clear/set, parent deletes with CASCADE and
SET_NULL, key-column changes, only()/defer() and hand-built instances,
refresh_from_db, raw SQL followed by invalidate(), repository verbs, a
project's receiver raising after the write (connected ahead of cachelayer's), nested
atomic with savepoint rollbacks, historical models) on a mixin model, a plain
model mapped in the admin, a mixin model with its own manager, a two-column
key, a model with two containers, and a model with index containers (rows
moving between lists: foreign key and status changes, parent deletes with
CASCADE and SET_NULL, m2m through rows indexed by their source). Each run
ends with cache_inspect's check of every container (0 stale). Bounded: 30
sequences of 15 steps per database x cache, derandomized, without the shrink
phase (a failure prints its whole sequence; shrinking a database-backed
sequence can take minutes).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from itertools import product

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.signals import request_finished, request_started
from django.db import IntegrityError, connection, transaction
from django.db.models import signals
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

import cachelayer
from cachelayer.engine import indexes, reads
from cachelayer.engine.registry import registry
from cachelayer.mixins import CachedAccess
from cachelayer.models import Container
from cachelayer.tasks.inspection import inspect
from tests.layer.project_code import Indexer, receiver_ahead
from tests.testapp.models import (
    Child,
    Comment,
    Group,
    Item,
    Managed,
    Member,
    Owner,
    Pair,
    Parent,
    Pet,
    Plain,
    Post,
    Slugged,
    Team,
    Topic,
)

pytestmark = pytest.mark.slow  # 30 hypothesis write sequences per cache: most of a database half

CODES = ("a", "b", "c")  # few keys, so that writes collide, move rows and reuse freed keys
VALUES = st.integers(0, 3)


@dataclass(frozen=True)
class Spec:
    """One model of the matrix: how to give a row a key, and what covers its bulk paths."""

    model: type
    key: tuple[str, ...] = ()  # key columns besides the primary key
    manual: bool = False  # bulk paths need cachelayer.invalidate() (a plain model: no queryset of ours)
    parents: tuple[str, ...] = ()  # foreign keys given the parent named by the code (an index's column)

    def key_values(self, code: str) -> dict:
        values = {name: parent_named(self.model, name, code) for name in self.parents}
        if not self.key:
            return values
        return {self.key[0]: code, **dict.fromkeys(self.key[1:], 1), **values}


def parent_named(model, name: str, code: str):
    parent = model._meta.get_field(name).related_model
    return parent.objects.get_or_create(**{"title" if parent is Post else "name": code})[0]


SPECS = [
    Spec(Item),
    Spec(Plain, ("code",), manual=True),
    Spec(Managed, ("code",)),
    Spec(Slugged, ("slug",)),  # two containers: by slug and by id
    Spec(Pair, ("left", "right")),
    Spec(Comment, parents=("post",)),  # index containers: by post, by post and status, by topic
]
SPEC = st.sampled_from(SPECS)
SPEC_MODELS = [spec.model for spec in SPECS]
RAISING_SIGNALS = ("post_save", "post_delete", "m2m_changed")  # a project receiver may raise on
KEYED = st.sampled_from([s for s in SPECS if s.key])
CODE = st.sampled_from(CODES)
INDEX = st.integers(0, 7)


def _mapped_containers():
    for name, model, key in (
        ("plain", Plain, "code"),
        ("slugged_by_id", Slugged, "id"),
        ("team_members", Team.members.through, "id"),
    ):
        Container.objects.create(name=name, content_type=ContentType.objects.get_for_model(model), key_columns=key)


_historical = {}


def historical(model):
    """The model as a data migration sees it (apps.get_model in RunPython)."""
    if not _historical:
        from django.apps import apps
        from django.db.migrations.state import ProjectState

        _historical["apps"] = ProjectState.from_apps(apps).apps
    return _historical["apps"].get_model(model._meta.app_label, model._meta.model_name)


def new_request():
    request_finished.send(sender=None)
    request_started.send(sender=None)


def row_values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def assert_cache_matches_database():
    """Every container's read of every key (present or not) equals the database."""
    new_request()
    registry.load()
    for definition in matrix_definitions():
        model = definition.model
        if definition.is_index:
            _assert_lists_match(definition)
            continue
        rows = [row_values(r) for r in model._base_manager.all()]
        expected = {definition.codec.key_from(row): row for row in rows}
        candidates = set(expected) | _absent_keys(definition)
        cached = CachedAccess(model, definition.name).get_many(sorted(candidates))
        got = {key: row_values(instance) for key, instance in cached.items()}
        # a key in any form the database holds equal ("a" and "A" under a _ci collation) finds the row
        canonical = {key: definition.codec.user_key(key) for key in candidates}
        assert got == {k: expected[c] for k, c in canonical.items() if c in expected}, definition.name


_seen_pks: set = set()
STATUSES = ("open", "closed")


def _index_candidates(definition) -> list[dict]:
    """Every value an index list may be asked for: every parent this example has seen, every status."""
    choices = []
    for f in definition.key_fields:
        choices.append(
            sorted(_seen_pks | set(f.related_model._base_manager.values_list("pk", flat=True)))
            if f.is_relation
            else STATUSES
        )
    attnames = [f.attname for f in definition.key_fields]
    return [dict(zip(attnames, combination)) for combination in product(*choices)]


def _assert_lists_match(definition):
    """The cached list of every candidate value equals the database's.

    One query for the whole table and one multi-key read through the cache
    (what ``read_list`` does for one key), not two round trips per candidate:
    the candidates grow with every parent the run has seen."""
    attnames = [f.attname for f in definition.key_fields]
    width = len(attnames)
    expected: dict[tuple, list] = {}
    for row in definition.model._base_manager.order_by("pk").values_list(*attnames, *definition.stored):
        expected.setdefault(row[:width], []).append(row[width:])
    candidates = _index_candidates(definition)
    keys = [definition.codec.user_key(definition.codec.key_from(values)) for values in candidates]
    cached = reads.with_definition(
        definition.name, "get", lambda found, policy: indexes.read_lists(found, [k for k in keys if k], policy)
    )
    for values, key in zip(candidates, keys):
        got = list(cached[key]) if key else []
        assert got == expected.get(tuple(values[a] for a in attnames), []), (definition.name, values)


def _absent_keys(definition) -> set[str]:
    names = [f.name for f in definition.key_fields]
    if names == ["id"]:
        return {str(pk) for pk in _seen_pks}
    if len(names) == 2:
        return {definition.codec.key_from({"left": c, "right": r}) for c in CODES for r in (1, 2)}
    return set(CODES)


# Every model the matrix writes (children first): its containers are the ones checked.
MODELS = (Pet, Owner, Child, Parent, Team, Group, Member, Item, Plain, Managed, Slugged, Pair, Comment, Post, Topic)


def matrix_definitions() -> list:
    """The containers of the models the matrix writes (other test models' are not its business)."""
    labels = {model._meta.label_lower for model in (*MODELS, Team.members.through)}
    return [d for d in registry.by_name.values() if d.model._meta.concrete_model._meta.label_lower in labels]


class WritePaths(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        for model in MODELS:
            model._base_manager.all().delete()
        registry.load()
        for name in registry.by_name:  # each example starts from an empty cache: a failure is its own
            cachelayer.invalidate(name)
        # The keys this example may ask for are the pks it sees: a key of an earlier
        # example is outdated above and never read again unless a row of this one
        # takes it (then it is seen). Kept across examples, the candidates grew with
        # every auto-increment pk of the run (not reused on MariaDB and PostgreSQL).
        _seen_pks.clear()
        self.receivers = contextlib.ExitStack()  # the project's raising receivers (project_receivers)

    # -- helpers ------------------------------------------------------------

    def pick(self, spec, index):
        """Return a row of the model, or None; ``index`` is drawn up front, so draws never depend on the database."""
        rows = list(spec.model._base_manager.order_by("pk"))
        return rows[index % len(rows)] if rows else None

    def write(self, function, atomic):
        """Run a write; a unique-key collision is a rolled-back write (also a path), a
        project receiver's error is caught as the project would."""
        try:
            if atomic:
                with transaction.atomic():
                    function()
            else:
                function()
        except (IntegrityError, Indexer):
            pass
        for model in (*(spec.model for spec in SPECS), Post, Topic, Group):
            _seen_pks.update(model._base_manager.values_list("pk", flat=True))

    def after_bulk(self, spec):
        if spec.manual:
            cachelayer.invalidate("plain")  # documented: no in-process cover for a plain model's bulk paths

    # -- rules: single rows ---------------------------------------------------

    @rule(spec=SPEC, code=CODE, value=VALUES, atomic=st.booleans())
    def create(self, spec, code, value, atomic):
        self.write(lambda: spec.model.objects.create(value=value, **spec.key_values(code)), atomic)

    @rule(spec=SPEC, index=INDEX, value=VALUES, atomic=st.booleans())
    def save_value(self, spec, index, value, atomic):
        row = self.pick(spec, index)
        if row is not None:
            row.value = value
            self.write(row.save, atomic)

    @initialize(raising=st.sampled_from([(), ("post_save",), ("post_delete",), ("m2m_changed",), RAISING_SIGNALS]))
    def project_receivers(self, raising):
        """In this example, a project's receiver connected ahead of cachelayer's raises on
        every write of the matrix's models sending one of ``raising`` (the project catches
        it, see ``write``; the rules' own set-up writes of parents are left alone): in
        autocommit a save has committed; inside ``atomic`` the write is rolled back."""
        for signal in raising:
            senders = [Team.members.through, Group.members.through] if signal == "m2m_changed" else SPEC_MODELS
            for sender in senders:
                self.receivers.enter_context(receiver_ahead(getattr(signals, signal), sender))

    @rule(spec=KEYED, index=INDEX, code=CODE, how=st.sampled_from(["loaded", "only", "defer", "hand", "refresh"]))
    def change_key(self, spec, index, code, how):
        row = self.pick(spec, index)
        if row is None:
            return
        if how == "only":
            row = spec.model._base_manager.only("value").get(pk=row.pk)
        elif how == "defer":
            row = spec.model._base_manager.defer(spec.key[0]).get(pk=row.pk)
        elif how == "hand":
            row = spec.model(pk=row.pk, value=row.value, **{k: getattr(row, k) for k in spec.key[1:]})
        elif how == "refresh":
            spec.model.objects.filter(pk=row.pk).update(**{spec.key[0]: code + code})  # another writer
            self.after_bulk(spec)
            row.refresh_from_db()
        setattr(row, spec.key[0], code)
        self.write(row.save, atomic=False)

    @rule(spec=SPEC, index=INDEX, deferred=st.booleans())
    def delete(self, spec, index, deferred):
        row = self.pick(spec, index)
        if row is not None:
            if deferred:
                row = spec.model._base_manager.only("value").get(pk=row.pk)
            self.write(row.delete, atomic=False)

    @rule(spec=SPEC, code=CODE, value=VALUES, update=st.booleans())
    def or_create(self, spec, code, value, update):
        if not spec.key:
            return
        method = spec.model.objects.update_or_create if update else spec.model.objects.get_or_create
        self.write(lambda: method(defaults={"value": value}, **spec.key_values(code)), atomic=False)

    # -- rules: querysets and bulk ------------------------------------------

    @rule(spec=SPEC, below=VALUES, value=VALUES)
    def queryset_update(self, spec, below, value):
        self.write(lambda: spec.model.objects.filter(value__lte=below).update(value=value), atomic=False)
        self.after_bulk(spec)

    @rule(spec=KEYED, index=INDEX, code=CODE)
    def queryset_update_key(self, spec, index, code):
        row = self.pick(spec, index)
        if row is not None:
            self.write(lambda: spec.model.objects.filter(pk=row.pk).update(**{spec.key[0]: code}), atomic=False)
            self.after_bulk(spec)

    @rule(spec=SPEC, below=VALUES)
    def queryset_delete(self, spec, below):
        self.write(lambda: spec.model.objects.filter(value__lte=below).delete(), atomic=False)

    @rule(spec=SPEC, codes=st.lists(CODE, min_size=1, max_size=3, unique=True), value=VALUES)
    def bulk_create(self, spec, codes, value):
        objs = [spec.model(value=value, **spec.key_values(code)) for code in codes]
        self.write(lambda: spec.model.objects.bulk_create(objs), atomic=True)
        self.after_bulk(spec)

    @rule(spec=SPEC, value=VALUES, rotate=st.booleans())
    def bulk_update(self, spec, value, rotate):
        rows = list(spec.model._base_manager.order_by("pk"))
        fields = ["value"]
        for row in rows:
            row.value = value
        if rotate and spec.key and rows:  # keys move along: a <- b <- c ...
            names = [getattr(r, spec.key[0]) for r in rows]
            for row, name in zip(rows, names[1:] + names[:1]):
                setattr(row, spec.key[0], name + "x")
            fields.append(spec.key[0])
        if rows:
            self.write(lambda: spec.model.objects.bulk_update(rows, fields), atomic=True)
            self.after_bulk(spec)

    @rule(spec=SPEC, index=INDEX, value=VALUES)
    def raw_sql_then_invalidate(self, spec, index, value):
        row = self.pick(spec, index)
        if row is None:
            return
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {spec.model._meta.db_table} SET value = %s WHERE id = %s", [value, row.pk])
        if hasattr(row, "invalidate"):
            row.invalidate()
        else:
            cachelayer.invalidate("plain", [row.code])

    @rule(spec=KEYED, code=CODE, value=VALUES, verb=st.sampled_from(["set", "add", "replace", "incr", "delete"]))
    def repository(self, spec, code, value, verb):
        if spec.model is Pair:
            return
        repo = cachelayer.repository(_container_of(spec))
        if verb == "delete":
            self.write(lambda: repo.delete(code), atomic=False)
        elif verb == "incr":
            self.write(lambda: repo.incr(code, value), atomic=False)
        else:
            self.write(lambda: getattr(repo, verb)(code, str(value)), atomic=False)

    @rule(spec=SPEC, historical_model=st.booleans(), value=VALUES, index=INDEX)
    def historical_save(self, spec, historical_model, value, index):
        row = self.pick(spec, index)
        if row is not None and historical_model:
            old = historical(spec.model).objects.get(pk=row.pk)
            old.value = value
            self.write(old.save, atomic=False)

    # -- rules: transactions ---------------------------------------------------

    @rule(spec=SPEC, code=CODE, value=VALUES, index=INDEX)
    def savepoint_rollback(self, spec, code, value, index):
        row = self.pick(spec, index)

        class Rollback(Exception):
            pass

        def outer():
            with transaction.atomic():
                if row is not None:
                    row.value = value
                    row.save()
                try:
                    with transaction.atomic():
                        spec.model.objects.create(value=value + 10, **spec.key_values(code + "s"))
                        spec.model.objects.filter(value__gte=0).update(value=value + 20)
                        raise Rollback
                except (Rollback, IntegrityError):
                    pass
                if row is not None:  # read-your-writes inside the transaction
                    found = CachedAccess(spec.model, _container_of(spec)).get_many([_key(spec, row)])
                    assert [r.value for r in found.values()] == [value]

        self.write(outer, atomic=False)
        self.after_bulk(spec)

    # -- rules: relations --------------------------------------------------------

    @rule(kind=st.sampled_from(["cascade", "set_null"]), value=VALUES)
    def parent_delete(self, kind, value):
        if kind == "cascade":
            parent = Parent.objects.create(name="p")
            Child.objects.create(parent=parent, value=value)
        else:
            parent = Owner.objects.create(name="o")
            Pet.objects.create(owner=parent, value=value)
        assert_cache_matches_database()  # cached with the parent
        self.write(parent.delete, atomic=False)

    @rule(
        verb=st.sampled_from(["add", "remove", "clear", "set"]),
        names=st.lists(CODE, max_size=3, unique=True),
        reverse=st.booleans(),
        grouped=st.booleans(),
    )
    def m2m(self, verb, names, reverse, grouped):
        owner = Group if grouped else Team  # Group's through rows are indexed by group
        team = owner.objects.first() or owner.objects.create(name="t")
        members = [Member.objects.get_or_create(name=name)[0] for name in names]

        def change():
            if reverse and verb in ("add", "remove"):
                for member in members:
                    getattr(member.groups if grouped else member.teams, verb)(team)
            elif verb == "clear":
                team.members.clear()
            elif verb == "set":
                team.members.set(members)
            else:
                getattr(team.members, verb)(*members)

        self.write(change, atomic=False)

    @rule(
        index=INDEX,
        code=CODE,
        status=st.sampled_from(STATUSES),
        how=st.sampled_from(["save", "hand", "update", "bulk_update"]),
    )
    def move_comment(self, index, code, status, how):
        """Move a comment to another post and status: it leaves two lists and joins two."""
        row = self.pick(Spec(Comment), index)
        if row is None:
            return
        post = parent_named(Comment, "post", code)
        if how == "update":
            self.write(lambda: Comment.objects.filter(pk=row.pk).update(post=post, status=status), atomic=False)
            return
        if how == "hand":
            row = Comment(pk=row.pk, value=row.value, topic_id=row.topic_id)
        row.post, row.status = post, status
        if how == "bulk_update":
            self.write(lambda: Comment.objects.bulk_update([row], ["post", "status"]), atomic=True)
        else:
            self.write(row.save, atomic=False)

    @rule(index=INDEX, code=CODE, delete=st.sampled_from(["none", "topic", "post"]))
    def comment_parents(self, index, code, delete):
        """Give a comment a topic; delete a topic (SET_NULL) or a post (CASCADE)."""
        row = self.pick(Spec(Comment), index)
        if row is not None:
            row.topic = parent_named(Comment, "topic", code)
            self.write(row.save, atomic=False)
        parent = {"topic": Topic, "post": Post}.get(delete)
        if parent is not None:
            victim = parent.objects.order_by("pk").first()
            if victim is not None:
                self.write(victim.delete, atomic=False)

    @invariant()
    def cache_matches_database(self):
        assert_cache_matches_database()

    def teardown(self):
        """Every run ends with cache_inspect's check of every container: 0 stale."""
        self.receivers.close()
        for definition in matrix_definitions():
            if definition.is_index:
                keys = sorted({definition.codec.key_from(values) for values in _index_candidates(definition)})
            else:  # canonical, each once: inspect checks a key in the form the cache holds it
                keys = sorted(
                    {definition.codec.key_from(row_values(r)) for r in definition.model._base_manager.all()}
                    | {definition.codec.user_key(key) for key in _absent_keys(definition)} - {None}
                )
            result = inspect(definition, keys=keys)
            assert result.ok and result.checked == len(keys), result.as_dict()


def _container_of(spec) -> str:
    return "plain" if spec.model is Plain else f"testapp_{spec.model._meta.model_name}"


def _key(spec, row):
    definition = registry.get(_container_of(spec))
    return definition.codec.key_from(row_values(row))


def test_write_path_matrix(backend):
    """Random write sequences on every database x cache; 0 stale reads after every committed step.

    The test command replays the same 30 sequences every run; a soak
    (``CACHELAYER_MATRIX_EXAMPLES=N``) draws N new ones.
    """
    _mapped_containers()
    _seen_pks.clear()
    soak = int(os.environ.get("CACHELAYER_MATRIX_EXAMPLES", 0))
    run_state_machine_as_test(
        WritePaths,
        settings=settings(
            max_examples=soak or 30,
            stateful_step_count=15,
            deadline=None,
            derandomize=not soak,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
