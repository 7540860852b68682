"""cache_health: one verdict for monitoring, with the exit code as the answer."""

import json

from django.core.management.base import CommandError

from cachelayer.cli import ContainerCommand
from cachelayer.tasks import checkup


class Command(ContainerCommand):
    help = (
        "Check the database, every server of every cache containers use (a ping), the outbox and "
        "the binlog followers, and print one line per problem. Exits 0 healthy, 1 degraded (a pool "
        "server down, invalidations owed in the outbox, a follower stale or down), 2 down (the "
        "database, or every server of a cache, does not answer). --json prints the whole report."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as one JSON document")

    def handle(self, *args, verbosity, **options):
        document = checkup.report()
        if options["json"]:
            self.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str))
        else:
            self.stdout.write(document["status"])
            for problem in document["problems"]:
                self.stdout.write(f"  {problem}")
        code = checkup.EXIT_CODES[document["status"]]
        if code:
            raise CommandError(f"{document['status']}: {len(document['problems'])} problem(s)", returncode=code)
