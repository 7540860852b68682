"""cache_flush: outdate containers' cached keys (O(1)), or truncate them."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.management.base import CommandError

from cachelayer.cli import ContainerCommand, add_container_arguments, selected_containers
from cachelayer.tasks import flushing, warming


class Command(ContainerCommand):
    help = (
        "Outdate every cached key of the named containers (or --all) by bumping their generation: "
        "O(1), rows untouched. With --truncate, also DELETE every row of each container's table; "
        "allowed only when its flush_policy is db_only or caching, for a --user holding the model's "
        "delete permission, and asked for confirmation unless --noinput (like Django's flush)."
    )

    def add_arguments(self, parser):
        add_container_arguments(parser, "flush")
        parser.add_argument(
            "--truncate", action="store_true", help="also delete every row (needs a db_only/caching flush_policy)"
        )
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help="with --truncate: the user it runs for, who must hold the model's delete permission",
        )
        parser.add_argument(
            "--noinput", "--no-input", action="store_false", dest="interactive", help="do not ask for confirmation"
        )

    def handle(self, *args, containers, all, truncate, user, interactive, verbosity, **options):
        definitions = selected_containers(containers, all)
        if truncate:
            user = self._user(user)
            for definition in definitions:
                flushing.check_truncate(definition)
                flushing.check_truncate_permission(definition, user)
        if truncate and interactive and not self._confirmed(definitions):
            raise CommandError("flush cancelled")
        for definition in definitions:
            deleted = flushing.flush(definition, truncate)
            if verbosity >= 1:
                what = f"{deleted} rows deleted from {definition.model._meta.db_table}, " if truncate else ""
                self.stdout.write(f"{definition.name}: {what}every cached key outdated")

    def _user(self, username):
        """Return the user --truncate runs for: deleting rows is the model's delete permission, as in the admin."""
        if not username:
            raise CommandError(
                "--truncate deletes rows: name the user it runs for with --user (who needs the model's delete permission)"
            )
        try:
            return get_user_model()._default_manager.get_by_natural_key(username)
        except ObjectDoesNotExist:
            raise CommandError(f"--user {username!r}: no such user") from None

    def _confirmed(self, definitions) -> bool:
        tables = ", ".join(
            f"{d.model._meta.db_table} ({warming.row_count(d)} rows, container {d.name})" for d in definitions
        )
        answer = input(
            f"You have requested to DELETE every row of {tables}.\n"
            "This cannot be undone. Type 'yes' to continue, or 'no' to cancel: "
        )
        return answer == "yes"
