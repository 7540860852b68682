"""Receivers per mapped model (issue 28, items 1 and 2): invisible where unused.

cachelayer connects its write receivers only for the models some container
maps (with their family: proxies, multi-table parents and children, models
on the same table, parents whose deletion changes mapped children), and
follows the registry when containers are added or removed. Every other model
keeps Django's fast paths: a ``QuerySet.delete()`` in one query, an m2m
``add()`` with no SELECT.
"""

from contextlib import contextmanager

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.db import connection
from django.db.models import signals
from django.test.utils import CaptureQueriesContext

from cachelayer.adapters.registry import get_adapter
from cachelayer.core import conf
from cachelayer.core.keys import config_key
from cachelayer.engine.registry import registry
from cachelayer.mixins import CachedAccess
from cachelayer.models import Container
from tests.testapp.models import Item, Lone, Owner, Plain, Tag, Tenant, TenantComment, TenantUser

pytestmark = pytest.mark.caches("locmem", "memcached", "redis")


def read(model, key, container):
    try:
        return CachedAccess(model, container).get(key)
    except model.DoesNotExist:
        return None


TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")  # SQLite's BEGIN IMMEDIATE is logged


@contextmanager
def statements():
    """Yield the list of statements run inside, as their first words, transaction control left out."""
    found: list[str] = []
    with CaptureQueriesContext(connection) as queries:
        yield found
    found += [q["sql"].split()[0].upper() for q in queries.captured_queries]
    found[:] = [word for word in found if word not in TRANSACTION]


def test_queryset_delete_of_an_unmapped_model_is_one_query():
    Lone.objects.bulk_create([Lone(value=i) for i in range(2000)])
    with statements() as run:
        assert Lone.objects.all().delete()[0] == 2000
    assert run == ["DELETE"]  # no SELECT of the rows: Django's fast delete


def test_m2m_add_of_an_unmapped_model_sends_no_select():
    tag, *others = Tag.objects.bulk_create([Tag(name=str(i)) for i in range(3)])
    with statements() as run:
        tag.peers.add(*others)
    assert run == ["INSERT"]  # no SELECT of the existing links: Django's fast add


def test_unmapped_models_have_no_receivers_mapped_ones_do():
    for signal in (signals.pre_save, signals.post_save, signals.pre_delete, signals.m2m_changed):
        assert not signal.has_listeners(Lone)
        assert not signal.has_listeners(Tag.peers.through)
    assert signals.pre_delete.has_listeners(Item) and signals.post_save.has_listeners(Item)
    assert signals.pre_delete.has_listeners(Owner)  # a parent whose SET_NULL children (Pet) are mapped


def configuration_version() -> int:
    """The configuration version on cachelayer's cache (every save of a container bumps it)."""
    key = config_key(conf.get("KEY_PREFIX"))
    return int(get_adapter(conf.get("CACHE_ALIAS")).fetch({None: [key]}).found[None][key])


def test_with_nothing_mapped_no_post_save_receiver_is_connected():
    """As Django's own signals tests assert (test_disconnect_in_dispatch): configuration
    edits are heard through cachelayer's own signal, not post_save."""
    Container.objects.all().delete()
    registry.load()
    Lone.objects.create(value=1)
    assert signals.post_save.receivers == []
    before = configuration_version()
    Container.objects.create(name="lone_by_id", content_type=ContentType.objects.get_for_model(Lone), key_columns="id")
    assert configuration_version() == before + 1  # every process reloads


def test_a_container_loaded_as_a_raw_row_bumps_the_configuration():
    """loaddata saves raw rows (save_base, not save()): every process still reloads."""
    container = Container(name="lone_by_id", content_type=ContentType.objects.get_for_model(Lone), key_columns="id")
    (loaded,) = serializers.deserialize("json", serializers.serialize("json", [container]))
    before = configuration_version()
    loaded.save()
    assert configuration_version() == before + 1
    assert read(Lone, Lone.objects.create(value=3).pk, "lone_by_id").value == 3


def test_a_model_mapped_at_run_time_is_covered_from_its_first_write_and_fast_again_when_unmapped():
    rows = Lone.objects.bulk_create([Lone(value=i) for i in range(3)])
    container = Container.objects.create(
        name="lone_by_id", content_type=ContentType.objects.get_for_model(Lone), key_columns="id"
    )
    assert read(Lone, rows[0].pk, "lone_by_id").value == 0  # cached (this read reloads the definitions)
    assert signals.pre_delete.has_listeners(Lone)
    Lone.objects.filter(pk=rows[0].pk).delete()
    assert read(Lone, rows[0].pk, "lone_by_id") is None
    rows[1].value = 5
    rows[1].save()
    assert read(Lone, rows[1].pk, "lone_by_id").value == 5
    container.delete()
    registry.load()  # what any read does after the configuration bump
    assert not signals.pre_delete.has_listeners(Lone)
    with statements() as run:
        Lone.objects.all().delete()
    assert run == ["DELETE"]


def test_a_plain_model_mapped_in_the_admin_is_covered():
    Container.objects.create(
        name="plain_by_code", content_type=ContentType.objects.get_for_model(Plain), key_columns="code"
    )
    row = Plain.objects.create(code="a", value=1)
    assert read(Plain, "a", "plain_by_code").value == 1
    Plain.objects.filter(pk=row.pk).delete()
    assert read(Plain, "a", "plain_by_code") is None


def test_a_process_that_wrote_a_newly_mapped_model_unseen_outdates_it_when_it_reloads():
    from cachelayer.receivers import wiring

    row = Lone.objects.create(value=1)
    registry.load()  # this process's view: Lone unmapped, no receivers
    stale_view = (
        registry.by_name,
        registry.by_model,
        registry._by_table,
        {a: set(v) for a, v in registry._known.items()},
    )
    Container.objects.create(name="lone_by_id", content_type=ContentType.objects.get_for_model(Lone), key_columns="id")
    assert read(Lone, row.pk, "lone_by_id").value == 1  # another process reloads and fills
    registry.by_name, registry.by_model, registry._by_table, registry._known = stale_view  # this one has not
    registry._for_cached, registry._sharing = {}, {}
    wiring.follow(loaded=True)
    assert not signals.post_save.has_listeners(Lone)
    row.value = 2
    row.save()  # unseen: nothing in this process maps Lone yet
    Item.cached.get_many([0])  # its next operation through cachelayer reads the configuration version
    assert signals.post_save.has_listeners(Lone)
    assert read(Lone, row.pk, "lone_by_id").value == 2


def test_the_receivers_of_a_model_of_a_migration_state_go_with_it():
    import gc

    from django.apps import apps
    from django.db.migrations.state import ProjectState

    def receivers_of(sender_id):
        gc.collect()
        signals.post_save.connect(read, dispatch_uid="test.cleanup")  # Django drops dead receivers on connect
        signals.post_save.disconnect(dispatch_uid="test.cleanup")
        return [key for key, *_ in signals.post_save.receivers if key[1] == sender_id]

    historical = ProjectState.from_apps(apps).apps.get_model("testapp", "Item")
    assert signals.post_save.has_listeners(historical)
    sender_id = id(historical)
    assert receivers_of(sender_id)
    del historical
    assert receivers_of(sender_id) == []  # Django keeps a sender's id, not the sender


def test_deleting_an_unmapped_model_with_a_nullable_composite_foreign_object():
    """Django 5.2 crashes on MariaDB when the collector takes its slow path here
    (issue 28, item 3), which a delete receiver on every model used to force."""
    tenant = Tenant.objects.create()
    user = TenantUser.objects.create(tenant=tenant, id=1)
    TenantComment.objects.create(tenant=tenant, id=1, user_id=user.id)
    TenantComment.objects.create(tenant=tenant, id=2)
    assert not signals.pre_delete.has_listeners(TenantComment)
    assert TenantUser.objects.filter(pk=user.pk).delete() == (
        2,
        {"testapp.TenantUser": 1, "testapp.TenantComment": 1},
    )
    assert list(TenantComment.objects.values_list("id", flat=True)) == [2]
