"""cache_monitor: measure, all the time, how fresh what the cache serves stays after writes."""

import time

from cachelayer.cli import ContainerCommand, bounded, selected_containers
from cachelayer.core import conf
from cachelayer.engine import stats
from cachelayer.tasks import monitoring


class Command(ContainerCommand):
    help = (
        "Run the continuous freshness monitor: read the writes sampled into each container's ring "
        "(MONITOR_SAMPLE_RATE of every delivered invalidation, this project's processes and cache_follow "
        "alike), compare each key with the database MONITOR_DELAYS seconds after its write, as the read "
        "path would serve it and without filling anything, and publish per container the share of "
        "consistent checks at each delay over the last MONITOR_WINDOW seconds (the admin's statistics, "
        "cache_stats, the Prometheus view, cache_health). At most MONITOR_QUERIES_PER_SECOND queries. "
        "Runs until interrupted, or for --duration seconds. Run one per project."
    )

    def add_arguments(self, parser):
        parser.add_argument("containers", nargs="*", metavar="CONTAINER", help="containers to monitor (default: all)")
        parser.add_argument(
            "--duration", type=bounded(float, 0), metavar="SECONDS", help="stop after this long (default: never)"
        )

    def handle(self, *args, containers, duration, verbosity, **options):
        names = [d.name for d in selected_containers(containers, not containers)]
        if not conf.get("MONITOR_SAMPLE_RATE"):
            self.stderr.write(
                "warning: MONITOR_SAMPLE_RATE is 0 in these settings: processes that share them publish no "
                "writes to check (set it to, say, 0.01 in every process that writes)"
            )
        monitor = monitoring.Monitor(names)
        try:
            monitor.run(duration)
        except KeyboardInterrupt:
            pass  # run() published on its way out
        if verbosity >= 1:
            for name in names:
                summary = monitor.windows[name].summary(time.time())
                self.stdout.write(f"{name}: {stats.display(stats.FRESHNESS, summary)}")
