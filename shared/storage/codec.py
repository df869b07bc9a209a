"""Mapping between pydantic models and BSON documents.

Money is Decimal in Python and Decimal128 in MongoDB; times are UTC-aware datetimes; calendar dates
(which BSON lacks) are ISO strings; UUIDs are strings so that ids read the same in every tool.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from bson.decimal128 import Decimal128


def to_bson(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: to_bson(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_bson(v) for v in value]
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value.isoformat()
    return value


def from_bson(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_bson(v) for v in value]
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return value
