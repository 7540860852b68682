"""Every Django behaviour cachelayer relies on that Django does not document
as public API, pinned in one place: a Django upgrade that changes one fails
here first, by name."""

import pytest
from django.core.cache import caches
from django.db import connection, models, transaction
from django.db.models import signals

from tests.testapp.models import Member, Owner, Pet, Team

pytestmark = pytest.mark.django_db(transaction=True)


def test_run_on_commit_holds_savepoint_ids_callback_robust_tuples_run_in_order():
    """transactions.pending inserts (sids, callback, robust) at the front of run_on_commit."""
    ran = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("registered first"))
        entry = connection.run_on_commit[0]
        assert isinstance(entry, tuple) and len(entry) == 3
        sids, callback, robust = entry
        assert isinstance(sids, set) and callable(callback) and robust is False
        connection.run_on_commit.insert(0, (set(connection.savepoint_ids), lambda: ran.append("inserted"), True))
    assert ran == ["inserted", "registered first"]


def test_a_savepoint_rollback_drops_the_callbacks_registered_inside_it():
    ran = []
    with transaction.atomic():
        try:
            with transaction.atomic():
                connection.run_on_commit.insert(0, (set(connection.savepoint_ids), lambda: ran.append("x"), True))
                raise ValueError
        except ValueError:
            pass
    assert ran == []


def test_collector_sends_pre_delete_before_it_nulls_the_children():
    """receivers.before_delete reads the children of SET_NULL relations in pre_delete."""
    owner = Owner.objects.create(name="o")
    owner_pk = owner.pk
    pet = Pet.objects.create(owner=owner)
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(Pet.objects.get(pk=pet.pk).owner_id)

    signals.pre_delete.connect(receiver, sender=Owner)
    try:
        owner.delete()
    finally:
        signals.pre_delete.disconnect(receiver, sender=Owner)
    assert seen == [owner_pk]
    assert Pet.objects.get(pk=pet.pk).owner_id is None


def test_m2m_add_writes_auto_created_through_rows_without_post_save():
    """Only m2m_changed tells that add() wrote through rows."""
    team, member = Team.objects.create(name="t"), Member.objects.create(name="m")
    saved = []

    def receiver(sender, **kwargs):
        saved.append(sender)

    signals.post_save.connect(receiver)
    try:
        team.members.add(member)
    finally:
        signals.post_save.disconnect(receiver)
    assert Team.members.through not in saved
    assert Team.members.through._meta.auto_created


def test_model_instances_can_be_built_by_filling_their_dict():
    """instances.builder builds cache hits the way Model.__reduce__ unpickles."""
    state = models.base.ModelState()
    state.adding, state.db = False, "default"
    owner = Owner.__new__(Owner)
    owner.__dict__.update({"id": 7, "name": "n", "_state": state})
    assert owner.pk == 7 and owner.name == "n" and not owner._state.adding


def test_locmem_cache_private_members_used_for_compare_and_set():
    """adapters.locmem uses _lock, _cache, _has_expired and _set for an atomic get+set."""
    cache = caches["locmem"]
    for name in ("_lock", "_cache", "_has_expired", "_set", "make_and_validate_key", "get_backend_timeout"):
        assert hasattr(cache, name), name


def test_connection_health_members_used_by_cache_serve():
    """protocol/ closes a client's broken database connection around each command, as Django
    does around requests: it reads errors_occurred, is_usable() and needs_rollback, and calls
    close_if_unusable_or_obsolete()."""
    connection.ensure_connection()
    assert connection.errors_occurred is False
    assert connection.is_usable() is True
    assert connection.needs_rollback is False
    connection.close_if_unusable_or_obsolete()  # healthy, and CONN_MAX_AGE allows it: kept or closed, no error


def test_a_values_list_query_compiles_to_sql_with_its_pks_as_only_params_and_reports_converters():
    """engine/snapshots.py sends the compiled SQL of a key-column read again with other pks."""
    from cachelayer.engine import snapshots

    owner = Owner.objects.create(name="o")
    rows = Owner._base_manager.filter(pk__in=[owner.pk]).values_list("pk", "name")
    compiler = rows.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    assert list(params) == [owner.pk] and sql.count("%s") == 1
    columns = [column[0] for column in compiler.select[: compiler.col_count]]
    assert compiler.get_converters(columns) == {}  # int and char columns: rows as the driver gives them
    assert snapshots._compile(rows, connection, [owner.pk]) == sql
    assert snapshots.read(Owner, "default", [owner.pk, owner.pk], {"name"}) == {owner.pk: {"id": owner.pk, "name": "o"}}


def test_signal_receivers_run_in_the_order_of_their_list_and_a_raise_stops_the_rest():
    """tests/layer/test_other_code.py puts a project's receiver ahead of cachelayer's by
    moving it to the front of Signal.receivers (under Signal.lock, clearing the sender cache),
    as a models.py ``@receiver`` is connected before any ``ready()``; Django stops at it."""
    ran = []

    def first(**kwargs):
        ran.append("first")
        raise RuntimeError

    def last(**kwargs):
        ran.append("last")

    signals.post_save.connect(last, sender=Owner, dispatch_uid="pin.last")
    signals.post_save.connect(first, sender=Owner, dispatch_uid="pin.first")
    with signals.post_save.lock:
        signals.post_save.receivers.insert(0, signals.post_save.receivers.pop())
        signals.post_save.sender_receivers_cache.clear()
    try:
        with pytest.raises(RuntimeError):
            Owner.objects.create(name="o")
    finally:
        signals.post_save.disconnect(sender=Owner, dispatch_uid="pin.first")
        signals.post_save.disconnect(sender=Owner, dispatch_uid="pin.last")
    assert ran == ["first"]
    assert Owner.objects.filter(name="o").exists()  # committed before post_save


def test_the_collector_and_the_m2m_add_take_their_fast_paths_only_without_listeners():
    """receivers.Wiring keeps unmapped models free of write receivers: Django asks has_listeners."""
    from django.db.models.deletion import Collector

    from cachelayer.engine.registry import registry

    registry.load()  # until it is loaded, one receiver listens to every model
    assert not signals.pre_delete.has_listeners(Team.members.through)
    assert Collector(using="default", origin=None).can_fast_delete(Team.members.through.objects.all())
    signals.pre_delete.connect(last_receiver, sender=Team.members.through, dispatch_uid="pin.fast")
    try:
        assert not Collector(using="default", origin=None).can_fast_delete(Team.members.through.objects.all())
    finally:
        signals.pre_delete.disconnect(sender=Team.members.through, dispatch_uid="pin.fast")


def last_receiver(**kwargs):
    pass
