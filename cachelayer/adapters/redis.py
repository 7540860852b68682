"""Adapter for Redis through django-redis's client (its connection pool).

Counters are bumped by a Lua script that never creates a key: Redis INCR
on a missing key would restart it at 1, which could match an old payload.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from redis.exceptions import RedisError

from cachelayer.adapters.base import Adapter, CacheUnavailable, Route

INCR_EXISTING = """
for i, key in ipairs(KEYS) do
  if redis.call('exists', key) == 1 then redis.call('incr', key) end
end
return 0
"""

COMPARE_AND_SET = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[3]) > 0 then
    redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else
    redis.call('set', KEYS[1], ARGV[2])
  end
  return 1
end
return 0
"""


def _px(timeout: float) -> int | None:
    return max(1, int(timeout * 1000)) if timeout else None


class RedisAdapter(Adapter):
    def __init__(self, alias: str, params: dict):
        super().__init__(alias, params)
        self.client = caches[alias].client.get_client(write=True)
        self._incr = self.client.register_script(INCR_EXISTING)
        self._cas = self.client.register_script(COMPARE_AND_SET)

    def _call(self, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis ({self.alias}): {exc!r}") from exc

    def fetch(self, groups: dict[Route, list[str]]) -> dict[Route, dict[str, Any]]:
        wanted = list({key for keys in groups.values() for key in keys})
        values = self._call(self.client.mget, wanted)
        found = {key: value for key, value in zip(wanted, values) if value is not None}
        return {
            route: {key: found[key] for key in keys if key in found} for route, keys in groups.items()
        }

    def store(self, groups: dict[Route, dict[str, Any]], timeout: float) -> None:
        px = _px(timeout)
        pipe = self.client.pipeline(transaction=False)
        for mapping in groups.values():
            for key, value in mapping.items():
                pipe.set(key, value, px=px)
        self._call(pipe.execute)

    def add(self, key: str, value: Any, timeout: float, route: Route) -> bool:
        return bool(self._call(self.client.set, key, value, px=_px(timeout), nx=True))

    def delete(self, groups: dict[Route, list[str]]) -> None:
        keys = [key for keys in groups.values() for key in keys]
        if keys:
            self._call(self.client.delete, *keys)

    def invalidate(self, groups: dict[Route, tuple[list[str], list[str]]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        self._incr(keys=[key for counters, _ in groups.values() for key in counters], client=pipe)
        payloads = [key for _, keys in groups.values() for key in keys]
        if payloads:
            pipe.delete(*payloads)
        self._call(pipe.execute)

    def incr_everywhere(self, key: str) -> None:
        self._call(self._incr, keys=[key])

    def compare_and_set(self, key, expected, new, timeout, route) -> bool:
        return bool(self._call(self._cas, keys=[key], args=[expected, new, _px(timeout) or 0]))

    def add_counts(self, counts: dict[str, int]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, amount in counts.items():
            pipe.incrby(key, amount)
        self._call(pipe.execute)

    def server_stats(self) -> dict[str, dict]:
        try:
            return {self.params.get("LOCATION", "redis"): self.client.info()}
        except (RedisError, OSError) as exc:
            return {self.params.get("LOCATION", "redis"): {"error": repr(exc)}}
