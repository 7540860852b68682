"""cache_flush: outdate containers' cached keys (O(1)), or truncate them."""

from django.core.management.base import CommandError

from cachelayer.cli import ContainerCommand, add_container_arguments, selected_containers
from cachelayer.tasks import flushing, warming


class Command(ContainerCommand):
    help = (
        "Outdate every cached key of the named containers (or --all) by bumping their generation: "
        "O(1), rows untouched. With --truncate, also DELETE every row of each container's table; "
        "allowed only when its flush_policy is db_only or caching, and asked for confirmation "
        "unless --noinput (like Django's flush)."
    )

    def add_arguments(self, parser):
        add_container_arguments(parser, "flush")
        parser.add_argument("--truncate", action="store_true", help="also delete every row (needs a db_only/caching flush_policy)")
        parser.add_argument(
            "--noinput", "--no-input", action="store_false", dest="interactive", help="do not ask for confirmation"
        )

    def handle(self, *args, containers, all, truncate, interactive, verbosity, **options):
        definitions = selected_containers(containers, all)
        if truncate:
            for definition in definitions:
                flushing.check_truncate(definition)
        if truncate and interactive and not self._confirmed(definitions):
            raise CommandError("flush cancelled")
        for definition in definitions:
            deleted = flushing.flush(definition, truncate)
            if verbosity >= 1:
                what = f"{deleted} rows deleted from {definition.model._meta.db_table}, " if truncate else ""
                self.stdout.write(f"{definition.name}: {what}every cached key outdated")

    def _confirmed(self, definitions) -> bool:
        tables = ", ".join(
            f"{d.model._meta.db_table} ({warming.row_count(d)} rows, container {d.name})" for d in definitions
        )
        answer = input(
            f"You have requested to DELETE every row of {tables}.\n"
            "This cannot be undone. Type 'yes' to continue, or 'no' to cancel: "
        )
        return answer == "yes"
