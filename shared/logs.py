"""Logging for werkbrug processes: no personal data in any log line.

werkbrug's own log lines name ids, pseudonyms, types and reason codes only. Some libraries dump whole
frames or documents at DEBUG (aiormq: every AMQP frame with its body; pymongo: every command with its
documents); those loggers are held at INFO or above whatever the root level is, because a message body
is personal data.
"""

from __future__ import annotations

import logging
import sys

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
