"""Run a slice of Django's own ORM test suite with cachelayer installed, twice.

    python scripts/django_suite.py [--junitxml=FILE] [--parallel=N] [--mode=M ...] [label ...]

First with nothing mapped ("installed"), then with a container over every key
of every model ("mapped"), so that cachelayer's receivers and write capture
run on every write Django's tests make. The tests come from the sdist of the
installed Django version (pip downloads it once into test-output/django-sdist/;
PyPI must be reachable the first time). Settings: tests/djangosuite/settings.py
(the database from CACHELAYER_DB). A failing test not listed in DIFFERS (with
its reason) is a cachelayer bug and fails the run. The counts go to a junit
file for scripts/test.sh.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import django

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "test-output" / "django-sdist"
# Django's ORM tests, chosen by what they write (about 2,000 tests, two minutes on SQLite).
LABELS = [
    "basic",
    "queries",
    "update",
    "delete",
    "delete_regress",
    "bulk_create",
    "update_only_fields",
    "get_or_create",
    "force_insert_update",
    "save_delete_hooks",
    "signals",
    "model_inheritance",
    "model_inheritance_regress",
    "proxy_models",
    "many_to_many",
    "m2m_through",
    "m2m_regress",
    "many_to_one",
    "one_to_one",
    "custom_pk",
    "composite_pk",
    "transactions",
    "select_for_update",
    "fixtures",
    "generic_relations",
    "model_fields",
]
# Tests that pass in plain Django and fail with cachelayer, by mode, each for a documented
# reason (README, "Django's own test suite"). An id ending in "." names a whole class.
_RECEIVERS = "asserts that no post_save receiver is connected: a mapped model's saves are heard through post_save"
_SLOW_DELETE = "a mapped model's rows are loaded before they are deleted (Django's slow delete path)"
_CHILDREN = "a SET_NULL/SET_DEFAULT cascade reads the children's pks before it updates them"
_OLD_KEY = "a save() reads the old key of a container not keyed by the primary key"
_COLLATION = "MariaDB: the first write to a mapped char key asks its column's collation (once per column and process)"
_DJANGO_BUG = "MariaDB: Django 5.2's slow delete path crashes on a nullable composite foreign object (quote_name(None))"
DIFFERS = {
    "installed": {},
    "mapped": {
        "signals.tests.SignalTests.test_disconnect_in_dispatch": _RECEIVERS,
        "delete.tests.FastDeleteTests.": _SLOW_DELETE,
        "delete.tests.DeletionTests.test_only_referenced_fields_selected": _SLOW_DELETE,
        "delete_regress.tests.Ticket19102Tests.": _SLOW_DELETE,
        "delete_regress.tests.DeleteTests.test_self_reference_with_through_m2m_at_second_level": _SLOW_DELETE,
        "delete_regress.tests.SetQueryCountTests.test_set_querycount": _CHILDREN,
        "composite_pk.test_update.CompositePKUpdateTests.test_save_user": _OLD_KEY,
        "composite_pk.test_update.CompositePKUpdateTests.test_update_fields_deferred": _OLD_KEY,
        "model_inheritance.tests.ModelInheritanceTests.test_create_diamond_mti_default_pk": _OLD_KEY,
        "force_insert_update.tests.ForceInsertInheritanceTests.test_force_insert_diamond_mti": _OLD_KEY,
        "model_inheritance.tests.ModelInheritanceTests.test_create_child_no_update": _COLLATION,
        "composite_pk.test_delete.CompositePKDeleteTests.test_delete_tenant_by_pk": _DJANGO_BUG,
        "composite_pk.test_delete.CompositePKDeleteTests.test_delete_user_by_pk": _DJANGO_BUG,
    },
}
# Reasons that hold on one database only (its CACHELAYER_DB scheme): elsewhere the test must pass.
ONLY_ON = {_COLLATION: "mysql", _DJANGO_BUG: "mysql"}
FAILED_TEST = re.compile(r"^(?:FAIL|ERROR): \S+ \(([\w.]+)\)", re.MULTILINE)
SUMMARY = re.compile(r"^Ran (\d+) tests? in ([\d.]+)s$", re.MULTILINE)
OUTCOME = re.compile(r"^(OK|FAILED)(?: \((.*)\))?$", re.MULTILINE)


def django_tests() -> Path:
    """Return the tests/ directory of the installed Django's sdist, downloading it once."""
    version = django.__version__
    tests = CACHE / f"django-{version}" / "tests"
    if (tests / "runtests.py").exists():
        return tests
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"django-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                "--quiet",
                "--dest",
                str(CACHE),
                f"django=={version}",
            ],
            check=True,
        )
    with tarfile.open(archive) as sdist:
        members = [m for m in sdist.getmembers() if m.name.startswith(f"django-{version}/tests/")]
        sdist.extractall(CACHE, members=members, filter="data")
    return tests


def counts(output: str) -> tuple[int, int, int]:
    """Return (tests, failed, skipped) from unittest's closing lines; raise ValueError without them."""
    ran, outcome = SUMMARY.findall(output), OUTCOME.findall(output)
    if not ran or not outcome:
        raise ValueError("no unittest summary in the output")
    details = dict(part.split("=") for part in outcome[-1][1].split(", ") if "=" in part)
    failed = sum(int(details.get(kind, 0)) for kind in ("failures", "errors", "unexpected successes"))
    return int(ran[-1][0]), failed, int(details.get("skipped", 0))


def listed_for(mode: str, vendor: str) -> dict[str, str]:
    """Return the differences DIFFERS lists for ``mode`` on the database ``vendor``."""
    return {test: reason for test, reason in DIFFERS[mode].items() if ONLY_ON.get(reason, vendor) == vendor}


def unexpected(mode: str, output: str) -> list[str]:
    """Return the failed tests of ``output`` that DIFFERS does not list for ``mode`` on this database."""
    listed = listed_for(mode, os.environ.get("CACHELAYER_DB", "sqlite").partition("://")[0])
    return [
        test
        for test in dict.fromkeys(FAILED_TEST.findall(output))
        if test not in listed and not any(name.endswith(".") and test.startswith(name) for name in listed)
    ]


def write_junit(path: str, tests: int, failed: int, skipped: int) -> None:
    suite = ET.Element("testsuite", name="django", tests=str(tests), failures=str(failed), errors="0")
    suite.set("skipped", str(skipped))
    ET.ElementTree(suite).write(path)


def run(mode: str, tests: Path, parallel: str, labels: list[str]) -> tuple[int, int, int]:
    """Run the slice in ``mode``; return (tests, failed, skipped): failed counts the unlisted
    failures, skipped the skipped tests and the listed differences."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env["CACHELAYER_DJANGO_SUITE"] = mode
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [
        sys.executable,
        "-u",
        "runtests.py",
        "--settings=tests.djangosuite.settings",
        "--noinput",
        f"--parallel={parallel}",
        *labels,
    ]
    print(f"== Django {django.__version__}, cachelayer {mode}: {' '.join(command[2:])}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, cwd=tests, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(done.stdout)
    try:
        ran, _, skipped = counts(done.stdout)
    except ValueError as exc:
        print(f"!! {mode}: {exc} (exit code {done.returncode})")
        return 0, 1, 0
    bugs = unexpected(mode, done.stdout)
    listed = [test for test in dict.fromkeys(FAILED_TEST.findall(done.stdout)) if test not in bugs]
    print(f"== {mode}: {ran} tests in {time.monotonic() - started:.0f} s; listed differences (counted as skipped):")
    for test in listed:
        print(f"   {test}")
    for test in bugs:
        print(f"!! {mode}: {test} fails only with cachelayer: a cachelayer bug")
    return ran, len(bugs), skipped + len(listed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junitxml")
    parser.add_argument("--parallel", default=os.environ.get("CACHELAYER_DJANGO_PARALLEL", "1"))
    parser.add_argument("--mode", action="append", choices=sorted(DIFFERS))
    parser.add_argument("labels", nargs="*")
    args = parser.parse_args()
    tests = django_tests()
    totals = [0, 0, 0]
    for mode in args.mode or ["installed", "mapped"]:
        totals = [a + b for a, b in zip(totals, run(mode, tests, args.parallel, args.labels or LABELS))]
    if args.junitxml:
        write_junit(args.junitxml, *totals)
    print(f"== Django's suite: {totals[0]} tests, {totals[1]} failed only with cachelayer, {totals[2]} skipped")
    return 1 if totals[1] or not totals[0] else 0


if __name__ == "__main__":
    sys.exit(main())
