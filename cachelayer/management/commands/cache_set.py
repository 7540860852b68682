"""cache_set: store one value by key, like libmemcached's memcp."""

from pathlib import Path

from django.core.management.base import CommandError

from cachelayer.api import repository
from cachelayer.cli import ContainerCommand, add_key_arguments, split_keys

MODES = ("set", "add", "replace")  # memcached's storage verbs


class Command(ContainerCommand):
    help = (
        "Store VALUE (or the contents of --file) under KEY through the container's set policy "
        "(like memcp): on a caching or db_only container this upserts a row. Multi-column values "
        "are joined by the separator option. Exits 1 when add/replace did not store."
    )

    def add_arguments(self, parser):
        add_key_arguments(parser, many=False)
        parser.add_argument("value", nargs="?", metavar="VALUE", help="the value (or use --file)")
        parser.add_argument("--file", metavar="F", help="read the value from this UTF-8 file")
        parser.add_argument("--mode", choices=MODES, default="set", help="set (upsert, default), add, replace")
        parser.add_argument("--flags", type=int, default=0, help="memcached flags (needs a flags_column)")
        parser.add_argument("--exptime", type=int, default=0, help="memcached exptime (needs an expire_time_column)")

    def handle(self, *args, key, value, file, mode, flags, exptime, container, verbosity, **options):
        if (value is None) == (file is None):
            raise CommandError("give a VALUE or --file, not both and not neither")
        if file is not None:
            try:
                value = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {file}: {exc}") from exc
        [(name, key)] = split_keys([key], container)
        if not getattr(repository(name), mode)(key, value, flags=flags, exptime=exptime):
            raise CommandError(f"{key}: not stored ({mode})")
        if verbosity >= 1:
            self.stdout.write(f"{key}: stored")
