"""Adapter for Django's LocMemCache (one process; the embedded default)."""

from __future__ import annotations

import pickle
from typing import Any

from django.core.cache import caches

from cachelayer.adapters.base import Adapter


def _timeout(timeout: float):
    return timeout or None  # Django reads 0 as "expire now", cachelayer as "never"


class LocMemAdapter(Adapter):
    process_local = True

    def __init__(self, alias: str, params: dict):
        super().__init__(alias, params, ["locmem"])
        self.cache = caches[alias]

    def _get_many(self, server, keys):
        return self.cache.get_many(keys)

    def _set_many(self, server, mapping, timeout):
        self.cache.set_many(mapping, _timeout(timeout))

    def _add(self, server, key, value, timeout):
        return self.cache.add(key, value, _timeout(timeout))

    def _delete_many(self, server, keys):
        self.cache.delete_many(keys)

    def _invalidate(self, server, counters, payloads, read):
        for key in counters:
            try:
                self.cache.incr(key)
            except ValueError:
                pass  # absent: nothing to outdate
        self.cache.delete_many(payloads)
        return self.cache.get_many(read) if read else {}

    def _compare_and_set(self, server, key, expected, new, timeout):
        cache: Any = self.cache  # a LocMemCache: django-stubs declare none of its private _lock, _cache, _set
        key = cache.make_and_validate_key(key)
        with cache._lock:  # LocMemCache's own (non-reentrant) lock makes get+set atomic
            if cache._has_expired(key) or pickle.loads(cache._cache[key]) != expected:
                return False
            cache._set(key, pickle.dumps(new, cache.pickle_protocol), cache.get_backend_timeout(_timeout(timeout)))
            return True

    def _add_counts(self, server, counts):
        for key, amount in counts.items():
            if not self.cache.add(key, amount, None):
                self.cache.incr(key, amount)

    def _ping(self, server):
        pass  # in process: always there

    def _stats(self, server):
        return {"curr_items": len(self.cache._cache)}  # type: ignore[attr-defined]  # LocMemCache private, not in django-stubs
