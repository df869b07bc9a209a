"""Logging for werkbrug processes: no personal data in any log line.

werkbrug's own log lines name ids, pseudonyms, types and reason codes only. Some libraries dump whole
frames or documents at DEBUG (aiormq: every AMQP frame with its body; pymongo: every command with its
documents); those loggers are held at INFO or above whatever the root level is, because a message body
is personal data.
"""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any

PAYLOAD_LOGGERS = ("aiormq", "aio_pika", "pymongo", "pamqp")


def hold_payload_loggers() -> None:
    for name in PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def configure_logging(service: str, level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, stream=sys.stdout,
                        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    hold_payload_loggers()


def own_id(value: Any) -> str:
    """An id taken from a message (its AMQP message_id, correlation_id) as a log line or span may show it:
    the canonical UUID when it is one, else `*`. A message's own words are never echoed (they could be a
    person's name)."""
    try:
        return str(uuid.UUID(str(value))) if value is not None else "-"
    except ValueError:
        return "*"
