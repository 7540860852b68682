"""Invalidation no other code can skip (issue 24, defects 1 and 4).

A project's own receivers are connected before cachelayer's (``@receiver`` in
a models.py runs before any ``AppConfig.ready()``) and may raise after the
write has committed; its ``on_commit`` callbacks may be registered before
cachelayer's and raise. A write through another model on the same table
changes rows a container caches. In every case the next read is fresh.
"""

import contextlib

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.signals import request_finished, request_started
from django.db import transaction
from django.db.models import signals

from cachelayer.mixins import CachedAccess
from cachelayer.models import Container
from tests.layer.project_code import Indexer, raise_indexer, receiver_ahead
from tests.layer.test_wiring import configuration_version
from tests.testapp.models import Item, Plain, Shared, SharedWriter


@pytest.fixture
def receiver_first():
    """Connect raising receivers of the project's ahead of cachelayer's, for this test."""
    with contextlib.ExitStack() as stack:
        yield lambda signal, sender: stack.enter_context(receiver_ahead(signal, sender))


@pytest.fixture
def plain():
    """A plain model mapped in the admin by its primary key and by a unique column."""
    kind = ContentType.objects.get_for_model(Plain)
    Container.objects.create(name="plain_by_id", content_type=kind, key_columns="id")
    Container.objects.create(name="plain_by_code", content_type=kind, key_columns="code")
    return Plain


def read_now(model, key, container=None):
    """Read in this request (no request boundary: nothing end-of-request runs first)."""
    try:
        return CachedAccess(model, container).get(key)
    except model.DoesNotExist:
        return None


def read_fresh(model, key, container=None):
    """Read as a new request would (Django closes caches and connections between)."""
    request_finished.send(sender=None)
    request_started.send(sender=None)
    return read_now(model, key, container)


CASES = [  # (model, container, make a row, key of a row)
    pytest.param(Item, None, lambda: Item.objects.create(value=1), lambda row: row.pk, id="mixin-by-pk"),
    pytest.param(
        Plain, "plain_by_id", lambda: Plain.objects.create(code="a", value=1), lambda r: r.pk, id="plain-by-pk"
    ),
    pytest.param(Plain, "plain_by_code", lambda: Plain.objects.create(code="a", value=1), lambda r: r.code, id="plain"),
]


@pytest.mark.parametrize(("model", "container", "make", "key"), CASES)
@pytest.mark.parametrize("read", [read_now, read_fresh], ids=["same-request", "next-request"])
def test_a_post_save_receiver_that_raises_after_an_autocommit_save_cannot_skip_it(
    plain, receiver_first, model, container, make, key, read
):
    row = make()
    assert read(model, key(row), container).value == 1  # cached
    receiver_first(signals.post_save, model)
    row.value = 2
    with pytest.raises(Indexer):
        row.save()  # committed: Django sends post_save after the write
    assert model.objects.get(pk=row.pk).value == 2
    assert read(model, key(row), container).value == 2


@pytest.mark.parametrize("read", [read_now, read_fresh], ids=["same-request", "next-request"])
def test_an_insert_whose_post_save_raises_replaces_the_negative_entry(plain, receiver_first, read):
    assert read(Plain, "new", "plain_by_code") is None  # cached as absent
    receiver_first(signals.post_save, Plain)
    with pytest.raises(Indexer):
        Plain.objects.create(code="new", value=3)
    assert read(Plain, "new", "plain_by_code").value == 3


@pytest.mark.parametrize(("model", "container", "make", "key"), CASES)
def test_a_raising_post_save_caught_inside_atomic_cannot_skip_it(plain, receiver_first, model, container, make, key):
    row = make()
    assert read_fresh(model, key(row), container).value == 1
    receiver_first(signals.post_save, model)
    with transaction.atomic():
        row.value = 2
        try:
            row.save()
        except Indexer:
            pass  # the project carries on: the transaction commits the write
    assert read_fresh(model, key(row), container).value == 2


@pytest.mark.parametrize(("model", "container", "make", "key"), CASES)
def test_a_raising_on_commit_callback_registered_first_cannot_skip_it(plain, model, container, make, key):
    row = make()
    assert read_fresh(model, key(row), container).value == 1
    with pytest.raises(Indexer), transaction.atomic():
        transaction.on_commit(lambda: raise_indexer())  # not robust: Django stops at it
        row.value = 2
        row.save()
    assert read_fresh(model, key(row), container).value == 2


def test_a_raising_on_commit_callback_cannot_skip_the_configuration_bump(plain):
    before = configuration_version()
    with pytest.raises(Indexer), transaction.atomic():
        transaction.on_commit(lambda: raise_indexer())
        Container.objects.create(
            name="plain_values",
            content_type=ContentType.objects.get_for_model(Plain),
            key_columns="code",
            value_columns="value",
        )
    assert configuration_version() > before  # every process reloads


# Defect 4: two models on one table ------------------------------------------------


def test_a_save_through_another_model_on_the_same_table_outdates_its_containers():
    row = Shared.objects.create(value=1)
    assert read_fresh(Shared, row.pk).value == 1
    writer = SharedWriter.objects.get(pk=row.pk)
    writer.amount = 2
    writer.save()
    assert read_fresh(Shared, row.pk).value == 2
    SharedWriter(pk=row.pk, amount=3).save()  # built by hand
    assert read_fresh(Shared, row.pk).value == 3


def test_a_delete_through_another_model_on_the_same_table_outdates_its_containers():
    row = Shared.objects.create(value=1)
    assert read_fresh(Shared, row.pk).value == 1
    SharedWriter.objects.get(pk=row.pk).delete()
    assert read_fresh(Shared, row.pk) is None


def test_an_insert_through_another_model_on_the_same_table_replaces_the_negative_entry():
    absent = Shared.objects.create(value=0).pk + 1
    assert read_fresh(Shared, absent) is None  # cached as absent
    SharedWriter.objects.create(pk=absent, amount=4)
    assert read_fresh(Shared, absent).value == 4


def test_a_check_names_the_models_that_share_a_mapped_table():
    from cachelayer.checks import check_cached_models, check_containers, check_shared_tables

    found = [m for m in check_cached_models() if m.id == "cachelayer.W014"]
    assert [(m.obj, "testapp.SharedWriter" in m.msg) for m in found] == [(Shared, True)]
    Container.objects.create(
        name="writer_by_id", content_type=ContentType.objects.get_for_model(SharedWriter), key_columns="id"
    )
    found = [m for m in check_containers(databases=["default"]) if m.id == "cachelayer.W014"]
    assert [(m.obj, "testapp.Shared " in m.msg) for m in found] == [(SharedWriter, True)]
    assert check_shared_tables([Item, Plain]) == []
