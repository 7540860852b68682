"""Authenticate payloads before anything decodes them.

A cache is often reachable by more than this process (memcached has no
authentication), and the default serializer is pickle, which runs code on
load. Every payload is stored as ``mac + body``: a keyed BLAKE2b of the cache
key it is stored under and of the body. A reader recomputes it before the
body reaches a serializer; one that does not match (forged, copied from
another key, or written under another key) raises ForgedPayload, a miss.
"""

from __future__ import annotations

import hashlib
import hmac

from cachelayer.core import conf
from cachelayer.exceptions import ForgedPayload

MAC_SIZE = 16  # bytes of BLAKE2b tag in front of each payload (128 bits)
_SALT = b"cachelayer.core.signing.payload"  # the derived key is cachelayer's alone, not SECRET_KEY itself


def derive(secret: str | bytes) -> bytes:
    """Return the 32-byte MAC key of a secret (HMAC-SHA256 under a fixed salt)."""
    return hmac.digest(_SALT, secret.encode() if isinstance(secret, str) else secret, "sha256")


class PayloadSigner:
    """Sign with the current key; accept the current and the fallback keys."""

    def __init__(self, secrets: list):
        # Keyed once: copying a keyed state costs about half of keying a new one (the hit path).
        self._keyed = [hashlib.blake2b(key=derive(secret), digest_size=MAC_SIZE) for secret in secrets]

    def _mac(self, keyed, name: str, body: bytes) -> bytes:
        mac = keyed.copy()
        mac.update(name.encode())
        mac.update(b"\0")  # cache keys hold no NUL (keys.py): name and body cannot be re-split
        mac.update(body)
        return mac.digest()

    def sign(self, name: str, body: bytes) -> bytes:
        """Return the payload stored under cache key ``name``."""
        return self._mac(self._keyed[0], name, body) + body

    def open(self, name: str, data: bytes) -> bytes:
        """Return the body of a payload read under ``name``; raise ForgedPayload when its MAC fails."""
        body, mac = data[MAC_SIZE:], data[:MAC_SIZE]
        for keyed in self._keyed:
            if hmac.compare_digest(self._mac(keyed, name, body), mac):
                return body
        raise ForgedPayload(name)


def get_signer() -> PayloadSigner:
    """Return the signer of CACHELAYER['PAYLOAD_KEY'] and its fallbacks."""
    return PayloadSigner(conf.payload_secrets())
