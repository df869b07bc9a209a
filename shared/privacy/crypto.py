"""Encryption of personal fields at rest (AES-256-GCM).

A repository encrypts the personal parts of an aggregate into one ciphertext, bound to the aggregate's
id as associated data, so a ciphertext copied onto another record does not decrypt.

Crypto-shredding (GDPR art 17): everything about one data subject (the personal fields of their records,
and the outbox copies of the messages about them) is encrypted with a data key of that subject's own.
The data keys are stored wrapped by the service's master key (`WERKBRUG_FIELD_KEY`). Erasure destroys
the subject's key, which makes every copy the service cannot edit (outbox history, backups of the
database taken before the erasure) unreadable at once. A record withheld from erasure by a legal duty
(art 17(3)(b)) is first re-encrypted with a separate `retained` key of the subject, which the retention
job destroys when the legal period ends; it keeps only the personal fields its ground needs
(shared.privacy.grounds), and nothing is copied out of it afterwards.

A destroyed key is never made again: what comes after an erasure is encrypted with a key of a new id (a new
generation, `live_key_id`), which opens only what was written with it.

A rectification does not rotate the key: the copies that carry the old values are removed or corrected
instead (the outbox keeps of a sent message only its delivery record), since the wrapped keys sit in the
same database as the ciphertexts and a new key would protect nothing the old one does not.
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


def live_key_id(subject: str, generation: int = 0) -> str:
    """The key of a subject's data in its `generation`: how many times their data key was destroyed before
    (an erasure, or the end of the retention period). Data about them that comes after (a new referral, a later
    request) gets a key of a new id, so the copies of the erased generation keep naming a key that no longer
    exists: they stay unreadable, and are seen as such, whatever comes later."""
    return subject if generation == 0 else f"{subject}:{generation}"


def retained_key_id(subject: str) -> str:
    """The key of a subject's records withheld from erasure by a legal duty."""
    return f"{subject}:retained"


def new_data_key() -> str:
    return os.urandom(32).hex()


def wrap(master: FieldCipher, key_id: str, key_hex: str) -> Binary:
    return master.encrypt({"key": key_hex}, f"data-key:{key_id}")


def unwrap(master: FieldCipher, key_id: str, blob: bytes) -> FieldCipher:
    return FieldCipher(master.decrypt(blob, f"data-key:{key_id}")["key"])
