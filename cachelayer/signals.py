"""Signals cachelayer sends; receivers get ``sender`` = the model class.

cache_hit(sender, container, key)
cache_miss(sender, container, key)
cache_invalidated(sender, container, keys)   keys=None: the whole container
definitions_changed(sender, loaded)           internal: the registry (re)loaded its definitions
                                              (loaded=True) or will on its next lookup (False)
configuration_saved(sender, instance, using)  internal: a container, policy or option was saved
"""

from django.dispatch import Signal

# Receivers by sender are cached (as for Django's pre_init/post_init): every
# read asks has_listeners, which otherwise takes a lock and scans the list.
cache_hit = Signal(use_caching=True)
cache_miss = Signal(use_caching=True)
cache_invalidated = Signal()
# Sent by engine/registry.py, received by receivers.py (which connects the
# write receivers per mapped model): the engine cannot import upward.
definitions_changed = Signal()
# Sent by models.py's configuration tables, received by receivers.py.
configuration_saved = Signal()
