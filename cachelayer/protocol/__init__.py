"""The memcached text protocol in front of containers (``manage.py cache_serve``).

``parser`` reads command lines (pure), ``session`` runs them against the
repository, ``batching`` groups writes into transactions, ``server`` is the
asyncio TCP front end.
"""
