"""The outbox relay: publishes what the unit of work wrote to the outbox, then marks it sent.

It wakes up when a unit of work of its own process commits outbox records (`MongoStorage.on_outbox_written`),
and otherwise polls (`WERKBRUG_RELAY_INTERVAL`, default 1 s: for records another process wrote, a retry
that is due, or a record left by a crash); the embedded server has no change streams. It drains in
batches while there is work: a batch's publishes are started in outbox order on one channel and their
confirms awaited together, and the published records are marked sent with one update. At-least-once:
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
from opentelemetry import context, propagate
from pymongo import ASCENDING

from shared.contracts.envelope import Envelope
from shared.privacy.crypto import MASTER, FieldCipher
from shared.storage.mongo import OUTBOX_RETENTION, MongoStorage

log = logging.getLogger("werkbrug.relay")

BATCH = 100
MAX_BACKOFF = timedelta(minutes=5)


class OutboxRelay:
    def __init__(self, storage: MongoStorage, publish, interval: float, service: str) -> None:
        self._storage = storage
        self._db = storage.db
        self._keys = storage.keys
        self._publish = publish  # async (Envelope) -> None, raises on failure
        self._interval = interval
        self._service = service
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.published = 0
        storage.on_outbox_written(self.nudge)

    def nudge(self) -> None:
        """Records were just committed to the outbox: publish them now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"{self._service}-outbox-relay")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = self._interval
        while not self._stopping.is_set():
            self._wake.clear()  # before reading: a commit from now on wakes the next round
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
                # Healthy: until a commit nudges or the poll interval passes. Backing off: a nudge does not
                # cut the back-off short (the broker or database is still away); only a stop does.
                waiting_for = self._wake if backoff == self._interval else self._stopping
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiting_for.wait(), timeout=backoff)

    async def relay_once(self) -> int:
        now = datetime.now(UTC)
        # The read takes its turn too: the embedded server's SQLite engine refuses any operation of another
        # session while a transaction is open ("active transaction bound to another session").
        async with self._storage.plain_write():
            records = await (
                self._db.outbox.find({"status": "pending", "next_attempt_at": {"$lte": now}})
                .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
                .limit(BATCH)
                .to_list()
            )
            ciphers = await self._keys.ciphers({r.get("key", MASTER) for r in records})
        if not records or self._stopping.is_set():
            return 0
        # A record whose subject was erased after it was written must not carry their data out.
        shredded = [r["_id"] for r in records if ciphers[r.get("key", MASTER)] is None]
        if shredded:
            async with self._storage.plain_write():
                await self._db.outbox.update_many(
                    {"_id": {"$in": shredded}, "status": "pending"},
                    {"$set": {"status": "shredded", "expire_at": now + OUTBOX_RETENTION}})
        records = [r for r in records if r["_id"] not in shredded]
        # Started in outbox order on the one publishing channel; the confirms are awaited together.
        outcomes = await asyncio.gather(*(self._publish_one(r, ciphers[r.get("key", MASTER)]) for r in records),
                                        return_exceptions=True)
        sent_ids = [record["_id"] for record, outcome in zip(records, outcomes, strict=True) if outcome is None]
        if sent_ids:
            sent_at = datetime.now(UTC)
            async with self._storage.plain_write():
                await self._db.outbox.update_many(
                    {"_id": {"$in": sent_ids}},
                    {"$set": {"status": "sent", "sent_at": sent_at, "expire_at": sent_at + OUTBOX_RETENTION},
                     "$inc": {"attempts": 1}, "$unset": {"last_error": ""}},
                )
            self.published += len(sent_ids)
        for record, outcome in zip(records, outcomes, strict=True):
            if isinstance(outcome, DeliveryError):
                # Unroutable: nobody subscribed to it. Keep it and retry with backoff; never drop it.
                attempts = record.get("attempts", 0) + 1
                delay = min(timedelta(seconds=2**min(attempts, 9)), MAX_BACKOFF)
                log.error("%s: event %s (%s) is unroutable; retry in %ss", self._service, record["_id"],
                          record["routing_key"], int(delay.total_seconds()))
                async with self._storage.plain_write():
                    await self._db.outbox.update_one(
                        {"_id": record["_id"]},
                        {"$set": {"next_attempt_at": now + delay, "last_error": "unroutable"},
                         "$inc": {"attempts": 1}},
                    )
        failed = next((o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, DeliveryError)),
                      None)
        if failed is not None:
            raise failed  # the broker is away: the unpublished records stay pending
        return len(sent_ids)

    async def _publish_one(self, record: dict, cipher: FieldCipher) -> None:
        envelope = Envelope.model_validate(cipher.decrypt(record["payload"], record["_id"]))
        # In the trace context stored with the record: FastStream's producer spans (RabbitTelemetryMiddleware:
        # `create` and `publish`, with the message id and correlation id) continue the change's trace, and
        # the traceparent they put on the message carries it into the receiving service. A span of the
        # relay's own around them would repeat those attributes and cost as much as they do (make bench).
        token = context.attach(propagate.extract(record.get("trace") or {}))
        try:
            await self._publish(envelope)
        finally:
            context.detach(token)
