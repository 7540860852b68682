"""cache_delete: delete keys, like libmemcached's memrm."""

from django.core.management.base import CommandError

from cachelayer.api import repository
from cachelayer.cli import ContainerCommand, add_key_arguments, split_keys


class Command(ContainerCommand):
    help = (
        "Delete each KEY through its container's delete policy (like memrm): on a caching or "
        "db_only container this deletes the row. Exits 1 when a key was not found."
    )

    def add_arguments(self, parser):
        add_key_arguments(parser)

    def handle(self, *args, keys, container, verbosity, **options):
        missing = 0
        for name, key in split_keys(keys, container):
            if repository(name).delete(key):
                if verbosity >= 1:
                    self.stdout.write(f"{key}: deleted")
            else:
                missing += 1
                self.stderr.write(f"{key}: not found")
        if missing:
            raise CommandError(f"{missing} of {len(keys)} key(s) not found")
