"""The memcached verbs under each policy value, on the InnoDB demo tables."""

import pytest
from django.contrib.contenttypes.models import ContentType

import cachelayer
from cachelayer.exceptions import InvalidDelta, MappingError, NotNumeric, OperationDisabled
from cachelayer.models import CachePolicy, Container
from demo_project.demo.models import Country, DemoTest
from tests.testapp.models import Memo

STORES = ["caching", "db_only", "cache_only"]


def make_container(name, model, policy="caching", **mapping):
    policy_row = CachePolicy.objects.create(
        policy_name=f"{name}_policy", get_policy=policy, set_policy=policy, delete_policy=policy, flush_policy=policy
    )
    return Container.objects.create(
        name=name, content_type=ContentType.objects.get_for_model(model), policy=policy_row, **mapping
    )


@pytest.fixture(params=STORES)
def demo(request):
    """innodb_memcache's demo container: c1 key, c2 value, c3 flags, c4 cas, c5 expiry."""
    make_container(
        "aaa",
        DemoTest,
        request.param,
        key_columns="c1",
        value_columns="c2",
        flags_column="c3",
        cas_column="c4",
        expire_time_column="c5",
    )
    return request.param, cachelayer.repository("aaa")


def in_db(key):
    return DemoTest.objects.filter(c1=key).values_list("c2", flat=True).first()


def test_set_get_delete(demo):
    policy, repo = demo
    assert repo.get("k") is None
    assert repo.set("k", "hello", flags=5) is True
    assert repo.get("k") == "hello"
    assert repo.get_item("k").flags == 5
    assert in_db("k") == (None if policy == "cache_only" else "hello")
    assert repo.delete("k") is True
    assert repo.get("k") is None
    assert repo.delete("k") is False


def test_add_and_replace(demo):
    _, repo = demo
    assert repo.replace("k", "x") is False
    assert repo.add("k", "a") is True
    assert repo.add("k", "b") is False
    assert repo.replace("k", "c") is True
    assert repo.get("k") == "c"


def test_append_prepend(demo):
    _, repo = demo
    assert repo.append("k", "x") is False
    repo.set("k", "mid")
    assert repo.append("k", ">") and repo.prepend("k", "<")
    assert repo.get("k") == "<mid>"


def test_incr_decr(demo):
    _, repo = demo
    assert repo.incr("n") is None
    repo.set("n", "10")
    assert repo.incr("n", 5) == 15
    assert repo.decr("n", 20) == 0
    assert repo.get("n") == "0"
    repo.set("n", str(2**64 - 1))
    assert repo.incr("n") == 0  # memcached wraps at 64 bits
    repo.set("word", "abc")
    with pytest.raises(NotNumeric, match="word.*aaa|aaa.*word"):
        repo.incr("word")
    assert repo.get("word") == "abc"


# What memcached 1.6's incr makes of a stored value (checked against the real
# server): strtoull's reading, ASCII digits only, 64 bits at most.
NUMERIC = {"12": 13, " 12": 13, "12 ": 13, "\t7": 8, "+12": 13, "007": 8, "12 abc": 13, "-0": 1, str(2**64 - 1): 0}
NOT_NUMERIC = ["\u00b2", "\u0663", "\uff11\uff12", "", "-1", "12abc", "1_0", "0x10", str(2**64), "9" * 30]


def test_incr_reads_a_number_as_memcached_does(demo):
    _, repo = demo
    for stored, incremented in NUMERIC.items():
        repo.set("n", stored)
        assert (stored, repo.incr("n", 1)) == (stored, incremented)
        assert repo.get("n") == str(incremented)


def test_incr_refuses_what_memcached_finds_non_numeric(demo):
    _, repo = demo
    for stored in NOT_NUMERIC:
        repo.set("n", stored)
        for operation in (repo.incr, repo.decr):
            with pytest.raises(NotNumeric):
                operation("n", 1)
        assert repo.get("n") == stored


def test_incr_refuses_a_delta_memcached_would_not_take(demo):
    _, repo = demo
    repo.set("n", "5")
    for delta in (-1, 2**64, 1.5, "1", True):
        for operation in (repo.incr, repo.decr):
            with pytest.raises(InvalidDelta):
                operation("n", delta)
    assert repo.incr("n", 2**64 - 1) == 4  # the largest delta wraps
    assert repo.decr("n", 2**64 - 1) == 0


def test_cas(demo):
    _, repo = demo
    assert repo.cas("k", "v", 1) is None
    repo.set("k", "one")
    token = repo.get_item("k").cas
    assert token
    assert repo.cas("k", "two", token) is True
    assert repo.cas("k", "three", token) is False
    assert repo.get("k") == "two"


def test_expiry_and_touch(demo):
    _, repo = demo
    repo.set("gone", "v", exptime=-1)
    assert repo.get("gone") is None
    repo.set("k", "v", exptime=100)
    assert repo.touch("k", -1) is True
    assert repo.get("k") is None
    assert repo.touch("missing", 10) is False


def test_flush(demo):
    policy, repo = demo
    repo.set("a", "1")
    repo.set("b", "2")
    repo.flush()
    assert repo.get_many(["a", "b"]) == {}
    if policy != "cache_only":
        assert DemoTest.objects.count() == 0


@pytest.mark.parametrize("operation", ["get", "set", "delete", "flush"])
def test_disabled_operation_is_refused(operation):
    policy = CachePolicy.objects.create(policy_name="off", **{f"{operation}_policy": "disabled"})
    Container.objects.create(
        name="off",
        content_type=ContentType.objects.get_for_model(DemoTest),
        key_columns="c1",
        value_columns="c2",
        policy=policy,
    )
    repo = cachelayer.repository("off")
    call = {
        "get": lambda: repo.get("k"),
        "set": lambda: repo.set("k", "v"),
        "delete": lambda: repo.delete("k"),
        "flush": repo.flush,
    }[operation]
    with pytest.raises(OperationDisabled, match=f"'{operation}' is disabled on container 'off'"):
        call()
    assert DemoTest.objects.count() == 0


def test_innodb_only_is_db_only():
    policy = CachePolicy.objects.create(policy_name="inno", get_policy="innodb_only", set_policy="innodb_only")
    assert policy.get_policy == "db_only"


def test_multi_column_values_split_on_the_separator():
    make_container("countries", Country, key_columns="country", value_columns="population|area_sq_km|drive_side")
    repo = cachelayer.repository("countries")
    repo.set("Narnia", "1000|50|L|ignored|extras")
    row = Country.objects.get(country="Narnia")
    assert (row.population, row.area_sq_km, row.drive_side) == (1000, 50, "L")
    assert repo.get("Narnia") == "1000|50|L"
    repo.set("Oz", "7|8")  # drive_side: its default, as save() would store
    assert Country.objects.get(country="Oz").drive_side == "R"


def test_missing_parts_of_columns_that_fill_themselves_are_filled_as_save_fills_them():
    """A default, ``auto_now``, ``auto_now_add`` or ``db_default`` column need not be given:
    set fills it as ``save()`` would (auto_now: now, whatever the value said)."""
    make_container("notes", Memo, key_columns="code", value_columns="text|priority|created|updated|rank")
    repo = cachelayer.repository("notes")
    repo.set("n1", "hello")
    first = Memo.objects.get(code="n1")
    assert (first.text, first.priority, first.rank) == ("hello", 3, 7)
    assert first.created is not None and first.updated is not None
    repo.set("n1", "bye|5||2000-01-01 00:00:00|")
    second = Memo.objects.get(code="n1")
    assert (second.text, second.priority, second.rank, second.created) == ("bye", 5, 7, first.created)
    assert second.updated > first.updated  # now: the given value is not taken, as save() would not
    assert repo.get("n1").split("|")[:2] == ["bye", "5"]
    make_container("priorities", Memo, key_columns="code", value_columns="priority|text")
    with pytest.raises(MappingError, match=r"NOT NULL column 'text'.*a value is '\[priority\]\|text'"):
        cachelayer.repository("priorities").set("n2", "5")
    assert not Memo.objects.filter(code="n2").exists()  # no partial write


def test_fewer_parts_leave_nullable_columns_null():
    make_container("pop", Country, key_columns="country", value_columns="population|area_sq_km")
    repo = cachelayer.repository("pop")
    repo.set("Lilliput", "12")
    row = Country.objects.get(country="Lilliput")
    assert (row.population, row.area_sq_km) == (12, None)


def test_repository_and_model_layer_agree():
    Country.objects.create(country="Elbonia", population=3, area_sq_km=4, drive_side="R")
    repo = cachelayer.repository(Country)
    assert repo.get("Elbonia") == "3|4|R"
    repo.set("Elbonia", "30|40|L")
    assert Country.cached.get("Elbonia").population == 30


def test_multi_column_key_parts_holding_the_separator():
    from tests.testapp.models import Pair

    repo = cachelayer.repository(Pair)  # key columns left|right, value column value
    assert repo.set(("a|b", 1), "11") is True
    assert repo.set("a|2", "12") is True
    assert Pair.objects.get(left="a|b", right=1).value == 11
    assert Pair.objects.get(left="a", right=2).value == 12
    assert repo.get(("a|b", 1)) == "11"
    assert repo.get_many(["a\\|b|1", "a|2", "a|b|1"]) == {"a\\|b|1": "11", "a|2": "12"}
    assert repo.incr("a\\|b|1", 1) == 12
    with pytest.raises(MappingError, match="not a valid key"):
        repo.set("a|b|1", "1")  # three parts for two columns
    assert repo.delete(("a|b", 1)) is True
    assert repo.get(("a|b", 1)) is None
    assert not Pair.objects.filter(left="a|b").exists()


def test_unknown_container():
    with pytest.raises(cachelayer.ContainerNotFound, match="nope"):
        cachelayer.repository("nope")


def test_invalid_key_for_an_integer_key_column():
    from tests.testapp.models import Item

    repo = cachelayer.repository(Item)
    assert repo.get("not-a-number") is None
    with pytest.raises(MappingError, match="not a valid key"):
        repo.set("not-a-number", "1")


def test_mapping_edit_turns_old_payloads_into_misses():
    from cachelayer.engine import stats

    Country.objects.create(country="Freedonia", population=3, area_sq_km=4, drive_side="R")
    repo = cachelayer.repository(Country)
    assert repo.get("Freedonia") == "3|4|R"
    assert repo.get("Freedonia") == "3|4|R"
    container = Container.objects.get(name="demo_country")
    container.value_columns = "drive_side|population"
    container.save()  # another process would see it through the configuration version
    misses = stats.snapshot()["demo_country"]["misses"]
    assert repo.get("Freedonia") == "R|3"
    assert stats.snapshot()["demo_country"]["misses"] == misses + 1


def test_policy_edit_from_another_process_is_seen_on_the_next_operation():
    from cachelayer.engine.invalidation import bump_configuration

    policy = CachePolicy.objects.create(policy_name="later", get_policy="disabled")
    container = Container.objects.create(
        name="later",
        content_type=ContentType.objects.get_for_model(DemoTest),
        key_columns="c1",
        value_columns="c2",
        policy=policy,
    )
    repo = cachelayer.repository("later")
    with pytest.raises(OperationDisabled):
        repo.get("k")
    DemoTest.objects.create(c1="k", c2="v")
    # Another process edits the policy: this process's registry is not told
    # directly; only the configuration version that process bumps after commit.
    CachePolicy.objects.filter(pk=policy.pk).update(get_policy="db_only")
    cachelayer.engine.registry.registry.loaded = True  # keep this process's stale definitions
    bump_configuration(None, [container.name])
    cachelayer.engine.registry.registry.loaded = True
    assert repo.get("k") == "v"
