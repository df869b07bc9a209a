"""Pseudonyms for data subjects.

Every party derives the same pseudonym from the same BSN with a keyed hash (HMAC-SHA256 with the
cooperation's pseudonym key), so messages, logs and traces can name a subject without naming the
person, and a subject-rights request can be routed by pseudonym alone. Without the key the pseudonym
cannot be reversed or recomputed by brute force over the 10^9 BSN space.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

PSEUDONYM_PATTERN = r"^psn_[a-z2-7]{26}$"


class Pseudonymiser:
    def __init__(self, key_hex: str) -> None:
        key = bytes.fromhex(key_hex)
        if len(key) < 32:
            raise ValueError("pseudonym key must be at least 32 bytes")
        self._key = key

    def __call__(self, bsn: str) -> str:
        digest = hmac.new(self._key, bsn.encode("ascii"), hashlib.sha256).digest()
        return "psn_" + base64.b32encode(digest[:16]).decode("ascii").rstrip("=").lower()

    def __repr__(self) -> str:
        return "Pseudonymiser(<key hidden>)"


def mentions(body: bytes, subject: str, pseudonymise: Callable[[str], str]) -> bool:
    """Whether a message body (valid or not) is about the subject: it names the pseudonym, or carries a
    BSN whose pseudonym it is. Used to find a subject's dead letters on erasure."""
    if subject.encode() in body:
        return True
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return False

    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "bsn" and isinstance(item, str) and item.isascii() and pseudonymise(item) == subject:
                    return True
                if walk(item):
                    return True
        elif isinstance(value, list):
            return any(walk(item) for item in value)
        return False

    return walk(document)
