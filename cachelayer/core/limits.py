"""memcached's numeric limits, named once: keys, counters, expiry times."""

MAX_KEY_LENGTH = 250  # memcached's longest key, in bytes
UINT64 = 2**64  # counters, cas uniques and incr/decr deltas are 64-bit unsigned (incr wraps here)
THIRTY_DAYS = 30 * 86400  # memcached reads a larger expiry as a unix time, not seconds from now
