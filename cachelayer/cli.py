"""What the cache_* management commands share: containers, keys and errors.

Every command fails with one line and a non-zero exit code: 2 for bad
arguments, 1 for anything else (unknown container, disabled operation, a
key not found, a database or cache that cannot be reached). ``@@name.key`` picks the container of one key, as in the
InnoDB memcached plugin; ``.`` is the ``table_map_delimiter`` config option.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, router
from tqdm import tqdm

from cachelayer.core.keys import CONTAINER_MARK, split_container_key
from cachelayer.engine import database
from cachelayer.engine.definitions import Definition
from cachelayer.engine.registry import registry
from cachelayer.exceptions import CachelayerError, DatabaseUnavailable
from cachelayer.models import ConfigOption


class ContainerCommand(BaseCommand):
    """Base of the cache_* commands: cachelayer errors, and a database that cannot
    be reached, become one-line CommandErrors (exit status 1, no traceback)."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.error = lambda message: _fail(parser, message)  # type: ignore[method-assign]  # one line, not usage + message
        return parser

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CachelayerError as exc:
            raise CommandError(str(exc)) from exc
        except OperationalError as exc:  # a query of the command's own, not through the registry
            alias = router.db_for_read(ConfigOption)
            if database.unreachable(alias):
                raise CommandError(str(DatabaseUnavailable(alias, exc))) from exc
            raise


def _fail(parser, message: str):
    if not parser.called_from_command_line:
        raise CommandError(f"Error: {message}")
    sys.stderr.write(f"{parser.prog}: error: {message} (see --help)\n")
    sys.exit(2)


def bounded(kind, low, high=None):
    """Return an argparse type: ``kind`` from ``low`` to ``high`` (None: no upper bound).
    A value out of range is a usage error (exit status 2), named by argparse."""

    def parse(text):
        value = kind(text)
        if value < low or (high is not None and value > high):
            raise ValueError
        return value

    parse.__name__ = f"{kind.__name__} from {low} to {high}" if high is not None else f"{kind.__name__} >= {low}"
    return parse


def add_container_arguments(parser, verb: str) -> None:
    """Add ``CONTAINER ...`` and ``--all``."""
    parser.add_argument("containers", nargs="*", metavar="CONTAINER", help=f"container(s) to {verb}")
    parser.add_argument("--all", action="store_true", help=f"{verb} every enabled container")


def selected_containers(names: list[str], everything: bool) -> list[Definition]:
    """Return the definitions named on the command line (or all enabled ones)."""
    if everything and names:
        raise CommandError("name containers or give --all, not both")
    if everything:
        registry.load()
        return registry.definitions(enabled=True)
    if not names:
        raise CommandError("name at least one container, or give --all")
    registry.load()  # the command line sees the latest edits
    return [registry.get(name) for name in names]


def progress_bar(definition: Definition, total: int, verbosity: int) -> tqdm:
    """Return a progress bar of one container's keys (rows, or an index's lists), drawn only on a terminal."""
    return tqdm(
        total=total,
        desc=definition.name,
        unit="list" if definition.is_index else "row",
        disable=verbosity == 0 or not sys.stderr.isatty(),
        file=sys.stderr,  # the raw stream: Django's wrapper would end every redraw with a newline
    )


def add_key_arguments(parser, many: bool = True) -> None:
    """Add ``KEY ...`` (or one ``KEY``) and ``--container``."""
    if many:
        parser.add_argument("keys", nargs="+", metavar="KEY", help="a key, or @@CONTAINER.KEY")
    else:
        parser.add_argument("key", metavar="KEY", help="a key, or @@CONTAINER.KEY")
    parser.add_argument(
        "--container",
        metavar="NAME",
        help=(
            "container of the keys that do not name one with @@NAME.KEY (default: the container named "
            "'default', else the only enabled one; with several, this or @@NAME.KEY is required)"
        ),
    )


def table_map_delimiter() -> str:
    name = ConfigOption.Name.TABLE_MAP_DELIMITER
    return ConfigOption.objects.filter(name=name).values_list("value", flat=True).first() or ConfigOption.DEFAULTS[name]


def split_key(text: str, container: str | None, delimiter: str) -> tuple[str | None, str]:
    """Return ``(container name or None for the default, key)`` of a command-line key."""
    parsed = split_container_key(text, delimiter)
    if parsed is None:
        return container, text
    name, key = parsed
    if not (name and key):
        raise CommandError(f"{text!r}: write {CONTAINER_MARK}CONTAINER{delimiter}KEY")
    return name, key


def split_keys(texts: list[str], container: str | None) -> list[tuple[str, str]]:
    """Return ``(container name, key)`` of each command-line key."""
    delimiter = table_map_delimiter()
    parsed = [split_key(text, container, delimiter) for text in texts]
    if any(name is None for name, _ in parsed):
        default = command_line_default()
        parsed = [(name or default, key) for name, key in parsed]
    return parsed  # type: ignore[return-value]  # every None was replaced


def command_line_default() -> str:
    """Return the container of a key that names none: the one named ``default``,
    else the only enabled one. With several and none named so, guessing would
    read or write the wrong table: the command line must say which."""
    registry.load()
    if registry.find("default") is not None:
        return "default"
    enabled = [definition.name for definition in registry.definitions(enabled=True)]
    if len(enabled) == 1:
        return enabled[0]
    if not enabled:
        raise CommandError("no enabled container exists")
    shown = ", ".join(enabled[:5]) + (", ..." if len(enabled) > 5 else "")
    raise CommandError(
        f"{len(enabled)} containers exist and none is named 'default': give --container NAME "
        f"or write {CONTAINER_MARK}NAME.KEY ({shown})"
    )
