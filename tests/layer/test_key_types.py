"""Keys of every column type a container may be keyed by: decimal, date, datetime, a
unique key of a model with a composite primary key, and the composite primary key
itself (issue 28, item 2).

A decimal key is written with its field's decimal places ("1.1", 1.1 and
Decimal("1.10") are one row of a DecimalField(decimal_places=2)); a datetime
key is the instant, in UTC, whatever zone it was given in. The read path, the
write path and the follower all go through core/codec.py, so a write under
one form outdates a read under another.
"""

import datetime
from decimal import Decimal

import pytest

from cachelayer.engine.registry import registry
from tests.layer.test_freshness import add_container, read_via
from tests.layer.test_write_paths import read_fresh
from tests.testapp.models import Priced, Seat, Stamped, Ticket

DAY = datetime.date(2024, 2, 29)
AT = datetime.datetime(2024, 2, 29, 10, 30, tzinfo=datetime.UTC)
AT_ELSEWHERE = AT.astimezone(datetime.timezone(datetime.timedelta(hours=2)))  # the same instant


def by(name):
    return Priced.cached.container(f"testapp_priced__by_{name}")


def read(container, key):
    read_fresh(Priced, Decimal("0"))  # a new request
    try:
        return container.get(key)
    except Priced.DoesNotExist:
        return None


@pytest.mark.parametrize("form", [Decimal("1.10"), Decimal("1.1"), "1.1", "1.10", "01.100", 1.1])
def test_a_decimal_key_in_any_form_reads_the_row(form, django_assert_num_queries):
    row = Priced.objects.create(price=Decimal("1.1"), value=1)
    assert read_fresh(Priced, form).pk == row.pk
    with django_assert_num_queries(0):  # filed once, under the canonical key
        assert Priced.cached.get(Decimal("1.10")).value == 1
        assert Priced.cached.get("1.1").value == 1


def test_a_write_under_one_decimal_form_outdates_a_read_under_another():
    row = Priced.objects.create(price=Decimal("2.5"), value=1)
    assert read_fresh(Priced, "2.50").value == 1
    row.price = "2.5"  # another form, same row
    row.value = 2
    row.save()
    assert read_fresh(Priced, Decimal("2.50")).value == 2
    row.delete()
    assert read_fresh(Priced, "2.5") is None


@pytest.mark.parametrize("key", ["1.105", "abc", "12345.1"])  # more places / not a number / too many digits
def test_a_decimal_no_row_can_have_is_absent(key):
    Priced.objects.create(price=Decimal("1.10"))
    assert read_fresh(Priced, key) is None


def test_date_and_datetime_keys_in_any_form_read_and_outdate_the_row(django_assert_num_queries):
    row = Priced.objects.create(price=Decimal("3"), day=DAY, at=AT, value=1)
    assert read(by("day"), "2024-02-29").value == 1
    assert read(by("at"), AT_ELSEWHERE).value == 1
    with django_assert_num_queries(0):
        assert by("day").get(DAY).value == 1
        assert by("at").get(AT).value == 1
        assert by("at").get(AT.isoformat()).value == 1
    Priced.objects.filter(pk=row.pk).update(value=2)  # CachedQuerySet.update
    assert read(by("day"), DAY).value == 2
    assert read(by("at"), AT).value == 2
    row.day, row.at, row.value = DAY + datetime.timedelta(days=1), AT + datetime.timedelta(hours=1), 3
    row.save()  # new keys: the old ones are outdated
    assert read(by("day"), DAY) is None
    assert read(by("at"), AT_ELSEWHERE) is None
    assert read(by("day"), "2024-03-01").value == 3


def test_a_composite_pk_model_keyed_by_its_unique_column_is_created_read_and_outdated():
    row = Stamped.objects.create(id=1, value=1)  # the pk's "created" part is filled by pre_save
    assert read_fresh(Stamped, 1).value == 1
    assert read_fresh(Stamped, "01").created == row.created
    row.value = 2
    row.save()
    assert read_fresh(Stamped, 1).value == 2
    row.delete()
    assert read_fresh(Stamped, 1) is None


def seat(key):
    row = read_fresh(Seat, key)
    return None if row is None else row.value


def test_a_composite_primary_key_is_its_models_container_key():
    """A mixin model keyed by a composite primary key whose parts are unique only together:
    its container is keyed by the parts (not an index), read by the pk tuple or its parts joined."""
    definition = registry.get("testapp_seat")
    assert [f.name for f in definition.key_fields] == ["hall", "number"] and not definition.is_index
    Seat.objects.create(hall="a", number=1, value=1)
    assert seat(("a", 1)) == seat("a|1") == 1


@pytest.mark.parametrize("key", [("a", 1), "a|1"], ids=["tuple", "joined"])
def test_a_composite_primary_key_reads_fills_and_is_outdated_by_every_write(key, django_assert_num_queries):
    row = Seat.objects.create(hall="a", number=1, value=1)
    assert seat(key) == 1
    with django_assert_num_queries(0):
        assert Seat.cached.get(key).value == 1
    row.value = 2
    row.save()
    assert seat(key) == 2
    Seat.objects.filter(hall="a").update(value=3)
    assert seat(key) == 3
    Seat.objects.bulk_update([Seat(hall="a", number=1, value=4)], ["value"])
    assert seat(key) == 4
    Seat.objects.filter(pk=("a", 1)).update(hall="b")  # a part of the key moves: the old key is absent
    assert (seat(key), seat(("b", 1))) == (None, 4)
    Seat.objects.bulk_create([Seat(hall="a", number=1, value=5)])
    assert seat(key) == 5
    Seat.objects.get(pk=("a", 1)).delete()
    assert seat(key) is None


def test_a_pk_from_defaults_inserts_with_no_old_key_read(django_assert_num_queries):
    """Django inserts an instance being added whose pk fields all have defaults without trying
    an UPDATE (one query): there is no old key to read, even for a container keyed by another column."""
    add_container("tickets_by_ref", Ticket, "ref")
    assert read_via("tickets_by_ref", Ticket, "a") is None  # (the new container is loaded)
    with django_assert_num_queries(1):
        Ticket(ref="a", value=1).save()
    assert read_via("tickets_by_ref", Ticket, "a").value == 1


def test_force_update_of_an_instance_being_added_outdates_its_old_key():
    """force_update, which pre_save cannot see, updates a row whose old key was not read:
    post_save says it did not insert, and the containers keyed by other columns are outdated."""
    add_container("tickets_by_ref", Ticket, "ref")
    ticket = Ticket.objects.create(ref="a", value=1)
    assert read_via("tickets_by_ref", Ticket, "a").value == 1
    Ticket(pk=ticket.pk, ref="b", value=2).save(force_update=True)
    assert read_via("tickets_by_ref", Ticket, "a") is None
    assert read_via("tickets_by_ref", Ticket, "b").value == 2
