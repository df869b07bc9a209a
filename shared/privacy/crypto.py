"""Encryption of personal fields at rest (AES-256-GCM).

A repository encrypts the personal parts of an aggregate into one ciphertext, bound to the aggregate's
id as associated data, so a ciphertext copied onto another record does not decrypt.

Crypto-shredding (GDPR art 17): everything about one data subject (the personal fields of their records,
and the outbox copies of the messages about them) is encrypted with a data key of that subject's own.
The data keys are stored wrapped by the service's master key (`WERKBRUG_FIELD_KEY`). Erasure destroys
the subject's key, which makes every copy the service cannot edit (outbox history, backups of the
database taken before the erasure) unreadable at once. A record withheld from erasure by a legal duty
(art 17(3)(b)) is first re-encrypted with a separate `retained` key of the subject, which the retention
job destroys when the legal period ends.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bson.binary import Binary
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class FieldCipher:
    def __init__(self, key_hex: str) -> None:
        key = bytes.fromhex(key_hex)
        if len(key) != 32:
            raise ValueError("field key must be 32 bytes (64 hex characters)")
        self._aead = AESGCM(key)

    def encrypt(self, value: dict[str, Any], associated: str) -> Binary:
        nonce = os.urandom(12)
        plain = json.dumps(value, separators=(",", ":"), default=str).encode()
        return Binary(_VERSION + nonce + self._aead.encrypt(nonce, plain, associated.encode()))

    def decrypt(self, blob: bytes, associated: str) -> dict[str, Any]:
        blob = bytes(blob)
        if blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        nonce, ct = blob[1:13], blob[13:]
        return json.loads(self._aead.decrypt(nonce, ct, associated.encode()))

    def __repr__(self) -> str:
        return "FieldCipher(<key hidden>)"


MASTER = "master"  # key id of data that is about no one in particular


def retained_key_id(subject: str) -> str:
    """The key of a subject's records withheld from erasure by a legal duty."""
    return f"{subject}:retained"


def new_data_key() -> str:
    return os.urandom(32).hex()


def wrap(master: FieldCipher, key_id: str, key_hex: str) -> Binary:
    return master.encrypt({"key": key_hex}, f"data-key:{key_id}")


def unwrap(master: FieldCipher, key_id: str, blob: bytes) -> FieldCipher:
    return FieldCipher(master.decrypt(blob, f"data-key:{key_id}")["key"])
