"""The benchmark suite runs, and what it counts holds: a smoke run of
``python -m bench.suite --quick`` (no timings are asserted, only round trips,
SQL queries and the stampede's query count, which do not depend on speed).
The peers are not installed in the test venv, so they are left out here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow  # runs bench/ in a process of its own

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    database = settings.DATABASES["default"]
    if not database["ENGINE"].endswith("mysql"):
        pytest.skip("MariaDB only: the benchmarks run on MariaDB")
    url = (
        f"mysql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/"
        f"test_{database['NAME']}_bench"
    )
    output = tmp_path_factory.mktemp("bench")
    subprocess.run(
        [sys.executable, "-m", "bench.suite", "--quick", "--backends", "memcached,pool", "--output", str(output)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "PYTHONPATH": str(ROOT), "CACHELAYER_DB": url},
        check=True,
        timeout=600,
    )
    return json.loads((output / "results.json").read_text()), (output / "results.md").read_text()


def test_a_hit_is_one_round_trip_and_no_sql(results):
    counts = results[0]["backends"]["memcached"]["counts"]
    for workload in ("pk_hit", "unique_hit", "get_many", "post_comments"):
        assert counts[workload]["cachelayer"] == {"round_trips": 1, "queries": 0, "waits": 1}, workload
    assert counts["post_comments"]["ORM"] == {"round_trips": 0, "queries": 1, "waits": 0}
    # the instruments themselves: the ORM is all SQL, the raw cache one request
    assert counts["pk_hit"]["ORM"] == {"round_trips": 0, "queries": 1, "waits": 0}
    assert counts["get_many"]["raw cache.get"] == {"round_trips": 1, "queries": 0, "waits": 1}


def test_in_a_pool_a_key_is_one_round_trip_and_many_keys_one_per_server_sent_at_once(results):
    counts = results[0]["backends"]["pool"]["counts"]
    assert counts["pk_hit"]["cachelayer"] == {"round_trips": 1, "queries": 0, "waits": 1}
    # one request per server, all sent before any answer is read: one wait
    assert counts["get_many"]["cachelayer"] == {"round_trips": 3, "queries": 0, "waits": 1}


def test_a_stampede_costs_one_query(results):
    stampede = results[0]["backends"]["memcached"]["stampede"]["cachelayer"]
    assert (stampede["max_queries"], stampede["errors"]) == (1, 0)


def test_the_mix_hits_and_the_report_shows_every_workload(results):
    mix = results[0]["backends"]["memcached"]["mix"]
    assert mix["cachelayer"]["hit_ratio"] > 0.3 and mix["ORM"]["hit_ratio"] == 0.0
    report = results[1]
    for label in (
        "pk hit",
        "unique-column hit",
        "`get_many` of 100 keys",
        "the 20 comments of a post",
        "stampede",
        "95/5 Zipf mix",
        "target",
    ):
        assert label in report
