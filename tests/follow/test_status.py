"""Where the follower's progress shows: cache_stats, the admin stats page,
cache_serve's ``stats containers``, and the W020 check before it ever ran."""

from django.core.checks import run_checks

from cachelayer.models import FollowerPosition
from cachelayer.tasks.follow import progress
from tests.follow.conftest import pytestmark_follow
from tests.helpers import manage

pytestmark = pytestmark_follow
STATS_PAGE = "/admin/cachelayer/container/stats/"


def follower_warnings():
    return [e for e in run_checks(include_deployment_checks=False, databases=["default"]) if e.id == "cachelayer.W020"]


def test_w020_until_a_follower_ran(binlog):
    assert any("'binlog'" in w.msg and "cache_follow --database binlog" in w.hint for w in follower_warnings())
    binlog.follow()
    assert not any("'binlog'" in w.msg for w in follower_warnings())


def test_status_in_cache_stats_admin_and_cache_serve(followed, admin_client):
    followed.sql("INSERT INTO testapp_item (value) VALUES (1), (2), (3)")
    followed.follow()
    row = FollowerPosition.objects.get(database="binlog")
    assert row.events >= 3 and row.last_error == ""
    out = manage("cache_stats", **{}).stdout
    at = f"{row.log_file}:{row.log_pos}"
    assert f"follower of 'binlog': ok: at {at}, server at {at}, lag 0.0 s / 0 bytes / 0 transactions" in out
    page = admin_client.get(STATS_PAGE).content.decode()
    assert 'id="follower-table"' in page and at in page
    assert progress.counters()["follower:binlog:lag_bytes"] == 0
