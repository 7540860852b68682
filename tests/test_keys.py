"""Multi-column user keys: joined parts come back apart, and no two rows share a key."""

import itertools

import pytest

from cachelayer.core.keys import join_parts, split_parts

PIECES = ["", "a", "|", "\\", "/", ":", "-", "x\\|y", "::", "a-"]


@pytest.mark.parametrize("separator", ["|", "-", "::", "aa", "|a|", "\\", "\\|", "/"])
def test_parts_round_trip_and_keys_are_distinct(separator):
    seen = {}
    for parts in itertools.product(PIECES, repeat=2):
        key = join_parts(list(parts), separator)
        assert split_parts(key, separator) == list(parts)
        assert seen.setdefault(key, parts) == parts, f"{parts} and {seen[key]} share the key {key!r}"


def test_parts_without_separator_or_escape_are_joined_as_they_are():
    assert join_parts(["a", "1"], "|") == "a|1"
    assert join_parts(["a|b", "1"], "|") == "a\\|b|1"
    assert join_parts(["a\\", "1"], "|") == "a\\\\|1"


@pytest.mark.parametrize("key", ["a\\b|1", "a|1\\"])
def test_a_key_no_parts_join_to_is_refused(key):
    assert split_parts(key, "|") is None
