"""Row events written outside Django reach the cache through cache_follow."""

import pytest

from tests.follow.conftest import pytestmark_follow
from tests.testapp.models import Item

pytestmark = pytestmark_follow


def test_raw_update_is_invalidated(followed):
    Item.objects.using("binlog").bulk_create([Item(id=1, value=1), Item(id=2, value=2)])
    assert Item.cached.get(1).value == 1 and Item.cached.get(2).value == 2
    followed.sql("UPDATE testapp_item SET value = 10 WHERE id = 1")
    assert Item.cached.get(1).value == 1  # stale: nothing in this process saw the write
    followed.follow()
    assert Item.cached.get(1).value == 10
