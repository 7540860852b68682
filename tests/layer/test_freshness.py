"""Freshness: every committed write, whatever Django path made it, reaches the cache.

One test per way the cache was once left stale (issue "Freshness", numbered
as there). Each reads through the cache first, writes, then reads again as a
new request would and compares with the database.
"""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

import cachelayer
from cachelayer.models import Container
from tests.conftest import ISOLATION_DATABASES
from tests.layer.test_write_paths import read_fresh
from tests.testapp.models import Item, Managed, Member, Owner, Pair, Pet, Plain, Slugged, Team


def add_container(name, model, key_columns, **mapping):
    return Container.objects.create(
        name=name, content_type=ContentType.objects.get_for_model(model), key_columns=key_columns, **mapping
    )


def read_via(container, model, key):
    return read_fresh(model, key, container)


# 1. SET_NULL / SET_DEFAULT / SET() cascades -------------------------------


@pytest.mark.parametrize("field", ["owner", "keeper", "sitter"])
def test_parent_delete_with_set_null_default_or_callable_outdates_the_children(field):
    owner = Owner.objects.create(name="o")
    pet = Pet.objects.create(value=1, **{field: owner})
    assert getattr(read_fresh(Pet, pet.pk), f"{field}_id") == owner.pk
    owner.delete()
    assert getattr(read_fresh(Pet, pet.pk), f"{field}_id") is None


def test_queryset_delete_of_parents_outdates_every_child():
    owners = [Owner.objects.create(name=str(i)) for i in range(3)]
    pets = [Pet.objects.create(owner=owner) for owner in owners]
    assert [read_fresh(Pet, p.pk).owner_id for p in pets] == [o.pk for o in owners]
    Owner.objects.all().delete()
    assert [read_fresh(Pet, p.pk).owner_id for p in pets] == [None, None, None]


# 2. Old key unknown or wrong ------------------------------------------------


def test_hand_built_instance_with_an_existing_pk_outdates_the_old_key():
    row = Slugged.objects.create(slug="before", value=1)
    assert read_fresh(Slugged, "before").value == 1
    Slugged(pk=row.pk, slug="after", value=2).save()
    assert read_fresh(Slugged, "before") is None
    assert read_fresh(Slugged, "after").value == 2


@pytest.mark.parametrize("load", [lambda qs: qs.only("value"), lambda qs: qs.defer("slug")])
def test_instance_loaded_without_its_key_column_outdates_the_old_key(load):
    row = Slugged.objects.create(slug="before", value=1)
    assert read_fresh(Slugged, "before").value == 1
    partial = load(Slugged.objects.filter(pk=row.pk)).get()
    partial.slug = "after"
    partial.save()
    assert read_fresh(Slugged, "before") is None
    assert read_fresh(Slugged, "after").value == 1


def test_refresh_from_db_after_another_writer_changed_the_key():
    row = Slugged.objects.create(slug="a", value=1)
    mine = Slugged.objects.get(pk=row.pk)
    other = Slugged.objects.get(pk=row.pk)
    other.slug = "b"
    other.save()
    mine.refresh_from_db()
    assert read_fresh(Slugged, "b").value == 1  # cached under b
    mine.slug = "c"
    mine.save()
    assert read_fresh(Slugged, "b") is None
    assert read_fresh(Slugged, "c").value == 1


def test_stale_instance_saved_after_another_writer_changed_the_key():
    row = Slugged.objects.create(slug="a", value=1)
    mine = Slugged.objects.get(pk=row.pk)
    Slugged.objects.filter(pk=row.pk).update(slug="b")
    assert read_fresh(Slugged, "b").value == 1
    mine.value = 5  # writes slug "a" back: b must go
    mine.save()
    assert read_fresh(Slugged, "b") is None
    assert read_fresh(Slugged, "a").value == 5


@pytest.mark.parametrize("path", ["save", "bulk_update"])
def test_a_key_column_set_to_an_expression_outdates_the_key_the_database_computes(path):
    from django.db.models import F, Value
    from django.db.models.functions import Concat

    row = Slugged.objects.create(slug="a", value=1)
    assert read_fresh(Slugged, "ax") is None  # cached as absent
    row.slug = Concat(F("slug"), Value("x"))
    if path == "save":
        row.save()
    else:
        Slugged.objects.bulk_update([row], ["slug"])
    assert read_fresh(Slugged, "ax").pk == row.pk
    assert read_fresh(Slugged, "a") is None


# 3. Repository writes --------------------------------------------------------


def test_repository_write_outdates_every_container_of_the_model():
    add_container("slugged_values", Slugged, "slug", value_columns="value")
    add_container("slugged_by_id", Slugged, "id")
    row = Slugged.objects.create(slug="s", value=1)
    assert read_via("slugged_by_id", Slugged, row.pk).value == 1
    cachelayer.repository("slugged_values").set("s", "7")
    assert read_via("slugged_by_id", Slugged, row.pk).value == 7
    assert read_fresh(Slugged, "s").value == 7


def test_repository_insert_replaces_negative_entries_of_other_containers():
    add_container("slugged_values", Slugged, "slug", value_columns="value")
    assert read_fresh(Slugged, "n") is None  # absent, cached in the model's own container
    cachelayer.repository("slugged_values").add("n", "3")
    assert read_fresh(Slugged, "n").value == 3


def test_repository_write_with_a_non_canonical_key_outdates_the_canonical_one():
    add_container("item_values", Item, "id", value_columns="value")
    item = Item.objects.create(value=1)
    assert read_fresh(Item, item.pk).value == 1
    assert cachelayer.repository("item_values").set(f"0{item.pk}", "4")
    assert read_fresh(Item, item.pk).value == 4
    assert cachelayer.repository("item_values").get(str(item.pk)) == "4"


# 4. A writer that has not read since an admin edit -------------------------


def test_a_writer_with_old_definitions_outdates_a_container_added_since():
    from cachelayer.engine.registry import registry

    row = Slugged.objects.create(slug="s", value=1)
    registry.load()  # this process's view: one container
    stale_view = (
        registry.by_name,
        registry.by_model,
        registry._for_cached,
        {a: set(v) for a, v in registry._known.items()},
    )
    add_container("slugged_by_id", Slugged, "id")  # the edit: another process sees it at once
    assert read_via("slugged_by_id", Slugged, row.pk).value == 1
    registry.by_name, registry.by_model, registry._for_cached, registry._known = stale_view  # this one has not
    assert "slugged_by_id" not in registry.by_name
    row.value = 2
    row.save()
    assert read_via("slugged_by_id", Slugged, row.pk).value == 2


# 5. Data migrations (historical models) ------------------------------------


def test_save_through_a_historical_model_invalidates():
    from django.apps import apps
    from django.db.migrations.state import ProjectState

    item = Item.objects.create(value=1)
    assert read_fresh(Item, item.pk).value == 1
    historical = ProjectState.from_apps(apps).apps.get_model("testapp", "Item")
    assert historical is not Item
    row = historical.objects.get(pk=item.pk)
    row.value = 2
    row.save()
    assert read_fresh(Item, item.pk).value == 2
    historical.objects.filter(pk=item.pk).delete()
    assert read_fresh(Item, item.pk) is None


def test_migrate_with_data_migrations_bumps_every_generation():
    from django.apps import apps
    from django.db.migrations import Migration, RunPython
    from django.db.models.signals import post_migrate

    item = Item.objects.create(value=1)
    assert read_fresh(Item, item.pk).value == 1
    with connection.cursor() as cursor:  # what a historical update() or RunSQL does: no signal
        cursor.execute("UPDATE testapp_item SET value = 3 WHERE id = %s", [item.pk])
    migration = Migration("0002_data", "testapp")
    migration.operations = [RunPython(RunPython.noop)]
    post_migrate.send(
        sender=apps.get_app_config("cachelayer"),
        app_config=apps.get_app_config("cachelayer"),
        verbosity=0,
        interactive=False,
        using="default",
        apps=apps,
        plan=[(migration, False)],
    )
    assert read_fresh(Item, item.pk).value == 3


# 6. and 7. Isolation level: server default, warming ------------------------


@pytest.mark.django_db(transaction=True, databases=ISOLATION_DATABASES)
@pytest.mark.usefixtures("on_server_database")
def test_server_default_isolation_is_not_taken_for_read_committed():
    from cachelayer.engine import transactions

    assert transactions.may_fill("repeatable_read") is True  # outside atomic: always
    with transaction.atomic(using="server_default"):
        assert transactions.may_fill("server_default") is False  # the server's default here: REPEATABLE READ
    with transaction.atomic(using="default"):
        assert transactions.may_fill("default") is True  # Django's default on both: READ COMMITTED


@pytest.mark.django_db(transaction=True, databases=ISOLATION_DATABASES)
@pytest.mark.usefixtures("on_server_database")
def test_server_default_isolation_read_inside_atomic_does_not_fill_old_rows():
    add_container("items_rr", Item, "id", database="server_default")
    item = Item.objects.create(value=1)
    by_rr = Item.cached.container("items_rr")
    with transaction.atomic(using="server_default"):
        Item.objects.using("server_default").filter(pk=0).exists()  # the snapshot starts here
        Item.objects.filter(pk=item.pk).update(value=2)  # committed by another connection
        assert by_rr.get(item.pk).value == 1  # the snapshot's row, read through
    assert read_via("items_rr", Item, item.pk).value == 2


@pytest.mark.django_db(transaction=True, databases=ISOLATION_DATABASES)
@pytest.mark.usefixtures("on_server_database")
def test_warming_inside_repeatable_read_stores_no_old_rows():
    from cachelayer.engine.registry import registry
    from cachelayer.exceptions import CachelayerError
    from cachelayer.tasks import warming

    add_container("items_rr", Item, "id", database="repeatable_read")
    item = Item.objects.create(value=1)
    with transaction.atomic(using="repeatable_read"):
        Item.objects.using("repeatable_read").filter(pk=0).exists()
        Item.objects.filter(pk=item.pk).update(value=2)
        with pytest.raises(CachelayerError, match="REPEATABLE READ|cannot warm"):
            warming.warm(registry.get("items_rr"))
    assert read_via("items_rr", Item, item.pk).value == 2


class Rollback(Exception):
    pass


@pytest.mark.usefixtures("on_server_database")  # SQLite: no warming inside atomic at all (above)
def test_warming_never_fills_keys_written_by_the_transaction():
    from cachelayer.engine.registry import registry
    from cachelayer.tasks import warming

    item = Item.objects.create(value=1)
    with pytest.raises(Rollback), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(value=2)
        result = warming.warm(registry.get("testapp_item"))
        assert result.written == 1  # left to the commit
        raise Rollback
    assert read_fresh(Item, item.pk).value == 1


# 8. m2m ---------------------------------------------------------------------


@pytest.fixture
def through():
    """The auto-created through table of Team.members, mapped in the admin."""
    add_container("team_members", Team.members.through, "id")
    return Team.members.through


def through_rows(through):
    return {row.pk: (row.team_id, row.member_id) for row in through.objects.all()}


@pytest.mark.parametrize("reverse", [False, True])
def test_m2m_add_remove_clear_set_outdate_a_mapped_through_table(through, reverse):
    team = Team.objects.create(name="t")
    a, b, c = (Member.objects.create(name=n) for n in "abc")
    repo = cachelayer.repository("team_members")

    team.members.add(c)  # learn where the table's ids stand, then start empty
    start = through.objects.get().pk
    team.members.clear()
    ids = list(range(start, start + 12))

    def cached_pairs():
        return {int(k) for k in repo.get_many(ids)}

    assert cached_pairs() == set()  # negative entries for the ids to come
    if reverse:
        a.teams.add(team)
        b.teams.add(team)
    else:
        team.members.add(a, b)
    assert cached_pairs() == set(through_rows(through))
    if reverse:
        a.teams.remove(team)
    else:
        team.members.remove(a)
    assert cached_pairs() == set(through_rows(through))
    team.members.set([c])
    assert cached_pairs() == set(through_rows(through))
    (c.teams if reverse else team.members).clear()
    assert cached_pairs() == set() == set(through_rows(through))


# 9. and 10. Paths with no in-process cover are named by a check ------------


def test_plain_mapped_model_save_and_delete_invalidate():
    add_container("plain", Plain, "code")
    repo_read = lambda code: read_fresh_plain(code)  # noqa: E731
    row = Plain.objects.create(code="x", value=1)
    assert repo_read("x") == "1"
    row.value = 2
    row.save()
    assert repo_read("x") == "2"
    row.delete()
    assert repo_read("x") is None


def read_fresh_plain(code):
    from django.core.signals import request_finished, request_started

    request_finished.send(sender=None)
    request_started.send(sender=None)
    return cachelayer.repository("plain").get(code)


def test_check_names_plain_models_whose_bulk_paths_are_not_covered():
    from cachelayer.checks import check_containers

    add_container("plain", Plain, "code")
    found = [m for m in check_containers(databases=["default"]) if m.id == "cachelayer.W011"]
    assert len(found) == 1
    assert "testapp.Plain" in found[0].msg and "QuerySet.update()" in found[0].msg and "bulk_create()" in found[0].msg
    assert "save() outside atomic()" in found[0].msg  # a plain model's save reads its old key unlocked


def test_check_names_a_mixin_model_whose_own_manager_skips_invalidation():
    from django.db import models
    from django.test.utils import isolate_apps

    from cachelayer.checks import check_managers

    with isolate_apps("tests.testapp"):

        class Careless(cachelayer.CachedModelMixin, models.Model):
            value = models.IntegerField()
            objects = models.Manager()

            class Meta:
                app_label = "testapp"

        found = check_managers([Careless])
    assert [m.id for m in found] == ["cachelayer.W011"]
    assert "'objects'" in found[0].msg and "testapp.Careless" in found[0].msg
    assert "save() outside atomic()" not in found[0].msg  # a mixin model's save locks it
    assert check_managers([Managed, Item]) == []


def test_custom_manager_built_on_the_cached_queryset_invalidates():
    row = Managed.objects.create(code="m", value=1)
    assert read_fresh(Managed, "m").value == 1
    Managed.objects.positive().update(value=2)
    assert read_fresh(Managed, "m").value == 2
    Managed.objects.filter(pk=row.pk).update(code="n")
    assert read_fresh(Managed, "m") is None
    assert read_fresh(Managed, "n").value == 2


# 11. on_commit ordering -----------------------------------------------------


def test_on_commit_callback_registered_before_the_write_reads_the_new_row():
    item = Item.objects.create(value=1)
    assert read_fresh(Item, item.pk).value == 1
    seen = []
    with transaction.atomic():
        transaction.on_commit(lambda: seen.append(Item.cached.get(item.pk).value))
        item.value = 2
        item.save()
    assert seen == [2]


def test_several_saves_in_one_transaction_deliver_once(backend, monkeypatch):
    from cachelayer.adapters.registry import get_adapter

    items = [Item.objects.create(value=1) for _ in range(3)]
    adapter = get_adapter(backend)
    calls = []
    real = adapter.invalidate
    monkeypatch.setattr(adapter, "invalidate", lambda groups, **kw: calls.append(len(groups)) or real(groups, **kw))
    with transaction.atomic():
        for item in items:
            item.value = 2
            item.save()
    assert calls == [3]
    assert [read_fresh(Item, i.pk).value for i in items] == [2, 2, 2]


# 12. Declared vs stored mapping --------------------------------------------


def test_migrate_applies_a_changed_declaration_unless_edited_in_the_admin(monkeypatch):
    from cachelayer.checks import check_containers
    from cachelayer.tasks import autocontainers

    def drift_warnings():
        return [m.id for m in check_containers(databases=["default"]) if m.id == "cachelayer.W012"]

    container = Container.objects.get(name="testapp_slugged")
    row = Slugged.objects.create(slug="s", value=1)
    # a context of its own: the database flush after the test recreates containers from the declaration
    with monkeypatch.context() as patch:
        patch.setattr(Slugged, "cache_key_fields", "id")  # the code now declares another key
        assert drift_warnings() == ["cachelayer.W012"]
        autocontainers.create_missing()  # what migrate runs
        container.refresh_from_db()
        assert container.key_columns == "id"
        assert read_fresh(Slugged, row.pk).value == 1
        assert drift_warnings() == []
        container.key_columns, container.declared = "slug", False  # an admin edit
        container.save()
        autocontainers.create_missing()
        container.refresh_from_db()
        assert container.key_columns == "slug"
        assert drift_warnings() == ["cachelayer.W012"]


# 13. Deleting instances loaded without their key column --------------------


def test_delete_of_an_instance_loaded_without_its_key_column():
    row = Slugged.objects.create(slug="d", value=1)
    assert read_fresh(Slugged, "d").value == 1
    Slugged.objects.only("value").get(pk=row.pk).delete()
    assert not Slugged.objects.filter(pk=row.pk).exists()
    assert read_fresh(Slugged, "d") is None


def test_queryset_delete_of_deferred_rows():
    rows = [Slugged.objects.create(slug=f"q{i}", value=i) for i in range(3)]
    assert [read_fresh(Slugged, r.slug).value for r in rows] == [0, 1, 2]
    Slugged.objects.defer("slug").filter(value__gte=0).delete()
    assert [read_fresh(Slugged, r.slug) for r in rows] == [None, None, None]


# Multi-column keys -----------------------------------------------------------


def test_pair_key_change_through_queryset_update():
    Pair.objects.create(left="a", right=1, value=1)
    assert read_fresh(Pair, ("a", 1)).value == 1
    assert read_fresh(Pair, ("b", 1)) is None
    Pair.objects.filter(left="a").update(left="b")
    assert read_fresh(Pair, ("a", 1)) is None
    assert read_fresh(Pair, ("b", 1)).value == 1


def test_bulk_update_of_a_key_column_outdates_old_and_new_keys(django_assert_max_num_queries):
    rows = [Slugged.objects.create(slug=f"b{i}", value=i) for i in range(3)]
    for row in rows:
        assert read_fresh(Slugged, row.slug).value == row.value
        assert read_fresh(Slugged, "n" + row.slug) is None
        row.slug = "n" + row.slug
    Slugged.objects.bulk_update(rows, ["slug"])
    assert [read_fresh(Slugged, f"b{i}") for i in range(3)] == [None] * 3
    assert [read_fresh(Slugged, f"nb{i}").value for i in range(3)] == [0, 1, 2]


# 14. Multi-table inheritance: one row in two tables --------------------------


def test_writes_through_a_child_or_its_parent_outdate_both_containers():
    from tests.testapp.models import Place, Restaurant

    add_container("place_by_name", Place, "name")
    restaurant = Restaurant.objects.create(name="r", value=1, seats=10)
    pk = restaurant.pk

    def seen():
        by_name = {name: getattr(read_via("place_by_name", Place, name), "value", None) for name in ("r", "s")}
        return read_fresh(Place, pk).value, read_fresh(Restaurant, pk).value, by_name

    assert seen() == (1, 1, {"r": 1, "s": None})
    restaurant.value, restaurant.name = 2, "s"
    restaurant.save()  # writes the parent's table: the place's containers must see it
    assert seen() == (2, 2, {"r": None, "s": 2})
    Restaurant.objects.filter(pk=pk).update(value=3)
    assert seen() == (3, 3, {"r": None, "s": 3})
    place = Place.objects.get(pk=pk)
    place.value = 4
    place.save()  # the parent's row is the restaurant's too
    assert seen() == (4, 4, {"r": None, "s": 4})
    Place.objects.filter(pk=pk).update(value=5, name="r")
    assert seen() == (5, 5, {"r": 5, "s": None})
    Restaurant.objects.filter(pk=pk).delete()  # deletes the parent's row too
    assert (read_fresh(Place, pk), read_fresh(Restaurant, pk), read_via("place_by_name", Place, "r")) == (
        None,
        None,
        None,
    )


def test_a_grandchild_keyed_by_its_pk_is_outdated_by_writes_through_every_ancestor():
    """Its pk column (restaurant_ptr) points at a parent_ptr: its type is the grandparent's
    id, two relations away (it was refused: "Key column 'restaurant_ptr' is a OneToOneField")."""
    from tests.testapp.models import Bistro, Place, Restaurant

    container = add_container("bistro_by_pk", Bistro, "restaurant_ptr")
    container.full_clean()
    pk = Bistro.objects.create(name="b", value=1, seats=2, chef="c").pk

    def seen():
        row = read_via("bistro_by_pk", Bistro, pk)
        return row and (row.value, row.seats, row.chef)

    assert seen() == (1, 2, "c")
    assert read_via("bistro_by_pk", Bistro, str(pk)).value == 1  # the key as a form gives it
    bistro = Bistro.objects.get(pk=pk)
    bistro.value, bistro.chef = 2, "d"
    bistro.save()  # three tables
    assert seen() == (2, 2, "d")
    Restaurant.objects.filter(pk=pk).update(seats=3)
    assert seen() == (2, 3, "d")
    place = Place.objects.get(pk=pk)
    place.value = 4
    place.save()  # the grandparent's row is the bistro's too
    assert seen() == (4, 3, "d")
    Place.objects.filter(pk=pk).update(value=5)
    assert seen() == (5, 3, "d")
    Place.objects.filter(pk=pk).delete()  # cascades to the restaurant and the bistro
    assert seen() is None
