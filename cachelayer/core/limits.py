"""memcached's numeric limits, named once: keys, counters, expiry times."""

import math
import time

MAX_KEY_LENGTH = 250  # memcached's longest key, in bytes
UINT64 = 2**64  # counters, cas uniques and incr/decr deltas are 64-bit unsigned (incr wraps here)
THIRTY_DAYS = 30 * 86400  # memcached reads a larger expiry as a unix time, not seconds from now


def expiry_seconds(timeout: float) -> int:
    """Return a memcached-style integer expiry for a timeout in seconds (0 = none)."""
    if not timeout:
        return 0
    seconds = max(1, math.ceil(timeout))
    return int(time.time()) + seconds if seconds > THIRTY_DAYS else seconds
