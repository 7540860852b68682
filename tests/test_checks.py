"""System checks of the CACHELAYER settings dict."""

import pytest
from django.core.checks import run_checks


def setting_errors(settings, **cachelayer) -> list[str]:
    settings.CACHELAYER = cachelayer
    return [
        e.msg for e in run_checks(include_deployment_checks=False, tags=["caches"]) if e.id.startswith("cachelayer.E00")
    ]


def test_defaults_pass(settings):
    assert setting_errors(settings) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SOCKET_TIMEOUT", 0),
        ("BREAKER_THRESHOLD", 0),
        ("BREAKER_COOLDOWN", -1),
        ("MAX_ITEM_SIZE", 0),
        ("MAX_ITEM_SIZE", "1m"),
        ("SERIALIZER", "yaml"),
        ("TIMEOUT", -5),
        ("PAYLOAD_KEY", ""),
        ("PAYLOAD_KEY", 5),
        ("POOL_MEMBERSHIP_TTL", 0),
        ("NEAR_CACHE", "yes"),
        ("NEAR_CACHE_MAX_ENTRIES", 0),
        ("NEAR_CACHE_MAX_LAG", 0),
        ("REQUEST_MEMO", 1),
    ],
)
def test_bad_values_are_named(settings, name, value):
    errors = setting_errors(settings, **{name: value})
    assert len(errors) == 1 and name in errors[0]


def test_unknown_setting(settings):
    assert any("'BREAKER'" in msg for msg in setting_errors(settings, BREAKER=1))


def test_good_values_pass(settings):
    assert setting_errors(settings, SOCKET_TIMEOUT=0.1, BREAKER_THRESHOLD=1, MAX_ITEM_SIZE=512 * 1024) == []
    assert setting_errors(settings, PAYLOAD_KEY="k", PAYLOAD_KEY_FALLBACKS=["old", b"older"]) == []


def monitor_errors(settings, **cachelayer) -> list:
    settings.CACHELAYER = cachelayer
    found = run_checks(include_deployment_checks=False, tags=["caches"])
    return [e for e in found if e.id.startswith("cachelayer.E00") and "MONITOR_" in e.msg]


@pytest.mark.parametrize(
    ("setting", "named", "wrong"),
    [
        ({"MONITOR_SAMPLE_RATE": -0.5}, "MONITOR_SAMPLE_RATE", "from 0 to 1"),
        ({"MONITOR_SAMPLE_RATE": 1.5}, "MONITOR_SAMPLE_RATE", "from 0 to 1"),
        ({"MONITOR_SAMPLE_RATE": "0.1"}, "MONITOR_SAMPLE_RATE", "number"),
        ({"MONITOR_SAMPLE_RATE": True}, "MONITOR_SAMPLE_RATE", "number"),
        ({"MONITOR_DELAYS": [1.0, 60.0, 5.0]}, "MONITOR_DELAYS", "increasing"),
        ({"MONITOR_DELAYS": [1.0, 5.0, 5.0, 60.0]}, "MONITOR_DELAYS", "each delay once"),
        ({"MONITOR_DELAYS": []}, "MONITOR_DELAYS", "non-empty list"),
        ({"MONITOR_DELAYS": [-1.0, 5.0, 60.0]}, "MONITOR_DELAYS", "positive numbers"),
        ({"MONITOR_DELAYS": "1,5,60"}, "MONITOR_DELAYS", "list"),
        ({"MONITOR_QUERIES_PER_SECOND": 0}, "MONITOR_QUERIES_PER_SECOND", "positive number"),
        ({"MONITOR_QUERIES_PER_SECOND": -10}, "MONITOR_QUERIES_PER_SECOND", "positive number"),
        ({"MONITOR_WINDOW": "1h"}, "MONITOR_WINDOW", "positive number"),
        ({"MONITOR_WINDOW": float("inf")}, "MONITOR_WINDOW", "positive number"),
        ({"MONITOR_TARGETS": {5.0: 99.9}}, "MONITOR_TARGETS", "at most 1"),
        ({"MONITOR_TARGETS": [0.999]}, "MONITOR_TARGETS", "must map delays"),
        ({"MONITOR_TARGETS": {"5 s": 0.999}}, "MONITOR_TARGETS", "must map delays"),
        ({"MONITOR_TARGETS": {10: 0.999}}, "MONITOR_TARGETS", "at 10 s"),
    ],
)
def test_a_wrong_monitor_setting_is_one_error_that_says_what_is_wrong(settings, setting, named, wrong):
    (error,) = monitor_errors(settings, **setting)
    assert error.id == ("cachelayer.E005" if "at 10 s" in wrong else "cachelayer.E002")
    assert f"[{named!r}]" in error.msg and wrong in error.msg, error.msg
    assert error.hint


def test_monitor_targets_at_delays_no_longer_measured_are_each_named(settings):
    """Changing MONITOR_DELAYS alone leaves the default targets (5 and 60 s) behind."""
    found = monitor_errors(settings, MONITOR_DELAYS=[1.0, 10.0])
    assert [e.id for e in found] == ["cachelayer.E005"] * 2
    assert "at 5.0 s" in found[0].msg and "at 60.0 s" in found[1].msg and "[1.0, 10.0]" in found[0].msg


def test_good_monitor_settings_pass(settings):
    assert monitor_errors(settings) == []
    good = {"MONITOR_SAMPLE_RATE": 1, "MONITOR_DELAYS": (2, 30), "MONITOR_TARGETS": {30: 1}}
    assert monitor_errors(settings, **good, MONITOR_QUERIES_PER_SECOND=0.5, MONITOR_WINDOW=60) == []
    assert monitor_errors(settings, MONITOR_SAMPLE_RATE=0, MONITOR_TARGETS={}) == []


def test_a_near_cache_on_a_cache_without_push_is_named(settings):
    from cachelayer.checks import check_settings

    def warnings(alias):
        settings.CACHELAYER = {"CACHE_ALIAS": alias, "NEAR_CACHE": True}
        return [e.id for e in check_settings() if e.id == "cachelayer.W050"]

    assert (warnings("memcached"), warnings("redis")) == (["cachelayer.W050"], [])


@pytest.mark.parametrize(
    ("backend", "options", "named"),
    [
        ("django.core.cache.backends.memcached.PyMemcacheCache", {"tls_contxt": 1}, "'tls_contxt'"),
        ("django.core.cache.backends.memcached.PyLibMCCache", {"user": "bob"}, "'user'"),
    ],
)
def test_memcached_options_no_client_takes(settings, backend, options, named):
    settings.CACHES = {
        **settings.CACHES,
        "odd": {"BACKEND": backend, "LOCATION": "127.0.0.1:11211", "OPTIONS": options},
    }
    from cachelayer.checks import check_settings  # Django's own cache checks would build the client

    errors = [e for e in check_settings() if e.id == "cachelayer.E004"]
    assert len(errors) == 1 and named in errors[0].msg


def test_memcached_options_of_the_connection_or_of_djangos_client_pass(settings):
    settings.CACHES = {
        **settings.CACHES,
        "tls": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": "127.0.0.1:11211",
            "OPTIONS": {"tls_context": None, "no_delay": True, "ignore_exc": True, "retry_attempts": 1},
        },
    }
    from cachelayer.checks import check_settings

    assert [e for e in check_settings() if e.id == "cachelayer.E004"] == []


def test_a_followed_postgresql_table_whose_replica_identity_misses_a_key_column_is_named(transactional_db):
    """cachelayer.W021: the shared server's tables have REPLICA IDENTITY DEFAULT (the pk
    only), and testapp_slugged is keyed by its slug too: a WAL follower could not see the
    old slug of an UPDATE. Only an alias a follower follows is checked."""
    from django.db import connection

    from cachelayer.models import FollowerPosition

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: its REPLICA IDENTITY")
    assert [m for m in run_checks(databases=["default"], tags=["database"]) if m.id == "cachelayer.W021"] == []
    FollowerPosition.objects.create(database="default", server_id=1, log_file="", log_pos=0)
    found = [m for m in run_checks(databases=["default"], tags=["database"]) if m.id == "cachelayer.W021"]
    slugged = [m for m in found if "testapp_slugged " in m.msg]
    assert slugged and "REPLICA IDENTITY DEFAULT" in slugged[0].msg and "slug" in slugged[0].msg, found
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE testapp_slugged REPLICA IDENTITY FULL")
    try:
        found = [m for m in run_checks(databases=["default"], tags=["database"]) if m.id == "cachelayer.W021"]
        assert not [m for m in found if "testapp_slugged " in m.msg], found
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE testapp_slugged REPLICA IDENTITY DEFAULT")
