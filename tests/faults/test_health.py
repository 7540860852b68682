"""cache_health: its exit code follows the real servers' states (a killed cache,
a killed server of a pool, invalidations owed in the outbox)."""

import json
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from cachelayer.models import OutboxEntry
from tests.faults.conftest import COOLDOWN
from tests.testapp.models import Item


def health() -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("cache_health", "--json", stdout=out, stderr=StringIO())
        code = 0
    except CommandError as exc:
        code = exc.returncode
    return code, json.loads(out.getvalue())


@pytest.mark.parametrize("kind", ["memcached", "redis"])
def test_a_killed_cache_is_down_and_a_restarted_one_healthy(kind, start_servers, use_servers):
    (server,) = start_servers(kind)
    use_servers([server])
    code, document = health()
    assert (code, document["status"], document["problems"]) == (0, "healthy", [])
    assert document["caches"]["faulty"]["servers"][server.location]["reachable"] is True
    server.kill()
    code, document = health()
    assert (code, document["status"]) == (2, "down"), document
    assert document["caches"]["faulty"]["servers"][server.location]["reachable"] is False
    assert "cache 'faulty': no server answers" in document["problems"][0]
    server.start()
    time.sleep(COOLDOWN)  # the calls above opened this process's breaker: the next probe comes after it
    code, document = health()
    assert code == 0, document


def test_one_dead_server_of_a_pool_or_owed_invalidations_are_degraded(start_servers, use_servers):
    first, second = start_servers("memcached", 2)
    use_servers([first, second])
    items = [Item.objects.create(value=1) for _ in range(20)]
    code, document = health()
    assert code == 0, document
    second.kill()
    code, document = health()
    assert (code, document["status"]) == (1, "degraded"), document
    assert [second.location] == [
        server for server, state in document["caches"]["faulty"]["servers"].items() if not state["reachable"]
    ]
    for item in items:  # some of these keys live on the dead server: their invalidations wait
        item.value += 1
        item.save()
    assert OutboxEntry.objects.exists()
    second.start()
    code, document = health()
    assert document["outbox"]["entries"] >= 1 and code == 1, document
    assert any("wait in the outbox" in problem for problem in document["problems"])


def test_text_output_names_each_problem(start_servers, use_servers):
    (server,) = start_servers("memcached")
    use_servers([server])
    server.kill()
    out = StringIO()
    with pytest.raises(CommandError, match=r"down: 1 problem\(s\)") as raised:
        call_command("cache_health", stdout=out, stderr=StringIO())
    assert raised.value.returncode == 2
    lines = out.getvalue().splitlines()
    assert lines[0] == "down" and "no server answers" in lines[1]
