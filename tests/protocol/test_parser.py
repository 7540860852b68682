"""The command-line parser and reply builders alone (pure: no server, no database)."""

import pytest

from cachelayer.protocol import parser
from cachelayer.protocol.parser import Command, ProtocolError, parse


@pytest.mark.parametrize(
    "line, command",
    [
        (b"set k 1 2 3\r\n", Command("set", keys=("k",), flags=1, exptime=2, length=3)),
        (b"set k 1 -1 3 noreply\r\n", Command("set", keys=("k",), flags=1, exptime=-1, length=3, noreply=True)),
        (b"set k 1 2 3 extra\n", Command("set", keys=("k",), flags=1, exptime=2, length=3)),  # memcached ignores it
        (b"cas k 0 0 1 99\r\n", Command("cas", keys=("k",), length=1, cas=99)),
        (b"gets a  b c\r\n", Command("gets", keys=("a", "b", "c"))),
        (b"delete k 0 noreply\r\n", Command("delete", keys=("k",), noreply=True)),
        (b"delete noreply\r\n", Command("delete", keys=("noreply",))),
        (b"incr k 18446744073709551615\r\n", Command("incr", keys=("k",), delta=2**64 - 1)),
        (b"touch k 10 noreply\r\n", Command("touch", keys=("k",), exptime=10, noreply=True)),
        (b"flush_all\r\n", Command("flush_all")),
        (b"flush_all 5 noreply\r\n", Command("flush_all", delay=5, noreply=True)),
        (b"verbosity noreply\r\n", Command("verbosity", noreply=True)),
        (b"stats containers\r\n", Command("stats", args=("containers",))),
        (b"version foo\r\n", Command("version", args=("foo",))),
        ("get @@aaa.kéy\r\n".encode(), Command("get", keys=("@@aaa.kéy",))),
    ],
)
def test_parse(line, command):
    assert parse(line) == command


@pytest.mark.parametrize(
    "line, reply",
    [
        (b"", parser.ERROR),
        (b"gat 0 k", parser.ERROR),
        (b"get", parser.ERROR),
        (b"verbosity", parser.ERROR),
        (b"incr k", parser.ERROR),
        (b"touch k 1 2 3", parser.ERROR),
        (b"set k 0 0 1 2 3", parser.ERROR),
        (b"get k\x01", parser.BAD_FORMAT),
        (b"get \xff", parser.BAD_FORMAT),
        (b"get " + b"k" * 251, parser.BAD_FORMAT),
        (b"cas k 0 0 1 -5", parser.BAD_FORMAT),
        (b"flush_all soon", parser.BAD_FORMAT),
        (b"decr k 1.5", parser.BAD_DELTA),
        (b"delete k 1", parser.BAD_DELETE),
    ],
)
def test_refused(line, reply):
    with pytest.raises(ProtocolError) as refused:
        parse(line)
    assert refused.value.reply == reply


def test_replies():
    assert parser.value("k", 3, b"ab") == b"VALUE k 3 2\r\nab\r\n"
    assert parser.value("k", 0, b"", cas=7) == b"VALUE k 0 0 7\r\n\r\n"
    assert parser.stats({"pid": 1}) == b"STAT pid 1\r\nEND\r\n"
    assert parser.server_error("two\r\nlines") == b"SERVER_ERROR two lines\r\n"
