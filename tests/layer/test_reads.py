"""Read-through: hits cost no SQL, get_many costs one round trip, any key works."""

import pytest
from django.contrib.contenttypes.models import ContentType

from cachelayer.adapters.registry import get_adapter
from cachelayer.exceptions import MappingError
from cachelayer.models import ConfigOption, Container
from tests.testapp.models import Item, Pair, Slugged


@pytest.fixture
def fetch_calls(monkeypatch, backend):
    """Count cache round trips by counting calls of the real adapter's fetch."""
    adapter = get_adapter(backend)
    calls = []
    real = adapter.fetch

    def counting(groups, *args):
        calls.append(len(groups))
        return real(groups, *args)

    monkeypatch.setattr(adapter, "fetch", counting)
    return calls


def test_hit_makes_no_query(django_assert_num_queries):
    item = Item.objects.create(value=7)
    with django_assert_num_queries(1):
        assert Item.cached.get(item.pk).value == 7
    with django_assert_num_queries(0):
        hit = Item.cached.get(item.pk)
    assert (hit.pk, hit.value, hit._state.adding) == (item.pk, 7, False)


def test_key_types_are_normalised(django_assert_num_queries):
    item = Item.objects.create(value=3)
    Item.cached.get(item.pk)
    with django_assert_num_queries(0):
        assert Item.cached.get(str(item.pk)).value == 3


def test_absent_key_is_cached_negatively(django_assert_num_queries):
    with pytest.raises(Item.DoesNotExist):
        Item.cached.get(999)
    with django_assert_num_queries(0), pytest.raises(Item.DoesNotExist):
        Item.cached.get(999)


def test_get_many_is_one_round_trip_and_one_query(fetch_calls, django_assert_num_queries):
    items = Item.objects.bulk_create([Item(value=i) for i in range(100)])
    keys = [item.pk for item in items]
    fetch_calls.clear()
    with django_assert_num_queries(1):
        first = Item.cached.get_many(keys + [10**9])
    assert {k: v.value for k, v in first.items()} == {item.pk: item.value for item in items}
    assert fetch_calls[0] == 101  # all keys in the first round trip (then new versions are added)
    fetch_calls.clear()
    with django_assert_num_queries(0):
        second = Item.cached.get_many(keys)
    assert len(second) == 100 and fetch_calls == [100]


@pytest.mark.parametrize(
    "slug",
    ["with space", "new\nline", "tab\tand\x01control", "ünïcødé ключ 鍵", "x" * 300, "#looks-hashed", "a|b"],
    ids=["space", "newline", "control", "unicode", "300-bytes", "hash-mark", "separator"],
)
def test_any_key_round_trips(slug, django_assert_num_queries):
    Slugged.objects.create(slug=slug, value=len(slug))
    assert Slugged.cached.get(slug).value == len(slug)
    with django_assert_num_queries(0):
        assert Slugged.cached.get(slug).slug == slug


def test_keys_that_differ_only_after_hashing_stay_apart():
    Slugged.objects.create(slug="y" * 300 + "1", value=1)
    Slugged.objects.create(slug="y" * 300 + "2", value=2)
    assert Slugged.cached.get("y" * 300 + "1").value == 1
    assert Slugged.cached.get("y" * 300 + "2").value == 2


def test_multi_column_key(django_assert_num_queries):
    Pair.objects.create(left="a", right=1, value=11)
    Pair.objects.create(left="a", right=2, value=12)
    assert Pair.cached.get(("a", 1)).value == 11
    with django_assert_num_queries(0):
        assert Pair.cached.get("a|1").value == 11
    assert {k: v.value for k, v in Pair.cached.get_many([("a", 2), ("b", 1)]).items()} == {("a", 2): 12}


def test_multi_column_key_part_holding_the_separator(django_assert_num_queries):
    row = Pair.objects.create(left="a|b", right=1, value=11)
    Pair.objects.create(left="a", right=1, value=12)
    assert Pair.cached.get(("a|b", 1)).value == 11
    with django_assert_num_queries(0):
        assert Pair.cached.get(("a|b", 1)).value == 11
        assert Pair.cached.get("a\\|b|1").value == 11  # the escaped form cache_serve clients send
    with pytest.raises(Pair.DoesNotExist):
        Pair.cached.get("a|b|1")  # three parts for two columns
    row.value = 13
    row.save()  # outdates the key the read filled
    assert Pair.cached.get(("a|b", 1)).value == 13
    assert Pair.cached.get(("a", 1)).value == 12


def test_multi_column_keys_that_joined_alike_stay_apart(django_assert_num_queries):
    """With separator '-', ('a-', 1) and ('a', -1) both joined to 'a--1'."""
    ConfigOption.objects.create(name="separator", value="-")
    Pair.objects.create(left="a-", right=1, value=1)
    Pair.objects.create(left="a", right=-1, value=2)
    assert Pair.cached.get(("a-", 1)).value == 1
    assert Pair.cached.get(("a", -1)).value == 2
    with django_assert_num_queries(0):
        assert Pair.cached.get(("a-", 1)).value == 1
        assert Pair.cached.get(("a", -1)).value == 2
    Pair.objects.filter(left="a", right=-1).update(value=3)
    assert Pair.cached.get(("a", -1)).value == 3
    with django_assert_num_queries(0):
        assert Pair.cached.get(("a-", 1)).value == 1


def test_another_container_of_the_model_reads_by_its_key(django_assert_num_queries):
    """Model.cached.container(name): instances by a second key (here the pk of a slug-keyed model)."""
    Container.objects.create(
        name="slugged_by_id", content_type=ContentType.objects.get_for_model(Slugged), key_columns="id"
    )
    row = Slugged.objects.create(slug="s1", value=1)
    by_id = Slugged.cached.container("slugged_by_id")
    assert by_id.get(row.pk).value == 1
    with django_assert_num_queries(0):
        hit = by_id.get(row.pk)
    assert (type(hit), hit.slug) == (Slugged, "s1")
    row.value = 2
    row.save()
    assert by_id.get(row.pk).value == 2  # the save outdated this container too
    with pytest.raises(Slugged.DoesNotExist):
        by_id.get(10**9)


def test_a_container_of_another_model_is_refused():
    Container.objects.create(
        name="items_elsewhere", content_type=ContentType.objects.get_for_model(Item), key_columns="id"
    )
    item = Item.objects.create(value=1)
    with pytest.raises(MappingError, match="maps testapp.Item, not testapp.Slugged"):
        Slugged.cached.container("items_elsewhere").get(item.pk)


def test_hit_and_miss_signals_name_each_key():
    from cachelayer import signals

    items = Item.objects.bulk_create([Item(value=i) for i in range(3)])
    keys = [item.pk for item in items]
    Item.cached.get(keys[0])
    seen = []

    def hit(sender, container, key, **kwargs):
        seen.append(("hit", sender, key))

    def miss(sender, container, key, **kwargs):
        seen.append(("miss", sender, key))

    signals.cache_hit.connect(hit)
    signals.cache_miss.connect(miss)
    try:
        Item.cached.get_many(keys)
    finally:
        signals.cache_hit.disconnect(hit)
        signals.cache_miss.disconnect(miss)
    assert sorted(seen, key=str) == sorted(
        [("hit", Item, str(keys[0])), ("miss", Item, str(keys[1])), ("miss", Item, str(keys[2]))], key=str
    )


def test_a_hit_builds_the_same_instance_as_the_orm():
    item = Item.objects.create(value=5, text="t")
    Item.cached.get(item.pk)
    hit, loaded = Item.cached.get(item.pk), Item.objects.get(pk=item.pk)
    assert hit == loaded and hit.__class__ is Item
    assert {k: v for k, v in vars(hit).items() if k != "_state"} == {
        k: v for k, v in vars(loaded).items() if k != "_state"
    }
    assert (hit._state.adding, hit._state.db, hit.get_deferred_fields()) == (False, loaded._state.db, set())
    hit.value = 6
    hit.save()  # an UPDATE, not an INSERT
    assert Item.objects.count() == 1 and Item.cached.get(item.pk).value == 6


def test_init_receivers_see_every_instance_a_hit_builds():
    from django.db.models.signals import post_init

    item = Item.objects.create(value=1)
    Item.cached.get(item.pk)
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(receiver, sender=Item)
    try:
        Item.cached.get(item.pk)
    finally:
        post_init.disconnect(receiver, sender=Item)
    assert seen == [item.pk]


def test_a_mapping_edit_changes_the_instances_the_next_hit_builds():
    """Model.cached keeps its instance builder per definition: an edit reloads the
    definitions, and the next hit builds from the new mapping, never the kept one."""
    from cachelayer.engine.registry import container_name

    item = Item.objects.create(value=3, text="later")
    container = Container.objects.get(name=container_name(Item))
    for value_columns, deferred in (("", set()), ("text", {"value"}), ("", set())):
        container.value_columns = value_columns  # "text": not a prefix of the whole row's fields
        container.save()
        Item.cached.get(item.pk)  # the miss that fills the new payload
        hit = Item.cached.get(item.pk)
        assert hit.get_deferred_fields() == deferred and (hit.value, hit.text) == (3, "later")


def test_a_partial_row_defers_the_other_fields(django_assert_num_queries):
    Container.objects.create(
        name="item_values",
        content_type=ContentType.objects.get_for_model(Item),
        key_columns="id",
        value_columns="value",
    )
    item = Item.objects.create(value=3, text="later")
    by_value = Item.cached.container("item_values")
    by_value.get(item.pk)
    with django_assert_num_queries(0):
        hit = by_value.get(item.pk)
    assert hit.value == 3 and hit.get_deferred_fields() == {"text"}
    with django_assert_num_queries(1):
        assert hit.text == "later"


def test_the_first_read_of_a_process_loads_the_configuration_once():
    """The load reads the configuration version before the definitions, so the
    first read that sees that version does not load them again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cachelayer.engine.registry import registry

    item = Item.objects.create(value=1)
    registry.clear()  # as in a new process
    with CaptureQueriesContext(connection) as queries:
        assert Item.cached.get(item.pk).value == 1
    tables = [q["sql"].split(" FROM ")[1].split()[0].strip('"`') for q in queries.captured_queries]
    assert tables == ["cachelayer_configoption", "cachelayer_container", "testapp_item"], tables
