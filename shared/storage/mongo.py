"""The unit of work on MongoDB: aggregates, outbox, inbox and lifecycle records in one transaction.

Collections in each service's own database:
- one per aggregate type (personal fields encrypted, optimistic concurrency on `version`);
- `outbox`: events waiting for the relay, with the trace context of the change that caused them;
- `inbox`: ids of handled messages under a unique index (the tracking record), with command results;
- `lifecycles`: the trace context of each referral lifecycle, so later steps join the same trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import propagate
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from shared.contracts.commands import ReadProcessingLog
from shared.contracts.envelope import lookup
from shared.contracts.parties import Party
from shared.privacy.crypto import FieldCipher
from shared.privacy.processing_log import ProcessingRecord
from shared.storage.codec import from_bson, to_bson
from shared.unit_of_work import (
    A,
    ConcurrencyError,
    DuplicateMessage,
    InboxEntry,
    Repository,
    RepositorySpec,
    UnitOfWork,
)

INBOX_RETENTION = timedelta(days=90)  # dedupe window; redeliveries come within minutes, replays within weeks
OUTBOX_RETENTION = timedelta(days=30)  # sent records are kept this long for retours and tracing


def is_transient(exc: BaseException) -> bool:
    """A write conflict or another error after which the whole transaction may simply be retried.

    Real MongoDB labels these TransientTransactionError (write conflicts have code 112). The embedded
    server raises an unlabelled "Write conflict" when any write committed since the transaction's
    snapshot, so it is recognised by its message too.
    """
    if isinstance(exc, ConcurrencyError):
        return True
    if isinstance(exc, PyMongoError):
        if exc.has_error_label("TransientTransactionError"):
            return True
        if isinstance(exc, OperationFailure) and (exc.code == 112 or "Write conflict" in str(exc)):
            return True
    return False


def is_outage(exc: BaseException) -> bool:
    """The database cannot be reached: waiting helps, giving up on the message does not."""
    return isinstance(exc, ConnectionFailure)


def connect(url: str, timeout_ms: int = 10_000) -> AsyncMongoClient:
    return AsyncMongoClient(url, tz_aware=True, uuidRepresentation="standard", serverSelectionTimeoutMS=timeout_ms)


class MongoRepository(Repository[A]):
    def __init__(self, spec: RepositorySpec[A], db: AsyncDatabase, session: AsyncClientSession,
                 cipher: FieldCipher) -> None:
        super().__init__(spec)
        self._coll = db[spec.name]
        self._session = session
        self._cipher = cipher
        self._loaded: dict[uuid.UUID, tuple[int, dict[str, Any]]] = {}

    def _to_doc(self, aggregate: A) -> dict[str, Any]:
        plain = aggregate.model_dump(mode="python")
        secret = {k: plain.pop(k) for k in self.spec.encrypted}
        doc = to_bson(plain)
        doc["_id"] = doc.pop("id")
        if secret:
            json_secret = aggregate.model_dump(mode="json", include=set(self.spec.encrypted))
            doc["_enc"] = self._cipher.encrypt(json_secret, str(aggregate.id))
        return doc

    def _from_doc(self, doc: dict[str, Any]) -> A:
        doc = dict(doc)
        doc["id"] = doc.pop("_id")
        enc = doc.pop("_enc", None)
        plain = from_bson(doc)
        if enc is not None:
            plain.update(self._cipher.decrypt(enc, str(plain["id"])))
        aggregate = self.spec.model.model_validate(plain)
        self._loaded[aggregate.id] = (aggregate.version, aggregate.model_dump(mode="json"))
        return aggregate

    async def _get(self, aggregate_id: uuid.UUID) -> A | None:
        doc = await self._coll.find_one({"_id": str(aggregate_id)}, session=self._session)
        return self._from_doc(doc) if doc else None

    async def find(self, limit: int = 100, **equals: Any) -> list[A]:
        query = {k: {"$in": to_bson(list(v))} if isinstance(v, list | tuple | set | frozenset) else to_bson(v)
                 for k, v in equals.items()}
        cursor = self._coll.find(query, session=self._session).sort("_id", DESCENDING).limit(limit)
        out = []
        async for doc in cursor:
            agg = self.seen.get(uuid.UUID(doc["_id"])) or self._from_doc(doc)
            self.seen.setdefault(agg.id, agg)
            out.append(agg)
        return out

    async def save_all(self) -> None:
        for aggregate in self.seen.values():
            loaded = self._loaded.get(aggregate.id)
            if loaded is None:
                aggregate.version = 1
                await self._coll.insert_one(self._to_doc(aggregate), session=self._session)
                continue
            before, snapshot = loaded
            if aggregate.model_dump(mode="json") == snapshot:
                continue  # read, not changed
            aggregate.version = before + 1
            result = await self._coll.replace_one(
                {"_id": str(aggregate.id), "version": before}, self._to_doc(aggregate), session=self._session
            )
            if result.matched_count != 1:
                raise ConcurrencyError(f"{self.spec.name} {aggregate.id} changed concurrently")


class MongoUnitOfWork(UnitOfWork):
    """One transaction in one service database. Use as `async with storage.unit_of_work() as uow:`."""

    def __init__(self, storage: MongoStorage) -> None:
        super().__init__(party=storage.party)
        self._storage = storage
        self._session: AsyncClientSession | None = None

    async def __aenter__(self) -> MongoUnitOfWork:
        if self._storage.write_lock is not None:
            await self._storage.write_lock.acquire()
        self._session = self._storage.client.start_session()
        await self._session.__aenter__()
        await self._session.start_transaction()
        self.repositories = {
            spec.name: MongoRepository(spec, self._storage.db, self._session, self._storage.cipher)
            for spec in self._storage.specs
        }
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        try:
            if self._session.in_transaction:
                await self._session.abort_transaction()
        finally:
            await self._session.__aexit__(None, None, None)
            if self._storage.write_lock is not None:
                self._storage.write_lock.release()

    async def processed(self, message_id: str) -> InboxEntry | None:
        doc = await self._storage.db.inbox.find_one({"_id": message_id}, session=self._session)
        if doc is None:
            return None
        return InboxEntry(doc["_id"], doc["kind"], doc["type"], from_bson(doc.get("result")))

    async def lifecycle_trace(self, lifecycle_id: uuid.UUID) -> dict[str, str] | None:
        doc = await self._storage.db.lifecycles.find_one({"_id": str(lifecycle_id)}, session=self._session)
        return doc["trace"] if doc else None

    async def record_retour(self, about_event_id: uuid.UUID, answer: dict[str, Any]) -> bool:
        result = await self._storage.db.outbox.update_one(
            {"_id": str(about_event_id)}, {"$set": {"retour": to_bson(answer)}}, session=self._session
        )
        return result.matched_count == 1

    async def deliveries(self, correlation_id: uuid.UUID) -> list[dict[str, Any]]:
        cursor = self._storage.db.outbox.find(
            {"correlation_id": str(correlation_id), "type": {"$ne": "retour.issued"}},
            {"type": 1, "version": 1, "status": 1, "retour": 1, "created_at": 1, "routing_key": 1},
            session=self._session,
        ).sort("created_at", ASCENDING)
        return [
            {"event_id": d["_id"], "type": d["type"], "status": d["status"], "routing_key": d["routing_key"],
             "retour": from_bson(d.get("retour")), "expects_retour": _expects_retour(d["type"], d.get("version", 1))}
            async for d in cursor
        ]

    async def read_processing_log(self, query: ReadProcessingLog) -> list[ProcessingRecord]:
        filters: dict[str, Any] = {}
        for name in ("subject", "trace_id", "activity_id"):
            if (value := getattr(query, name)) is not None:
                filters[name] = value
        if query.correlation_id is not None:
            filters["correlation_id"] = str(query.correlation_id)
        if query.since or query.until:
            filters["time"] = {k: v for k, v in (("$gte", query.since), ("$lt", query.until)) if v is not None}
        cursor = (self._storage.db.processing_log.find(filters, session=self._session)
                  .sort([("time", ASCENDING), ("_id", ASCENDING)]).limit(query.limit))
        out = []
        async for doc in cursor:
            doc = from_bson(doc)
            doc["id"] = doc.pop("_id")
            out.append(ProcessingRecord.model_validate(doc))
        return out

    async def commit(self) -> None:
        assert self._session is not None
        db, now = self._storage.db, datetime.now(UTC)
        for repo in self.repositories.values():
            await repo.save_all()  # type: ignore[attr-defined]
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        envelopes = self.new_envelopes()
        if envelopes:
            await db.outbox.insert_many(
                [
                    {
                        "_id": str(env.id),
                        "type": env.type,
                        "version": env.version,
                        "routing_key": env.routing_key,
                        "correlation_id": str(env.correlation_id),
                        "subject": env.subject,
                        "payload": self._storage.cipher.encrypt(env.model_dump(mode="json"), str(env.id)),
                        "trace": carrier,
                        "status": "pending",
                        "attempts": 0,
                        "created_at": now,
                        "next_attempt_at": now,
                    }
                    for env in envelopes
                ],
                session=self._session,
            )
        records = self.processing_records(envelopes, now)
        if records:
            await db.processing_log.insert_many(
                [_record_doc(r) for r in records], session=self._session
            )
        if self.lifecycle_id is not None and carrier:
            # One upsert, no read first: $setOnInsert leaves a lifecycle that already has its trace alone.
            await db.lifecycles.update_one(
                {"_id": str(self.lifecycle_id)},
                {"$setOnInsert": {"trace": carrier, "created_at": now}},
                upsert=True,
                session=self._session,
            )
        if self.inbox is not None:
            try:
                await db.inbox.insert_one(
                    {
                        "_id": self.inbox.message_id,
                        "kind": self.inbox.kind,
                        "type": self.inbox.type,
                        "result": to_bson(self.inbox.result),
                        "received_at": now,
                        "expire_at": now + INBOX_RETENTION,
                    },
                    session=self._session,
                )
            except DuplicateKeyError as exc:
                raise DuplicateMessage(self.inbox.message_id) from exc
        await self._session.commit_transaction()
        if envelopes:
            self._storage.outbox_written()


def _expects_retour(event_type: str, version: int) -> bool:
    spec = lookup(event_type, version)
    return not (spec and spec.model.internal)


def _record_doc(record: ProcessingRecord) -> dict[str, Any]:
    doc = to_bson(record.model_dump(mode="python"))
    doc["_id"] = doc.pop("id")
    return doc


class MongoStorage:
    """A service's own database."""

    def __init__(self, client: AsyncMongoClient, db_name: str, party: Party, specs: list[RepositorySpec],
                 cipher: FieldCipher) -> None:
        self.client = client
        self.db: AsyncDatabase = client[db_name]
        self.party = party
        self.specs = specs
        self.cipher = cipher
        # Set by `detect_server`: the embedded server loses updates when transactions of one database
        # interleave, so there all writes of this process take turns. Real MongoDB needs no lock.
        self.write_lock: asyncio.Lock | None = None
        self._outbox_listeners: list[Callable[[], None]] = []

    def on_outbox_written(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit that wrote outbox records (the relay wakes up on it)."""
        self._outbox_listeners.append(listener)

    def outbox_written(self) -> None:
        for listener in self._outbox_listeners:
            listener()

    async def detect_server(self) -> str:
        info = await self.client.admin.command("buildInfo")
        embedded = info.get("gitVersion") == "mongoeco"
        self.write_lock = asyncio.Lock() if embedded else None
        return f"{'embedded mongoeco' if embedded else 'MongoDB'} {info.get('version')}"

    @contextlib.asynccontextmanager
    async def plain_write(self):
        """Around a write outside a unit of work (the relay), so it takes its turn on the embedded server."""
        if self.write_lock is None:
            yield
            return
        async with self.write_lock:
            yield

    def unit_of_work(self) -> MongoUnitOfWork:
        return MongoUnitOfWork(self)

    async def ensure_schema(self) -> None:
        db = self.db
        existing = set(await db.list_collection_names())
        for name in {"outbox", "inbox", "lifecycles", "processing_log", *(s.name for s in self.specs)} - existing:
            # Collections must exist before a transaction writes to them on MongoDB < 4.4.
            await db.create_collection(name)
        await db.outbox.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await db.outbox.create_index([("correlation_id", ASCENDING)])
        await db.outbox.create_index("expire_at", expireAfterSeconds=0)
        await db.inbox.create_index("expire_at", expireAfterSeconds=0)
        for fields in (("subject", "time"), ("trace_id",), ("correlation_id", "time"), ("activity_id", "time")):
            await db.processing_log.create_index([(f, ASCENDING) for f in fields])
        for spec in self.specs:
            for fields in spec.indexes:
                await db[spec.name].create_index([(f, ASCENDING) for f in fields])
            for fields in spec.unique_indexes:
                await db[spec.name].create_index([(f, ASCENDING) for f in fields], unique=True)
