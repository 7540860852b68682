"""cache_inspect: report, per container, how much of what the cache would serve is stale."""

import json

from django.core.management.base import CommandError

from cachelayer.cli import ContainerCommand, add_container_arguments, bounded, progress_bar, selected_containers
from cachelayer.exceptions import CachelayerError
from cachelayer.tasks import inspection, warming


class Command(ContainerCommand):
    help = (
        "Compare what the cache would serve for the named containers (or --all) with their database "
        "rows, read as the read path reads them and without filling anything: every row in key order, "
        "or --sample N rows at random. Reports per container the rows checked, the keys cached "
        "(rows and negative entries), the stale ones (a cached row that differs from the database or "
        "whose row is gone), the missing-but-present ones (a cached 'absent' whose row exists), and the "
        "consistency 1 - (stale + missing-but-present) / cached as a percentage (100% when nothing is "
        "stale). A key counts only when a second look a moment later confirms it, so writes in flight "
        "are not reported. Containers whose get_policy is not caching are skipped. Exits 1 when "
        "anything is stale or a cache cannot be read."
    )

    def add_arguments(self, parser):
        add_container_arguments(parser, "inspect")
        parser.add_argument(
            "--sample", type=bounded(int, 1), metavar="N", help="check N rows chosen at random instead of all rows"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON document")

    def handle(self, *args, containers, all, sample, verbosity, **options):
        reports = {}
        for definition in selected_containers(containers, all):
            try:
                reports[definition.name] = self._inspect(definition, sample, verbosity)
            except CachelayerError as exc:
                reports[definition.name] = {"container": definition.name, "error": str(exc)}
        errors = [name for name, report in reports.items() if "error" in report]
        stale = [name for name, report in reports.items() if "error" not in report and not report["ok"]]
        if options["json"]:
            self.stdout.write(
                json.dumps({"containers": reports, "ok": not (errors or stale)}, indent=2, sort_keys=True)
            )
        elif verbosity >= 1:
            for report in reports.values():
                self.stdout.write(_text(report))
        if errors or stale:
            found = [
                f"{what} in {', '.join(names)}"
                for what, names in (("stale entries", stale), ("errors", errors))
                if names
            ]
            raise CommandError("; ".join(found), returncode=1)

    def _inspect(self, definition, sample, verbosity) -> dict:
        total = warming.key_count(definition) if sample is None else sample
        try:
            with progress_bar(definition, total, verbosity) as bar:
                result = inspection.inspect(definition, sample, progress=bar.update)
        except KeyboardInterrupt:
            raise CommandError(f"{definition.name}: inspection interrupted", returncode=130) from None
        return result.as_dict()


def _text(report: dict) -> str:
    name = report["container"]
    if "error" in report:
        return f"{name}: error: {report['error']}"
    if report["skipped"]:
        return f"{name}: skipped ({report['skipped']})"
    lines = [
        f"{name}: {report['checked']} rows checked ({report['scope']}), {report['cached']} cached, "
        f"{report['stale']} stale, {report['missing_but_present']} missing-but-present: "
        f"consistency {report['nines']} ({report['seconds']:.2f} s)"
    ]
    for kind, title in (("stale_keys", "stale"), ("missing_but_present_keys", "missing-but-present")):
        if report[kind]:
            lines.append(f"  {title}: {', '.join(report[kind])}")
    return "\n".join(lines)
