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
