"""The memcached text protocol in front of containers (``manage.py cache_serve``).

``parser`` reads command lines (pure), ``session`` runs them against the
repository, ``server`` is the asyncio TCP front end, ``auth`` decides who may
connect and what they may run, ``fastreads`` answers reads from the cache on the
event loop, ``worker`` runs database work and commits write batches,
``flushes`` holds delayed ``flush_all``, ``deadlines`` drops idle connections.
"""
