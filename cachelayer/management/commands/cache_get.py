"""cache_get: print values by key, like libmemcached's memcat."""

from django.core.management.base import CommandError

from cachelayer.api import repository
from cachelayer.cli import ContainerCommand, add_key_arguments, split_keys


class Command(ContainerCommand):
    help = (
        "Print the value of each KEY, one per line, read through its container with the container's "
        "get policy (like memcat). A KEY may name its container as @@CONTAINER.KEY. "
        "Exits 1 when a key is not found."
    )

    def add_arguments(self, parser):
        add_key_arguments(parser)

    def handle(self, *args, keys, container, verbosity, **options):
        missing = []
        for name, key in split_keys(keys, container):
            item = repository(name).get_item(key)
            if item is None:
                missing.append(key)
                self.stderr.write(f"{key}: not found")
            elif verbosity >= 2:
                self.stdout.write(f"{key} (flags {item.flags}, cas {item.cas}): {item.value}")
            else:
                self.stdout.write(item.value)
        if missing:
            raise CommandError(f"{len(missing)} of {len(keys)} key(s) not found")
