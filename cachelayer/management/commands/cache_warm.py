"""cache_warm: load containers' rows into the cache ahead of the reads."""

from django.core.management.base import CommandError

from cachelayer.cli import ContainerCommand, add_container_arguments, bounded, progress_bar, selected_containers
from cachelayer.tasks import warming


class Command(ContainerCommand):
    help = (
        "Load every row of the named containers (or --all) into the cache, in key order, in chunks "
        "with one multi-get and one multi-set each. A fill stores the versions read before the "
        "database read, so warming never hides a concurrent write; rows already cached are skipped, "
        "so an interrupted warm can simply run again. Reports rows warmed, skipped and the time."
    )

    def add_arguments(self, parser):
        add_container_arguments(parser, "warm")
        parser.add_argument(
            "--chunk-size",
            type=bounded(int, 1),
            default=warming.CHUNK_SIZE,
            help=f"keys per round trip (default {warming.CHUNK_SIZE})",
        )

    def handle(self, *args, containers, all, chunk_size, verbosity, **options):
        for definition in selected_containers(containers, all):
            refusal = warming.refusal(definition)
            if refusal and not all:
                raise CommandError(refusal)
            if refusal:
                if verbosity >= 1:
                    self.stdout.write(f"{definition.name}: not warmed ({refusal.split(': ', 1)[1]})")
                continue
            self._warm(definition, chunk_size, verbosity)

    def _warm(self, definition, chunk_size, verbosity):
        if definition.adapter.process_local:
            self.stderr.write(
                f"{definition.name}: warning: cache {definition.cache_alias!r} is a LocMemCache, in this "
                "command's own memory: what it warms is gone when the command exits (warm from the admin, "
                "or use memcached or Redis)"
            )
        bar = progress_bar(definition, warming.key_count(definition), verbosity)
        chunks = []  # rows per finished chunk (the bar counts nothing when disabled)

        def progress(rows):
            chunks.append(rows)
            bar.update(rows)

        try:
            with bar:
                result = warming.warm(definition, chunk_size, progress=progress)
        except KeyboardInterrupt:
            raise CommandError(
                f"{definition.name}: interrupted after {sum(chunks)} rows; run cache_warm again to finish",
                returncode=130,
            ) from None
        if verbosity >= 1:
            rate = result.rows / result.seconds if result.seconds else 0
            self.stdout.write(
                f"{result.container}: {result.warmed} rows warmed, {result.cached} already cached, "
                f"{result.too_large} skipped (too large) in {result.seconds:.2f} s ({rate:.0f} rows/s)"
            )
