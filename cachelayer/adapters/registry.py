"""The long-lived adapter of each cache alias, built from its CACHES entry on
first use (core/backends.py maps a backend path to its adapter class)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from cachelayer.adapters.base import Adapter
from cachelayer.core.backends import ADAPTERS

_adapters: dict[str, Adapter] = {}
_lock = threading.Lock()


def get_adapter(alias: str) -> Adapter:
    """Return the long-lived adapter of a cache alias (built on first use)."""
    try:
        return _adapters[alias]
    except KeyError:
        pass
    with _lock:
        if alias not in _adapters:
            params = settings.CACHES[alias]
            _adapters[alias] = import_string(ADAPTERS[params["BACKEND"]])(alias, params)
        return _adapters[alias]


def reset() -> None:
    """Drop every adapter (after CACHES or CACHELAYER changes)."""
    with _lock:
        for adapter in _adapters.values():
            adapter.close()
        _adapters.clear()
