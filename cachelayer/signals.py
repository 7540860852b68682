"""Signals cachelayer sends; receivers get ``sender`` = the model class.

cache_hit(sender, container, key)
cache_miss(sender, container, key)
cache_invalidated(sender, container, keys)   keys=None: the whole container
"""

from django.dispatch import Signal

# Receivers by sender are cached (as for Django's pre_init/post_init): every
# read asks has_listeners, which otherwise takes a lock and scans the list.
cache_hit = Signal(use_caching=True)
cache_miss = Signal(use_caching=True)
cache_invalidated = Signal()
