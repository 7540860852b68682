"""The cache_serve management command's options."""

import argparse

import pytest
from django.core.management import CommandError

from cachelayer.management.commands.cache_serve import Command, size


@pytest.mark.parametrize("text, expected", [("1048576", 1048576), ("512k", 524288), ("2M", 2097152)])
def test_sizes_read_like_memcached(text, expected):
    assert size(text) == expected


@pytest.mark.parametrize("text", ["", "k", "-1", "0", "1g"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        size(text)


def test_defaults_listen_on_loopback():
    options = Command().create_parser("manage.py", "cache_serve").parse_args([])
    assert (options.host, options.port, options.batch_size, options.item_size_max) == ("127.0.0.1", 11211, 1, 2**20)


def test_connection_handling_defaults():
    options = Command().create_parser("manage.py", "cache_serve").parse_args([])
    assert (
        options.max_connections,
        options.max_peer_connections,
        options.idle_timeout,
        options.db_workers,
        options.commit_interval,
    ) == (1024, 256, 300.0, 4, 0.5)


@pytest.mark.parametrize("option", ["--db-workers", "--max-peer-connections", "--max-connections"])
def test_counts_below_one_are_refused(option):
    with pytest.raises(CommandError, match=f"argument {option}: the number must be at least 1"):
        Command().create_parser("manage.py", "cache_serve").parse_args([option, "0"])
