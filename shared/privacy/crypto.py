"""Encryption of personal fields at rest (AES-256-GCM).

A repository encrypts the personal parts of an aggregate into one ciphertext, bound to the aggregate's
id as associated data, so a ciphertext copied onto another record does not decrypt. The key comes from
configuration; per-subject keys for crypto-shredding replace it in the subject-rights work.
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
