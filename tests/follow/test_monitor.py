"""The freshness monitor fed by the binlog follower: a write made outside Django is sampled
only when the follower delivers its invalidation, and checked like any other."""

from cachelayer.engine import stats
from cachelayer.tasks.monitoring import Monitor
from tests.follow.conftest import pytestmark_follow
from tests.test_monitor import RUN, shares
from tests.testapp.models import Item

pytestmark = pytestmark_follow


def test_the_follower_feeds_the_monitor_and_a_stale_entry_is_reported(sampled, followed):
    followed.sql("INSERT INTO testapp_item (id, value) VALUES (1, 10), (2, 20)")
    followed.follow_here()
    monitor = Monitor(["testapp_item"])  # samples from now on
    followed.sql("UPDATE testapp_item SET value = value + 1")  # outside Django: nothing here samples it
    followed.follow_here()  # the follower delivers the invalidations of keys 1 and 2, and samples them
    monitor.step()  # reads the ring: the checks of both writes are scheduled
    assert [Item.cached.get(pk).value for pk in (1, 2)] == [11, 21]  # cached again, fresh
    followed.sql("UPDATE testapp_item SET value = 99 WHERE id = 2")  # not followed: key 2 stale behind the cache
    monitor.run(RUN)
    summary = stats.freshness(["testapp_item"])["testapp_item"]
    assert shares(summary) == {0.3: (1, 2), 0.6: (1, 2)}  # key 1 consistent, key 2 stale, at each delay
    assert {(entry["key"], entry["delay"], entry["verdict"]) for entry in summary["stale"]} == {
        ("2", 0.3, "stale"),
        ("2", 0.6, "stale"),
    }
