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
