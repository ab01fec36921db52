"""Keyed pseudonyms: an identifier replaced by HMAC-SHA256 under a key that belongs to one agreement.

The key is derived from the workspace's secret and the agreement's id, so the same patient has the same
pseudonym in every extract made under one agreement (a partner can follow a patient across its extracts), a
different one under any other agreement (two partners cannot join their extracts on it), and nobody without the
secret can compute or reverse it (a hash without a key could be reversed by hashing every possible NHS number).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

LENGTH = 16  # bytes of the MAC kept (32 hex digits): 128 bits, so collisions among billions stay negligible


def agreement_key(secret: bytes, agreement_id: str) -> bytes:
    """The agreement's own key (HMAC of its id under the workspace secret: a one-step HKDF-Expand)."""
    if len(secret) < 32:
        raise ValueError("the pseudonymisation secret must be at least 32 bytes")
    return hmac.digest(secret, f"mutual pseudonym key v1:{agreement_id}".encode(), "sha256")


def pseudonym(key: bytes, identifier: str) -> str:
    """A fixed-length pseudonym of ``identifier``: the first 32 hex digits of its HMAC-SHA256."""
    return hmac.digest(key, identifier.encode(), "sha256")[:LENGTH].hex()


def pseudonyms(key: bytes, identifiers: Iterable[str]) -> dict[str, str]:
    """Each distinct identifier's pseudonym (computed once however often it recurs)."""
    digest = hmac.digest
    return {i: digest(key, i.encode(), hashlib.sha256)[:LENGTH].hex() for i in dict.fromkeys(identifiers)}


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104), for computing it inside a database with only SHA-256."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def sql_pseudonym(text_sql: str) -> str:
    """A DuckDB expression equal to ``pseudonym(key, text)`` for the VARCHAR expression ``text_sql``, given the
    padded keys as the parameters ``$ipad`` and ``$opad`` (BLOBs): HMAC-SHA256 as two SHA-256 passes, run by
    the engine over millions of rows without a Python call per value."""
    inner = f"unhex(sha256($ipad || encode({text_sql})))"
    return f"substr(sha256($opad || {inner}), 1, {2 * LENGTH})"
