"""Adapter for Django's LocMemCache (one process; the embedded default)."""

from __future__ import annotations

import pickle
from typing import Any

from django.core.cache import caches

from cachelayer.adapters.base import Adapter, Route


def _timeout(timeout: float):
    return timeout or None  # Django reads 0 as "expire now", cachelayer as "never"


class LocMemAdapter(Adapter):
    def __init__(self, alias: str, params: dict):
        super().__init__(alias, params)
        self.cache = caches[alias]

    def fetch(self, groups: dict[Route, list[str]]) -> dict[Route, dict[str, Any]]:
        found = self.cache.get_many({key for keys in groups.values() for key in keys})
        return {
            route: {key: found[key] for key in keys if key in found} for route, keys in groups.items()
        }

    def store(self, groups: dict[Route, dict[str, Any]], timeout: float) -> None:
        self.cache.set_many({k: v for mapping in groups.values() for k, v in mapping.items()}, _timeout(timeout))

    def add(self, key: str, value: Any, timeout: float, route: Route) -> bool:
        return self.cache.add(key, value, _timeout(timeout))

    def delete(self, groups: dict[Route, list[str]]) -> None:
        self.cache.delete_many([key for keys in groups.values() for key in keys])

    def invalidate(self, groups: dict[Route, tuple[list[str], list[str]]]) -> None:
        for counters, payloads in groups.values():
            for key in counters:
                self.incr_everywhere(key)
            self.cache.delete_many(payloads)

    def incr_everywhere(self, key: str) -> None:
        try:
            self.cache.incr(key)
        except ValueError:
            pass  # absent: nothing to outdate

    def compare_and_set(self, key, expected, new, timeout, route) -> bool:
        cache = self.cache
        key = cache.make_and_validate_key(key)
        with cache._lock:  # LocMemCache's own (non-reentrant) lock makes get+set atomic
            if cache._has_expired(key) or pickle.loads(cache._cache[key]) != expected:
                return False
            cache._set(key, pickle.dumps(new, cache.pickle_protocol), cache.get_backend_timeout(_timeout(timeout)))
            return True

    def add_counts(self, counts: dict[str, int]) -> None:
        for key, amount in counts.items():
            if not self.cache.add(key, amount, None):
                self.cache.incr(key, amount)

    def server_stats(self) -> dict[str, dict]:
        return {"locmem": {"curr_items": len(self.cache._cache)}}
