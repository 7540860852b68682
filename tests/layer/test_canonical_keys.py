"""Canonical keys: a key in any form the database accepts for a row reads that
row and outdates its cached copies (issue 24, defects 2 and 3; issue 28, item 5).

A key goes through its field's own conversion ("07" is the integer pk 7), and,
where the column's collation makes different strings equal (MariaDB's
default utf8mb4_general_ci: "ab-1" is "AB-1", and so is "AB-1 "), through
that collation's rule. Each test compares what cachelayer answers with what
the ORM answers for the same arguments, so it holds on every database: on
SQLite and PostgreSQL "ab-1" is simply another key.
"""

import uuid

import pytest
from django.db import connection

import cachelayer
from tests.layer.test_freshness import add_container
from tests.layer.test_write_paths import read_fresh
from tests.testapp.models import LABEL_COLLATION, Comment, Item, Label, Managed, Post, Sku, Slugged, Ticket, Wrapped

FORMS = ("AB-1", "ab-1", "Ab-1", "AB-1 ")  # equal under MariaDB's default collation


def values(instance):
    return None if instance is None else (instance.pk, instance.value)


def orm(model, **lookup):
    return values(model._base_manager.filter(**lookup).first())


def test_a_pk_in_another_form_reads_the_row(django_assert_num_queries):
    item = Item.objects.create(value=1)
    typed = f"0{item.pk}"
    assert values(read_fresh(Item, typed)) == orm(Item, pk=typed) == (item.pk, 1)
    with django_assert_num_queries(0):  # filed once, under the canonical key
        assert Item.cached.get(item.pk).value == 1
        assert Item.cached.get(f" {item.pk}").value == 1
    assert {key: values(row) for key, row in Item.cached.get_many([typed, item.pk]).items()} == {
        typed: (item.pk, 1),
        item.pk: (item.pk, 1),
    }


def test_a_save_and_a_delete_under_another_form_of_the_pk_outdate_the_row():
    item = Item.objects.create(value=1)
    assert read_fresh(Item, item.pk).value == 1
    Item(pk=f"0{item.pk}", value=2).save()
    assert read_fresh(Item, item.pk).value == 2
    Item(pk=f"0{item.pk}").delete()
    assert read_fresh(Item, item.pk) is None
    assert read_fresh(Item, f"0{item.pk}") is None


def test_a_pk_in_another_form_finds_the_old_key_of_other_containers(django_assert_num_queries):
    row = Slugged.objects.create(slug="before", value=1)
    assert read_fresh(Slugged, "before").value == 1
    Slugged(pk=f"0{row.pk}", slug="after", value=2).save()  # the old key is read from the database
    assert read_fresh(Slugged, "before") is None
    assert read_fresh(Slugged, "after").value == 2
    Slugged.objects.create(slug="other")
    Slugged.cached.get_many(["after", "other"])
    Slugged(pk=f"0{row.pk}").delete()
    for queries in (1, 0):  # the key outdated (then cached as absent)
        with django_assert_num_queries(queries), pytest.raises(Slugged.DoesNotExist):
            Slugged.cached.get("after")
    with django_assert_num_queries(0):  # not the whole container
        Slugged.cached.get("other")


def test_an_absent_key_in_another_form_is_filled_under_the_canonical_key():
    missing = Item.objects.create(value=0).pk + 1
    assert read_fresh(Item, f"0{missing}") is None  # a negative entry: under the canonical key
    Item.objects.create(pk=missing, value=5)
    assert read_fresh(Item, f"0{missing}").value == 5


@pytest.mark.parametrize("key", ["abc", "1.5", "", None, (1, 2)])
def test_a_key_no_row_can_have_is_absent_on_every_api(key, django_assert_num_queries):
    Item.objects.create(value=1)
    with django_assert_num_queries(0):
        with pytest.raises(Item.DoesNotExist):
            Item.cached.get(key)
        assert Item.cached.get_many([key]) == {}
        assert cachelayer.repository(Item).get_many([key]) == {}
        cachelayer.invalidate(Item, [key])  # nothing to outdate


def test_invalidate_under_another_form_outdates_the_row():
    item = Item.objects.create(value=1)
    assert read_fresh(Item, item.pk).value == 1
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_item SET value = 2 WHERE id = %s", [item.pk])
    cachelayer.invalidate(Item, [f"0{item.pk}"])
    assert read_fresh(Item, item.pk).value == 2


def test_repository_verbs_take_any_form_of_the_key():
    add_container("item_values", Item, "id", value_columns="value")
    item = Item.objects.create(value=1)
    repo = cachelayer.repository("item_values")
    assert repo.get(f"0{item.pk}") == "1"
    assert repo.set(f"00{item.pk}", "3")
    assert read_fresh(Item, item.pk).value == 3
    assert repo.get(item.pk) == repo.get(str(item.pk)) == "3"
    assert repo.delete(f"0{item.pk}")
    assert read_fresh(Item, item.pk) is None and repo.get(item.pk) is None


# Strings the collation makes equal ---------------------------------------


def test_char_pk_reads_answer_what_the_orm_answers_under_every_form():
    Sku.objects.create(code="AB-1", value=1)
    for form in FORMS:
        assert values(read_fresh(Sku, form)) == orm(Sku, pk=form), form
        found = Sku.cached.get_many([form])
        assert {key: values(row) for key, row in found.items()} == (
            {form: orm(Sku, pk=form)} if orm(Sku, pk=form) else {}
        )


@pytest.mark.parametrize("form", FORMS[1:])
def test_a_char_pk_write_under_another_form_outdates_the_stored_form(form):
    Sku.objects.create(code="AB-1", value=1)
    for each in FORMS:
        read_fresh(Sku, each)  # every form cached (as a row, or as absent)
    Sku(code=form, value=2).save()  # MariaDB: updates AB-1; SQLite, PostgreSQL: inserts another row
    for each in FORMS:
        assert values(read_fresh(Sku, each)) == orm(Sku, pk=each), each
    Sku(code=form).delete()
    for each in FORMS:
        assert values(read_fresh(Sku, each)) == orm(Sku, pk=each), each


def test_a_unique_char_key_reads_and_writes_under_every_form():
    row = Managed.objects.create(code="AB-1", value=1)
    for form in FORMS:
        assert values(read_fresh(Managed, form)) == orm(Managed, code=form), form
    Managed.objects.filter(pk=row.pk).update(value=2)
    for form in FORMS:
        assert values(read_fresh(Managed, form)) == orm(Managed, code=form), form
    row.refresh_from_db()
    row.code = "ab-2"
    row.save()
    for form in (*FORMS, "AB-2", "ab-2"):
        assert values(read_fresh(Managed, form)) == orm(Managed, code=form), form


def test_an_index_read_answers_what_filter_answers():
    post = Post.objects.create()
    for status in ("open", "Open", "closed"):
        Comment.objects.create(post=post, status=status)

    def both(status):
        cached = [c.pk for c in Comment.cached.filter(post=post, status=status)]
        return cached, list(
            Comment.objects.filter(post=post, status=status).order_by("pk").values_list("pk", flat=True)
        )

    for status in ("open", "OPEN", "Open", "open "):
        cached, expected = both(status)
        assert cached == expected, status
    Comment.objects.create(post=post, status="OPEN")
    for status in ("open", "OPEN"):
        cached, expected = both(status)
        assert cached == expected, status
    assert [c.pk for c in Comment.cached.filter(post=str(post.pk), status="open")] == both("open")[1]


def test_the_check_names_every_key_column_whose_collation_makes_strings_equal():
    from cachelayer.checks import check_collations

    messages = [m.msg for m in check_collations(databases=["default"]) if m.id == "cachelayer.I040"]
    sku = [m for m in messages if "testapp_sku.code has collation utf8mb4_general_ci: folded exactly" in m]
    assert len(sku) == (1 if connection.vendor == "mysql" else 0)


def test_a_declared_collation_folds_exactly_or_sends_reads_to_the_database(django_assert_num_queries):
    """SQLite's NOCASE is folded (a hit after the first read); MariaDB's utf8mb4_unicode_ci
    cannot be (every read asks the database, and answers what the ORM answers)."""
    from cachelayer.checks import check_collations

    Label.objects.create(code="AB-1", value=1)
    forms = ("AB-1", "ab-1", "Ab-1", "AB-1 ")
    for form in forms:
        assert values(read_fresh(Label, form)) == orm(Label, code=form), form
    cached = LABEL_COLLATION != "utf8mb4_unicode_ci"
    with django_assert_num_queries(0 if cached else 1):
        Label.cached.get_many(["ab-1"])
    Label(pk=Label.objects.get().pk, code="ab-1", value=2).save()
    for form in forms:
        assert values(read_fresh(Label, form)) == orm(Label, code=form), form
    found = {m.id for m in check_collations(databases=["default"]) if "testapp_label.code" in m.msg}
    assert (
        found
        == {None: set(), "NOCASE": {"cachelayer.I040"}, "utf8mb4_unicode_ci": {"cachelayer.W040"}}[LABEL_COLLATION]
    )


@pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB's collations")
def test_folding_is_a_representative_the_collation_holds_equal():
    """The folded form of a string is equal to it under the column's collation, so
    a key read from the cache is also a key the database finds the row by."""
    from cachelayer.engine import collations

    rule = collations.rule_of("default", Sku, Sku._meta.get_field("code"))
    samples = ["AB-1", "ab-1 ", "straße", "ÄÖÜ äöü", "😀 emoji", "ǅ", "İı", "ﬁ", "\u00a0x"]
    with connection.cursor() as cursor:
        for sample in samples:
            folded = rule(sample)
            cursor.execute(
                f"SELECT CAST(%s AS CHAR CHARACTER SET utf8mb4) COLLATE {rule.collation} = %s", [folded, sample]
            )
            assert cursor.fetchone()[0] == 1, (sample, folded)
            assert rule(folded) == folded


# Keys from the field's value, never from str() -----------------------------


def test_a_pk_whose_value_str_is_no_string_is_keyed_by_its_database_value():
    row = Wrapped.objects.create(value=1)  # raised TypeError from post_save after the INSERT
    pk = int(Wrapped.objects.get().pk)
    assert read_fresh(Wrapped, pk).value == 1
    row = Wrapped.objects.get(pk=pk)
    assert isinstance(row.pk, type(Wrapped.objects.get().pk))
    row.value = 2
    row.save()
    assert read_fresh(Wrapped, pk).value == 2
    assert read_fresh(Wrapped, row.pk).value == 2
    row.delete()
    assert read_fresh(Wrapped, pk) is None


@pytest.mark.caches("locmem")
@pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB's collations")
def test_every_character_folds_to_one_the_collation_holds_equal():
    """Per-character folding is exact: the character a weight names weighs the same,
    for every character of the Basic Multilingual Plane (so every string folds to an equal one)."""
    from cachelayer.engine import collations

    rule = collations.rule_of("default", Sku, Sku._meta.get_field("code"))
    chars = [chr(c) for c in range(0x21, 0x10000) if not 0xD800 <= c < 0xE000]
    folded = {char: rule(char) for char in chars}
    assert [char for char, rep in folded.items() if rule(rep) != rep] == []
    assert len(set(folded.values())) < len(chars)  # it does fold (case, accents)


# Every key type: UUID keys, nullable unique keys (issue 28, item 4) --------


def test_a_uuid_pk_in_any_spelling_is_one_key(django_assert_num_queries):
    ticket = Ticket.objects.create(value=1)
    spellings = [ticket.pk, str(ticket.pk), ticket.pk.hex, str(ticket.pk).upper(), f"{{{ticket.pk}}}"]
    assert read_fresh(Ticket, spellings[0]).value == 1
    with django_assert_num_queries(0):
        for spelling in spellings:
            assert Ticket.cached.get(spelling).pk == ticket.pk, spelling
    Ticket(pk=ticket.pk.hex.upper(), value=2).save(force_update=True)  # (a pk with a default: else an INSERT)
    assert [read_fresh(Ticket, spelling).value for spelling in spellings] == [2] * len(spellings)
    Ticket(pk=ticket.pk.hex).delete()
    assert read_fresh(Ticket, str(ticket.pk)) is None
    with pytest.raises(Ticket.DoesNotExist):
        Ticket.cached.get("not-a-uuid")
    assert Ticket.cached.get_many([uuid.uuid4()]) == {}


def test_a_nullable_unique_key_caches_its_values_and_never_null():
    from cachelayer.core.mapping import validate_mapping

    assert validate_mapping(Ticket, "ref") == ({}, [])
    add_container("ticket_by_ref", Ticket, "ref")
    ticket = Ticket.objects.create(value=1)  # ref NULL: in no key
    assert read_fresh(Ticket, None, "ticket_by_ref") is None
    assert read_fresh(Ticket, "r1", "ticket_by_ref") is None  # cached as absent
    ticket.ref = "r1"
    ticket.save()
    assert read_fresh(Ticket, "r1", "ticket_by_ref").value == 1
    ticket.ref = None
    ticket.save()
    assert read_fresh(Ticket, "r1", "ticket_by_ref") is None
    Ticket.objects.filter(pk=ticket.pk).update(ref="r2")
    assert read_fresh(Ticket, "r2", "ticket_by_ref").pk == ticket.pk


@pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB's collations")
@pytest.mark.django_db(transaction=True, databases=["default", "repeatable_read"])
def test_a_fold_follows_the_database_a_router_sends_its_container_to():
    """A router that sent writes elsewhere once (Django's ``WriteToOtherRouter`` tests) must not
    leave the fold asking that database for weights ever after (issue 28, Django's suite)."""
    from cachelayer.engine import collations

    where = ["repeatable_read"]
    fold = collations.ColumnFold(lambda: where[0], Sku, Sku._meta.get_field("code"))
    assert fold("ab-1") == "AB-1" and fold.rule().alias == "repeatable_read"
    where[0] = "default"
    assert fold("ab-1") == "AB-1" and fold.rule().alias == "default"
