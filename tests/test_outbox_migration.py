"""The outbox_coalesce migration keeps what an outbox of the old shape owed:
each old row (any number of keys and shared keys) becomes one row per
(cache, server, counter key), duplicates merged."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from cachelayer.models import OutboxEntry


def _nodes():
    executor = MigrationExecutor(connection)
    (name,) = [
        key for key in executor.loader.graph.nodes if key[0] == "cachelayer" and key[1].endswith("_outbox_coalesce")
    ]
    before = [dep for dep in executor.loader.graph.node_map[name].parents if dep.key[0] == "cachelayer"]
    return before[0].key, executor.loader.graph.leaf_nodes("cachelayer")


@pytest.mark.django_db(transaction=True)
def test_old_outbox_rows_are_split_and_merged():
    before, leaves = _nodes()
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        Old = executor.loader.project_state([before]).apps.get_model("cachelayer", "OutboxEntry")
        Old.objects.create(cache_alias="a", container="c", groups=[["7", ["v7"], ["d7"]], ["8", ["v8"], ["d8"]]])
        Old.objects.create(cache_alias="a", container="c", groups=[["7", ["v7"], ["d7"]]], shared=["g"], servers=["s1"])
        Old.objects.create(cache_alias="a", container="", shared=["cfg"])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)
    rows = sorted(OutboxEntry.objects.values_list("key", "server", "container", "route", "counters", "payloads"))
    assert rows == [
        ("cfg", "", "", None, ["cfg"], []),
        ("g", "s1", "c", None, ["g"], []),
        ("v7", "", "c", "7", ["v7"], ["d7"]),
        ("v8", "", "c", "8", ["v8"], ["d8"]),
    ]
