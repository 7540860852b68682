"""Signals cachelayer sends; receivers get ``sender`` = the model class.

cache_hit(sender, container, key)
cache_miss(sender, container, key)
cache_invalidated(sender, container, keys)   keys=None: the whole container
"""

from django.dispatch import Signal

cache_hit = Signal()
cache_miss = Signal()
cache_invalidated = Signal()
