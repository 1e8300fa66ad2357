"""API-key format and hashing, wire-compatible with the Node original.

A key is ``pm_`` + 64 lowercase hex characters (32 random bytes). The database stores only the hex
HMAC-SHA256 of the whole plaintext keyed with ``API_KEY_SALT``, so keys minted by the original with
the same salt authenticate here unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

KEY_PREFIX = "pm_"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def hash_key(plaintext: str) -> str:
    salt = settings.API_KEY_SALT.encode()
    return hmac.new(salt, plaintext.encode(), hashlib.sha256).hexdigest()


def hashes_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
