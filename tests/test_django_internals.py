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
