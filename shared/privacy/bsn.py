"""The Dutch citizen service number (burgerservicenummer, BSN) and its 11-test (elfproef).

A BSN has 9 digits d1..d9 and is valid when 9*d1 + 8*d2 + ... + 2*d8 - 1*d9 is divisible by 11
(and not 0). Error messages here never contain the number itself.
"""

from __future__ import annotations

import random

_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def is_valid_bsn(value: str) -> bool:
    if not isinstance(value, str) or len(value) != 9 or not value.isascii() or not value.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value, _WEIGHTS, strict=True))
    return total != 0 and total % 11 == 0


def synthetic_bsn(rng: random.Random) -> str:
    """A random 9-digit number that passes the 11-test, for demos and tests (not a real person's)."""
    while True:
        candidate = f"{rng.randrange(10_000_000, 999_999_999):09d}"
        if is_valid_bsn(candidate):
            return candidate
