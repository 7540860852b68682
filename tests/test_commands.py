"""The cache_* management commands, on every cache of the matrix."""

import json
import re
import time
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db import connection

from cachelayer.engine import versions
from cachelayer.engine.registry import registry
from cachelayer.models import CachePolicy, Container
from cachelayer.tasks import warming
from demo_project.demo.models import Country
from tests.helpers import manage

COMMANDS = [
    "cache_warm",
    "cache_flush",
    "cache_stats",
    "cache_inspect",
    "cache_get",
    "cache_set",
    "cache_delete",
    "cache_bench",
]


@pytest.fixture
def countries(backend):
    call_command("loaddata", "demo", verbosity=0)
    return Container.objects.get(name="demo_country")


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def _use_policy(container, **policies):
    container.policy = CachePolicy.objects.create(policy_name="p", **policies)
    container.save()


def test_warm_fills_in_chunks_and_can_run_again(countries, django_assert_num_queries):
    assert "demo_country: 10 rows warmed, 0 already cached, 0 skipped (too large)" in run(
        "cache_warm", "demo_country", chunk_size=3
    )
    with django_assert_num_queries(0):
        assert Country.cached.get("Brazil").area_sq_km == 8515767
    assert "0 rows warmed, 10 already cached" in run("cache_warm", "--all")


def test_warm_stores_the_versions_read_before_the_database_read(countries, on_server_database):
    """A write that commits right after the warm's row query is never hidden by the warm's fill.

    (MariaDB and PostgreSQL: SQLite steps through rows lazily, so the write would land inside the read.)
    """
    definition = registry.get("demo_country")
    written = []

    def write_after_the_row_query(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "population" in sql and "SELECT" in sql and not written:
            written.append(sql)
            Country.objects.filter(country="Japan").update(population=1)  # commits, then invalidates
        return result

    with connection.execute_wrapper(write_after_the_row_query):
        result = warming.warm(definition, chunk_size=100)
    assert written and result.warmed == 10
    assert Country.cached.get("Japan").population == 1


def test_warm_skips_payloads_over_the_item_size_limit(countries):
    Country.cached.get_many(["Canada"])  # this process has seen the current configuration
    definition = registry.get("demo_country")
    states = versions.fetch(definition, ["Japan", "Brazil"]).states
    rows = {"Japan": ("x" * 2000,), "Brazil": ("y",)}
    assert versions.fill(definition, list(states.values()), rows, max_size=1000) == ["Japan"]


def test_warm_refuses_a_container_that_reads_no_cache(countries):
    _use_policy(countries, get_policy="db_only")
    with pytest.raises(CommandError, match="get_policy is db_only"):
        run("cache_warm", "demo_country")
    assert "demo_country: not warmed (get_policy is db_only" in run("cache_warm", "--all")


def test_flush_outdates_every_key_and_keeps_rows(countries, django_assert_num_queries):
    Country.cached.get("Japan")
    assert "demo_country: every cached key outdated" in run("cache_flush", "demo_country")
    with django_assert_num_queries(1):
        Country.cached.get("Japan")
    assert Country.objects.count() == 10
    last_flush = json.loads(run("cache_stats", "--json"))["containers"]["demo_country"]["last_flush"]
    assert abs(last_flush - time.time()) < 60


def test_truncate_needs_a_policy_that_allows_it(countries):
    User.objects.create_superuser("operator")
    with pytest.raises(CommandError, match="flush_policy is cache_only; truncating needs db_only or caching"):
        run("cache_flush", "demo_country", truncate=True, user="operator", interactive=False)
    _use_policy(countries, flush_policy="caching")
    Country.cached.get("Japan")
    assert "10 rows deleted from demo_country" in run(
        "cache_flush", "demo_country", truncate=True, user="operator", interactive=False
    )
    assert not Country.objects.exists()
    with pytest.raises(Country.DoesNotExist):
        Country.cached.get("Japan")


def test_truncate_needs_a_user_with_the_models_delete_permission(countries):
    _use_policy(countries, flush_policy="caching")
    with pytest.raises(CommandError, match="name the user it runs for with --user"):
        run("cache_flush", "demo_country", truncate=True, interactive=False)
    with pytest.raises(CommandError, match="--user 'ghost': no such user"):
        run("cache_flush", "demo_country", truncate=True, user="ghost", interactive=False)
    staff = User.objects.create_user("staff", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_container", "flush_container"]))
    with pytest.raises(CommandError, match="needs the permission demo.delete_country, which 'staff' does not have"):
        run("cache_flush", "demo_country", truncate=True, user="staff", interactive=False)
    assert Country.objects.count() == 10
    staff.user_permissions.add(Permission.objects.get(codename="delete_country"))
    assert "10 rows deleted" in run("cache_flush", "demo_country", truncate=True, user="staff", interactive=False)


def test_get_set_delete_honour_containers_and_policies(countries, capsys):
    assert run("cache_set", "@@demo_country.Atlantis", "1|2|X") == "Atlantis: stored\n"
    assert Country.objects.get(country="Atlantis").population == 1
    assert run("cache_get", "Atlantis", "@@demo_country.Canada", container="demo_country").splitlines() == [
        "1|2|X",
        "40100000|9984670|R",
    ]
    with pytest.raises(CommandError, match="1 of 2 key"):
        run("cache_get", "Atlantis", "Nowhere", container="demo_country")
    with pytest.raises(CommandError, match="not stored"):
        run("cache_set", "@@demo_country.Atlantis", "3|4|Y", mode="add")
    assert run("cache_delete", "@@demo_country.Atlantis") == "Atlantis: deleted\n"
    assert not Country.objects.filter(country="Atlantis").exists()
    _use_policy(countries, get_policy="disabled")
    with pytest.raises(CommandError, match="'get' is disabled on container 'demo_country'"):
        run("cache_get", "@@demo_country.Canada")


def test_a_key_without_a_container_needs_one_when_several_exist(countries):
    """Guessing the first container by name would read (or write) another table."""
    assert "default" not in registry.by_name and len(registry.by_name) > 1
    for command, args in (("cache_get", ["Canada"]), ("cache_delete", ["Canada"]), ("cache_set", ["Oz", "1|2|X"])):
        with pytest.raises(CommandError, match="none is named 'default': give --container NAME or write @@NAME.KEY"):
            run(command, *args)
    assert Country.objects.filter(country="Canada").exists() and not Country.objects.filter(country="Oz").exists()
    Container.objects.exclude(name="demo_country").update(enabled=False)
    assert run("cache_get", "Canada") == "40100000|9984670|R\n"  # the only enabled one


def test_cache_follow_without_its_extra_names_the_extra(monkeypatch, db):
    import sys

    from django.db import connections

    monkeypatch.setitem(sys.modules, "pymysqlreplication", None)  # as if mysql-replication were not installed
    mysql = next((alias for alias in connections if connections[alias].vendor == "mysql"), "default")
    with pytest.raises(
        CommandError, match=r"needs the binlog extra \(mysql-replication\): pip install 'cachelayer\[binlog\]'"
    ):
        run("cache_follow", "--status", "--database", mysql)
    if connections["default"].vendor == "postgresql":  # the WAL follower does without it
        with pytest.raises(CommandError, match="no follower has stored a position"):
            run("cache_follow", "--status")


def test_warming_a_locmem_cache_from_the_command_line_warns(countries, backend):
    err = StringIO()
    call_command("cache_warm", "demo_country", stdout=StringIO(), stderr=err)
    assert ("is a LocMemCache, in this command's own memory" in err.getvalue()) == (backend == "locmem")


def test_an_index_container_counts_its_progress_in_lists(backend, django_assert_num_queries):
    """The bar's total is what the warm and the inspection advance by: an index's lists, not its rows."""
    from tests.testapp.models import Comment, Post

    posts = [Post.objects.create(title=t) for t in "abc"]
    for post, comments in zip(posts, (3, 1, 2)):
        for _ in range(comments):
            Comment.objects.create(post=post)
    definition = registry.get("testapp_comment__by_post")
    assert warming.key_count(definition) == 3 and warming.row_count(definition) == 6
    advanced = []
    warming.warm(definition, chunk_size=2, progress=advanced.append)
    assert sum(advanced) == 3


def test_set_reads_a_file_and_the_delimiter_option(countries, tmp_path):
    from cachelayer.models import ConfigOption

    ConfigOption.objects.create(name="table_map_delimiter", value=":")
    (tmp_path / "value").write_text("7|8|Z", encoding="utf-8")
    run("cache_set", "@@demo_country:Oz", file=str(tmp_path / "value"))
    assert run("cache_get", "@@demo_country:Oz") == "7|8|Z\n"


def test_stats_shows_counters_and_server_stats(countries, backend):
    Country.cached.get("Japan")
    Country.cached.get("Japan")
    text = run("cache_stats")
    assert re.search(r"^demo_country\s+1\s+1\s+1\s+0\s+\d+\s+0\s+0\s+0\s+0\s+50\.0%", text, re.M)
    assert {"locmem": "curr_items", "memcached": "curr_items", "redis": "redis_version"}[backend] in text
    document = json.loads(run("cache_stats", "--json"))
    assert document["containers"]["demo_country"]["hit_ratio"] == 0.5
    assert document["servers"][backend]


def test_bench_reports_throughput_hits_and_latency(countries):
    clients = 1 if connection.vendor == "sqlite" else 2  # SQLite refuses concurrent write transactions
    text = run("cache_bench", container="demo_country", test="mixed", concurrency=clients, seconds=2.0, keys=5, ops=300)
    assert f"container demo_country, test mixed, {clients} clients, 5 keys" in text
    assert re.search(r"300 ops in [\d.]+ s: \d+ ops/s \(\d+ gets, \d+ sets\)", text)
    assert re.search(r"cache hit ratio \d+\.\d%", text) and re.search(r"p50 [\d.]+\s+p95 [\d.]+\s+p99", text)
    assert Country.objects.get(country="Japan").population == 125700000  # sets wrote the same values back


@pytest.mark.slow  # one manage.py process per bad command line
@pytest.mark.one_database  # argument parsing and one-line errors
def test_bad_arguments_and_unknown_containers_fail_with_one_line(transactional_db):
    """Once (not per cache): each command line is a new process."""
    call_command("loaddata", "demo", verbosity=0)
    for command in COMMANDS:
        assert manage(command, "--help").stdout.count(command) >= 1
    usage = manage("cache_bench", "--concurrency", "0")
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and "--concurrency" in usage.stderr
    for arguments in (("cache_warm", "--all", "--chunk-size", "0"), ("cache_inspect", "--all", "--sample", "-3")):
        bad = manage(*arguments)  # a bad argument is a usage error: 2, as the README says
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and arguments[2] in bad.stderr, bad.stderr
    unknown = manage("cache_warm", "nosuch")
    assert unknown.returncode == 1 and unknown.stderr == "CommandError: container 'nosuch' does not exist\n"
    _use_policy(Container.objects.get(name="demo_country"), flush_policy="db_only")
    User.objects.create_superuser("operator")
    declined = manage("cache_flush", "demo_country", "--truncate", "--user", "operator", stdin="no\n")
    assert "DELETE every row of demo_country (10 rows, container demo_country)" in declined.stdout
    assert declined.returncode == 1 and declined.stderr == "CommandError: flush cancelled\n"
    assert Country.objects.count() == 10
