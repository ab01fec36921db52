"""Keyed pseudonyms: an identifier replaced by HMAC-SHA256 under a key that belongs to one agreement.

The key is derived from the workspace's secret and the agreement's id, so the same patient has the same
pseudonym in every extract made under one agreement (a partner can follow a patient across its extracts), a
different one under any other agreement (two partners cannot join their extracts on it), and nobody without the
secret can compute or reverse it (a hash without a key could be reversed by hashing every possible NHS number).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

LENGTH = 16  # bytes of the MAC kept: 128 bits, so collisions among billions of values stay negligible


def agreement_key(secret: bytes, agreement_id: str) -> bytes:
    """The agreement's own key (HMAC of its id under the workspace secret: a one-step HKDF-Expand)."""
    if len(secret) < 32:
        raise ValueError("the pseudonymisation secret must be at least 32 bytes")
    return hmac.digest(secret, f"mutual pseudonym key v1:{agreement_id}".encode(), "sha256")


def pseudonym(key: bytes, identifier: str) -> str:
    """A URL-safe, fixed-length pseudonym of ``identifier``."""
    mac = hmac.digest(key, identifier.encode(), "sha256")[:LENGTH]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def pseudonyms(key: bytes, identifiers: Iterable[str]) -> dict[str, str]:
    """Each distinct identifier's pseudonym (computed once however often it recurs)."""
    digest, encode = hmac.digest, base64.urlsafe_b64encode
    return {i: encode(digest(key, i.encode(), hashlib.sha256)[:LENGTH]).rstrip(b"=").decode()
            for i in dict.fromkeys(identifiers)}
