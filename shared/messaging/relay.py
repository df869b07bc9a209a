"""The outbox relay: publishes what the unit of work wrote to the outbox, then marks it sent.

MongoDB change streams would wake it up on real MongoDB; the embedded server has none, so it polls
(`WERKBRUG_RELAY_INTERVAL`, default 0.1 s) and drains in batches while there is work. At-least-once:
a crash between publish and mark republishes the event with the same message id, and the receiver's
inbox drops the duplicate. Each publish runs in the trace context stored with the record, so the trace
of the change continues unbroken across the relay into the receiving service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from aio_pika.exceptions import DeliveryError
from opentelemetry import propagate, trace
from pymongo import ASCENDING

from shared.contracts.envelope import Envelope
from shared.privacy.crypto import MASTER
from shared.storage.mongo import OUTBOX_RETENTION, MongoStorage

log = logging.getLogger("werkbrug.relay")

BATCH = 100
MAX_BACKOFF = timedelta(minutes=5)


class OutboxRelay:
    def __init__(self, storage: MongoStorage, publish, tracer: trace.Tracer, interval: float, service: str) -> None:
        self._storage = storage
        self._db = storage.db
        self._keys = storage.keys
        self._publish = publish  # async (Envelope) -> None, raises on failure
        self._tracer = tracer
        self._interval = interval
        self._service = service
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self.published = 0

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"{self._service}-outbox-relay")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = self._interval
        while not self._stopping.is_set():
            try:
                sent = await self.relay_once()
                backoff = self._interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker or the database is away: keep trying, quietly
                log.warning("%s outbox relay paused: %s", self._service, type(exc).__name__)
                sent = 0
                backoff = min(backoff * 2, 5.0)
            if sent < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)

    async def relay_once(self) -> int:
        now = datetime.now(UTC)
        # The read takes its turn too: the embedded server's SQLite engine refuses any operation of another
        # session while a transaction is open ("active transaction bound to another session").
        async with self._storage.plain_write():
            records = await (
                self._db.outbox.find({"status": "pending", "next_attempt_at": {"$lte": now}})
                .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
                .limit(BATCH)
            ).to_list()
        sent = 0
        for record in records:
            if self._stopping.is_set():
                break
            cipher = await self._keys.cipher(record.get("key", MASTER))
            if cipher is None:
                # The subject was erased after this was written: it must not carry their data out.
                async with self._storage.plain_write():
                    await self._db.outbox.update_one(
                        {"_id": record["_id"], "status": "pending"},
                        {"$set": {"status": "shredded", "expire_at": now + OUTBOX_RETENTION}})
                continue
            envelope = Envelope.model_validate(cipher.decrypt(record["payload"], record["_id"]))
            parent = propagate.extract(record.get("trace") or {})
            with self._tracer.start_as_current_span(
                f"{self._service} relay {envelope.type}", context=parent, kind=trace.SpanKind.PRODUCER
            ) as span:
                span.set_attributes({"werkbrug.event_id": record["_id"],
                                     "werkbrug.event_type": f"{envelope.type}.v{envelope.version}",
                                     "werkbrug.subject": envelope.subject or "",
                                     "werkbrug.correlation_id": str(envelope.correlation_id)})
                try:
                    await self._publish(envelope)
                except DeliveryError:
                    # Unroutable: nobody subscribed to it. Keep it and retry with backoff; never drop it.
                    attempts = record.get("attempts", 0) + 1
                    delay = min(timedelta(seconds=2**min(attempts, 9)), MAX_BACKOFF)
                    span.set_status(trace.Status(trace.StatusCode.ERROR, "unroutable"))
                    log.error("%s: event %s (%s) is unroutable; retry in %ss", self._service, record["_id"],
                              record["routing_key"], int(delay.total_seconds()))
                    async with self._storage.plain_write():
                        await self._db.outbox.update_one(
                            {"_id": record["_id"]},
                            {"$set": {"next_attempt_at": now + delay, "last_error": "unroutable"},
                             "$inc": {"attempts": 1}},
                        )
                    continue
            sent_at = datetime.now(UTC)
            async with self._storage.plain_write():
                await self._db.outbox.update_one(
                    {"_id": record["_id"]},
                    {"$set": {"status": "sent", "sent_at": sent_at, "expire_at": sent_at + OUTBOX_RETENTION},
                     "$inc": {"attempts": 1}, "$unset": {"last_error": ""}},
                )
            sent += 1
            self.published += 1
        return sent
