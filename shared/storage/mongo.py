"""The unit of work on MongoDB: aggregates, outbox, inbox and lifecycle records in one transaction.

Collections in each service's own database:
- one per aggregate type (personal fields encrypted, optimistic concurrency on `version`);
- `outbox`: events waiting for the relay, with the trace context of the change that caused them;
- `inbox`: ids of handled messages under a unique index (the tracking record), with command results;
- `lifecycles`: the trace context of each referral lifecycle, so later steps join the same trace;
- `subject_keys`: each data subject's data key, wrapped by the master key (crypto-shredding);
- `subjects`: each data subject's erasure, restriction and objection state, and their key generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from opentelemetry import propagate
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from shared.contracts.commands import ReadProcessingLog
from shared.contracts.envelope import expects_retour, lookup
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason
from shared.domain import Aggregate, Withholding, corrected_copy
from shared.privacy.crypto import MASTER, FieldCipher, live_key_id, new_data_key, retained_key_id, unwrap, wrap
from shared.privacy.processing_log import ProcessingRecord
from shared.storage.codec import from_bson, to_bson
from shared.unit_of_work import (
    A,
    ConcurrencyError,
    ConfidentialityStatement,
    DeadLetterRecord,
    DuplicateMessage,
    InboxEntry,
    Repository,
    RepositorySpec,
    SubjectState,
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


class SubjectKeys:
    """The data keys of a service's data subjects, wrapped by its master key (see shared.privacy.crypto).

    A key is made the first time something about the subject is written. Destroying it (erasure, the end
    of the retention period) makes every copy encrypted with it unreadable."""

    def __init__(self, db: AsyncDatabase, master: FieldCipher) -> None:
        self._coll = db.subject_keys
        self._subjects = db.subjects
        self.master = master

    async def cipher(self, key_id: str, session: AsyncClientSession | None = None, *,
                     create: bool = False) -> FieldCipher | None:
        if key_id == MASTER:
            return self.master
        doc = await self._coll.find_one({"_id": key_id}, session=session)
        if doc is not None:
            return unwrap(self.master, key_id, doc["key"])
        if not create:
            return None  # shredded
        key = new_data_key()
        try:
            await self._coll.insert_one({"_id": key_id, "key": wrap(self.master, key_id, key),
                                         "created_at": datetime.now(UTC)}, session=session)
        except DuplicateKeyError as exc:  # a concurrent transaction made it first: retry with theirs
            raise ConcurrencyError(f"data key {key_id} created concurrently") from exc
        return FieldCipher(key)

    async def ciphers(self, key_ids: set[str], session: AsyncClientSession | None = None) -> dict[
            str, FieldCipher | None]:
        """The ciphers of several existing keys in one read (None where a key was shredded)."""
        found: dict[str, FieldCipher | None] = dict.fromkeys(key_ids)
        if MASTER in found:
            found[MASTER] = self.master
        async for doc in self._coll.find({"_id": {"$in": sorted(key_ids - {MASTER})}}, session=session):
            found[doc["_id"]] = unwrap(self.master, doc["_id"], doc["key"])
        return found

    async def generation(self, subject: str, session: AsyncClientSession | None = None) -> int:
        doc = await self._subjects.find_one({"_id": subject}, {"key_generation": 1}, session=session)
        return (doc or {}).get("key_generation", 0)

    async def next_generation(self, subject: str, session: AsyncClientSession | None = None) -> None:
        """The subject's data key was destroyed: data about them from now on gets a key of a new id."""
        await self._subjects.update_one({"_id": subject}, {"$inc": {"key_generation": 1}}, upsert=True,
                                        session=session)

    async def destroy(self, key_id: str, session: AsyncClientSession | None = None) -> bool:
        result = await self._coll.delete_one({"_id": key_id}, session=session)
        return result.deleted_count == 1


class KeyCache:
    """The keys one unit of work has used (a key is read once per transaction)."""

    def __init__(self, keys: SubjectKeys, session: AsyncClientSession) -> None:
        self._keys, self._session = keys, session
        self._ciphers: dict[str, FieldCipher | None] = {}
        self._generations: dict[str, int] = {}

    async def live_key_id(self, subject: str | None) -> str:
        """The id of the key for data about `subject` written now (the master key for no one in particular)."""
        if subject is None:
            return MASTER
        if subject not in self._generations:
            self._generations[subject] = await self._keys.generation(subject, self._session)
        return live_key_id(subject, self._generations[subject])

    async def next_generation(self, subject: str) -> None:
        self._generations[subject] = await self._keys.generation(subject, self._session) + 1
        await self._keys.next_generation(subject, self._session)

    async def cipher(self, key_id: str, *, create: bool = False) -> FieldCipher | None:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = await self._keys.cipher(key_id, self._session, create=create)
            self._ciphers[key_id] = cipher
        return cipher

    def forget(self, key_id: str) -> None:
        self._ciphers.pop(key_id, None)


def key_id_of(subject: str | None) -> str:
    """The key id of a record stored before records named their key (`_key`): the subject's first."""
    return live_key_id(subject) if subject else MASTER


class ShreddedRecord(Exception):
    """A record whose key was destroyed. Only a withheld-then-expired record can be in this state."""


class MongoRepository(Repository[A]):
    def __init__(self, spec: RepositorySpec[A], db: AsyncDatabase, session: AsyncClientSession,
                 keys: KeyCache) -> None:
        super().__init__(spec)
        self._coll = db[spec.name]
        self._session = session
        self._keys = keys
        self._loaded: dict[uuid.UUID, tuple[int, dict[str, Any]]] = {}
        self._key_ids: dict[uuid.UUID, str] = {}
        self._rekeyed: set[uuid.UUID] = set()

    async def _to_doc(self, aggregate: A) -> dict[str, Any]:
        plain = aggregate.model_dump(mode="python")
        secret = {k: plain.pop(k) for k in self.spec.encrypted}
        doc = to_bson(plain)
        doc["_id"] = doc.pop("id")
        if secret:
            subject = getattr(aggregate, "subject", None)
            key_id = self._key_ids.get(aggregate.id) or await self._keys.live_key_id(subject)
            cipher = await self._keys.cipher(key_id, create=True)
            json_secret = aggregate.model_dump(mode="json", include=set(self.spec.encrypted))
            doc["_enc"] = cipher.encrypt(json_secret, str(aggregate.id))
            doc["_key"] = key_id
        if (start := aggregate.retention_start()) is not None:
            doc["_retention_start"] = start.isoformat()  # indexed: the retention job's query
        if (withholding := self.withheld.get(aggregate.id)) is not None:
            doc["_withheld"] = {"ground": withholding.ground, "keep_until": withholding.keep_until.isoformat(),
                                "keeps": list(withholding.keeps)}
        return doc

    async def _from_doc(self, doc: dict[str, Any]) -> A:
        doc = dict(doc)
        doc["id"] = doc.pop("_id")
        enc = doc.pop("_enc", None)
        key_id = doc.pop("_key", None) or key_id_of(doc.get("subject"))
        withheld = doc.pop("_withheld", None)
        doc.pop("_retention_start", None)
        plain = from_bson(doc)
        if enc is not None:
            cipher = await self._keys.cipher(key_id)
            if cipher is None:
                raise ShreddedRecord(f"{self.spec.name} {plain['id']}")
            plain.update(cipher.decrypt(enc, str(plain["id"])))
        aggregate = self.spec.model.model_validate(plain)
        self._loaded[aggregate.id] = (aggregate.version, aggregate.model_dump(mode="json"))
        self._key_ids[aggregate.id] = key_id
        if withheld:
            self.withheld[aggregate.id] = Withholding(withheld["ground"],
                                                      datetime.fromisoformat(withheld["keep_until"]).date(),
                                                      tuple(withheld.get("keeps", ())))
        return aggregate

    async def _get(self, aggregate_id: uuid.UUID) -> A | None:
        doc = await self._coll.find_one({"_id": str(aggregate_id)}, session=self._session)
        return await self._from_doc(doc) if doc else None

    async def _find(self, limit: int = 100, **equals: Any) -> list[A]:
        query = {k: {"$in": to_bson(list(v))} if isinstance(v, list | tuple | set | frozenset) else to_bson(v)
                 for k, v in equals.items()}
        cursor = self._coll.find(query, session=self._session).sort("_id", DESCENDING).limit(limit)
        out = []
        async for doc in cursor:
            agg = self.seen.get(uuid.UUID(doc["_id"])) or await self._from_doc(doc)
            self.seen.setdefault(agg.id, agg)
            out.append(agg)
        return out

    async def retention_due(self, started_before: date, today: date, limit: int = 100) -> list[A]:
        query = {"$or": [{"_retention_start": {"$lte": started_before.isoformat()}, "_withheld": {"$exists": False}},
                         {"_withheld.keep_until": {"$lt": today.isoformat()}}]}
        cursor = self._coll.find(query, session=self._session).limit(limit)
        out = []
        async for doc in cursor:
            agg = await self._from_doc(doc)
            self.seen.setdefault(agg.id, agg)
            out.append(agg)
        return out

    async def save_all(self) -> None:
        for aggregate in self.seen.values():
            loaded = self._loaded.get(aggregate.id)
            if loaded is None:
                aggregate.version = 1
                await self._coll.insert_one(await self._to_doc(aggregate), session=self._session)
            else:
                before, snapshot = loaded
                if aggregate.model_dump(mode="json") == snapshot and aggregate.id not in self._rekeyed:
                    continue  # read, not changed
                aggregate.version = before + 1
                result = await self._coll.replace_one(
                    {"_id": str(aggregate.id), "version": before}, await self._to_doc(aggregate),
                    session=self._session)
                if result.matched_count != 1:
                    raise ConcurrencyError(f"{self.spec.name} {aggregate.id} changed concurrently")
            self._loaded[aggregate.id] = (aggregate.version, aggregate.model_dump(mode="json"))
            self._rekeyed.discard(aggregate.id)

    def rekey(self, aggregate: A, key_id: str, withholding: Withholding) -> None:
        """Keep the record under another key, marked as withheld (it is written on commit)."""
        self.seen[aggregate.id] = aggregate
        self._key_ids[aggregate.id] = key_id
        self.withheld[aggregate.id] = withholding
        self._rekeyed.add(aggregate.id)

    async def delete(self, aggregate: A) -> None:
        await self._coll.delete_one({"_id": str(aggregate.id)}, session=self._session)
        self.seen.pop(aggregate.id, None)
        self._loaded.pop(aggregate.id, None)


class MongoUnitOfWork(UnitOfWork):
    """One transaction in one service database. Use as `async with storage.unit_of_work() as uow:`."""

    def __init__(self, storage: MongoStorage) -> None:
        super().__init__(party=storage.party)
        self._storage = storage
        self._session: AsyncClientSession | None = None
        self._shredded: set[str] = set()  # subjects whose key this unit of work destroyed

    async def __aenter__(self) -> MongoUnitOfWork:
        if self._storage.write_lock is not None:
            await self._storage.write_lock.acquire()
        self._session = self._storage.client.start_session()
        await self._session.__aenter__()
        await self._session.start_transaction()
        self.keys = KeyCache(self._storage.keys, self._session)
        self.repositories = {
            spec.name: MongoRepository(spec, self._storage.db, self._session, self.keys)
            for spec in self._storage.specs
        }
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        assert self._session is not None
        try:
            if self._session.in_transaction:
                await self._session.abort_transaction()
        finally:
            await self._session.__aexit__(None, None, None)
            if self._storage.write_lock is not None:
                self._storage.write_lock.release()
        if exc is not None and not isinstance(exc, ConcurrencyError) and is_transient(exc):
            # The port's word for "retry the whole unit of work": the messaging core knows no driver errors.
            raise ConcurrencyError("the transaction conflicted with another; it may be retried") from exc

    async def processed(self, message_id: str) -> InboxEntry | None:
        doc = await self._storage.db.inbox.find_one({"_id": message_id}, session=self._session)
        if doc is None:
            return None
        return InboxEntry(doc["_id"], doc["kind"], doc["type"], from_bson(doc.get("result")))

    async def lifecycle_trace(self, lifecycle_id: uuid.UUID) -> dict[str, str] | None:
        doc = await self._storage.db.lifecycles.find_one({"_id": str(lifecycle_id)}, session=self._session)
        return doc["trace"] if doc else None

    async def sent_record(self, event_id: uuid.UUID) -> dict[str, Any] | None:
        doc = await self._storage.db.outbox.find_one(
            {"_id": str(event_id)}, {"type": 1, "version": 1, "subject": 1, "retour": 1}, session=self._session)
        if doc is None:
            return None
        return {"type": doc["type"], "version": doc.get("version", 1), "subject": doc.get("subject"),
                "retour": from_bson(doc.get("retour"))}

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
             "retour": from_bson(d.get("retour")),
             "expects_retour": expects_retour(d["type"], d.get("version", 1), d["routing_key"])}
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

    async def confidentiality_statements(self) -> list[ConfidentialityStatement]:
        cursor = self._storage.db.confidentiality.find({}, session=self._session).sort("_id", ASCENDING)
        return [ConfidentialityStatement(staff=d["_id"], signed_on=date.fromisoformat(d["signed_on"]),
                                         recorded_by=d["recorded_by"], recorded_at=d["recorded_at"],
                                         ended_on=date.fromisoformat(d["ended_on"]) if d.get("ended_on") else None)
                async for d in cursor]

    async def save_confidentiality_statement(self, statement: ConfidentialityStatement) -> None:
        await self._storage.db.confidentiality.replace_one(
            {"_id": statement.staff},
            {"signed_on": statement.signed_on.isoformat(), "recorded_by": statement.recorded_by,
             "recorded_at": statement.recorded_at,
             "ended_on": statement.ended_on.isoformat() if statement.ended_on else None},
            upsert=True, session=self._session)

    async def record_dead_letter(self, record: DeadLetterRecord) -> None:
        # $setOnInsert: a message refused again (redelivered, or sent twice) keeps its first record.
        await self._storage.db.dead_letters.update_one(
            {"_id": record.key},
            {"$setOnInsert": {"service": record.service, "reasons": record.reasons,
                              "routing_key": record.routing_key, "at": record.at}},
            upsert=True, session=self._session)

    async def dead_letter_records(self, keys: list[str]) -> list[DeadLetterRecord]:
        cursor = self._storage.db.dead_letters.find({"_id": {"$in": list(keys)}}, session=self._session)
        return [DeadLetterRecord(key=d["_id"], service=d["service"], reasons=d["reasons"],
                                 routing_key=d["routing_key"], at=d["at"]) async for d in cursor]

    async def processing_subjects(self, since: datetime, until: datetime) -> list[str]:
        cursor = self._storage.db.processing_log.find({"time": {"$gte": since, "$lt": until}}, {"subject": 1},
                                                      session=self._session)
        return sorted({doc["subject"] async for doc in cursor if doc.get("subject")})

    async def lifecycle_subjects(self, correlation_id: uuid.UUID) -> list[str]:
        cursor = self._storage.db.processing_log.find(
            {"correlation_id": str(correlation_id), "subject": {"$ne": None}}, {"subject": 1},
            session=self._session).limit(100)
        return sorted({doc["subject"] async for doc in cursor if doc.get("subject")})

    async def commit(self) -> None:
        assert self._session is not None
        db, now = self._storage.db, datetime.now(UTC)
        for repo in self.repositories.values():
            await repo.save_all()  # type: ignore[attr-defined]
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        envelopes = self.new_envelopes()
        if envelopes:
            documents = []
            for env in envelopes:
                # Work outside any one lifecycle (a timer's reminder) continues each message's own lifecycle
                # trace, so that a lifecycle stays one trace.
                env_carrier = carrier
                if self.lifecycle_id is None and (stored := await self.lifecycle_trace(env.correlation_id)):
                    env_carrier = stored
                # A message about a person is encrypted with that person's key: erasure shreds the copy.
                # (Retours and answers about someone just erased carry no personal data: no key of theirs.)
                personal = (spec := lookup(env.type, env.version)) is not None and spec.model.about_a_person
                key_id = (await self.keys.live_key_id(env.subject) if personal and env.subject not in self._shredded
                          else MASTER)
                cipher = await self.keys.cipher(key_id, create=True)
                documents.append({
                    "_id": str(env.id),
                    "type": env.type,
                    "version": env.version,
                    "routing_key": env.routing_key,
                    "correlation_id": str(env.correlation_id),
                    "subject": env.subject,
                    "payload": cipher.encrypt(env.model_dump(mode="json"), str(env.id)),
                    "key": key_id,
                    "trace": env_carrier,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                })
            await db.outbox.insert_many(documents, session=self._session)
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

    # -- data-subject rights -----------------------------------------------------------------------

    async def subject_state(self, subject: str) -> SubjectState:
        doc = await self._storage.db.subjects.find_one({"_id": subject}, session=self._session)
        if doc is None:
            return SubjectState(subject)
        return SubjectState(subject, doc.get("erased_at"), doc.get("restricted_since"), doc.get("objected_since"))

    async def excluded_subjects(self) -> dict[str, Reason]:
        query = {"erased_at": None, "$or": [{"restricted_since": {"$ne": None}}, {"objected_since": {"$ne": None}}]}
        out = {}
        async for doc in self._storage.db.subjects.find(query, session=self._session):
            reason = SubjectState(doc["_id"], None, doc.get("restricted_since"), doc.get("objected_since")).refusal()
            if reason is not None:
                out[doc["_id"]] = reason
        return out

    async def save_subject_state(self, state: SubjectState) -> None:
        await self._storage.db.subjects.update_one(  # (the key generation kept there stays as it is)
            {"_id": state.subject},
            {"$set": {"erased_at": state.erased_at, "restricted_since": state.restricted_since,
                      "objected_since": state.objected_since, "updated_at": datetime.now(UTC)}},
            upsert=True, session=self._session)

    async def erase_record(self, repository: str, aggregate: Aggregate) -> None:
        await self.repositories[repository].delete(aggregate)  # type: ignore[attr-defined]

    async def withhold_record(self, repository: str, aggregate: Aggregate, withholding: Withholding) -> None:
        subject = getattr(aggregate, "subject", None)
        key_id = retained_key_id(subject) if subject else MASTER
        await self.keys.cipher(key_id, create=True)
        self.repositories[repository].rekey(aggregate, key_id, withholding)  # type: ignore[attr-defined]

    async def shred_subject(self, subject: str, *, retained_too: bool = False) -> int:
        db = self._storage.db
        await self.repositories_flush()
        key_id = await self.keys.live_key_id(subject)
        await self._storage.keys.destroy(key_id, self._session)
        self.keys.forget(key_id)
        await self.keys.next_generation(subject)  # what comes later gets a key of a new id, never this one again
        self._shredded.add(subject)
        if retained_too:
            await self._storage.keys.destroy(retained_key_id(subject), self._session)
            self.keys.forget(retained_key_id(subject))
        # The stored replies to commands about them (a referral's view, kept to answer a repeated command the same
        # way) are emptied; the inbox ids stay, so a repeated command is still recognised. (No index: a scan of
        # the 90 days' inbox, once per erasure.)
        await db.inbox.update_many({"result.result.subject": subject}, {"$set": {"result.result": None}},
                                   session=self._session)
        # Messages about them not yet sent are never sent: they would carry erased data to the receiver.
        await db.outbox.update_many({"subject": subject, "status": "pending"},
                                    {"$set": {"status": "shredded", "expire_at": datetime.now(UTC) + OUTBOX_RETENTION}},
                                    session=self._session)
        return await db.outbox.count_documents({"subject": subject, "key": key_id}, session=self._session)

    async def rectify_copies(self, subject: str, corrections: dict[str, Any]) -> int:
        db = self._storage.db
        # Sent: the receiver has it, and what the sender must keep is the delivery record (`deliveries`, the
        # retours), not a readable copy of the old values.
        dropped = await db.outbox.update_many(
            {"subject": subject, "status": {"$ne": "pending"}, "key": {"$ne": MASTER}, "payload": {"$exists": True}},
            {"$unset": {"payload": ""}, "$set": {"payload_dropped": "rectification"}}, session=self._session)
        # Not yet sent: it goes with the corrected values (re-encrypted under the same key).
        async for doc in db.outbox.find({"subject": subject, "status": "pending", "key": {"$ne": MASTER}},
                                        {"payload": 1, "key": 1}, session=self._session):
            cipher = await self.keys.cipher(doc["key"])
            if cipher is None or "payload" not in doc:
                continue
            envelope = cipher.decrypt(doc["payload"], doc["_id"])
            envelope["data"] = corrected_copy(envelope.get("data"), corrections)
            await db.outbox.update_one({"_id": doc["_id"], "status": "pending"},
                                       {"$set": {"payload": cipher.encrypt(envelope, doc["_id"])}},
                                       session=self._session)
        return dropped.modified_count

    async def repositories_flush(self) -> None:
        """Write re-keyed (withheld) records before the key they were encrypted with is destroyed."""
        for repo in self.repositories.values():
            await repo.save_all()  # type: ignore[attr-defined]

    async def readable_about(self, subject: str) -> list[str]:
        db = self._storage.db
        candidates: list[tuple[str, str | None]] = []  # (collection/id, the key it needs or None: plain)
        for spec in self._storage.specs:
            if not spec.about_subjects:
                continue
            async for doc in db[spec.name].find({"subject": subject}, {"_key": 1, "_enc": 1}, session=self._session):
                # A record is readable when it has no encrypted part or its key still exists; a record
                # without an encrypted part is pseudonymous data about the subject and counts as readable.
                needs = (doc.get("_key") or live_key_id(subject)) if "_enc" in doc else None
                candidates.append((f"{spec.name}/{doc['_id']}", needs))
        # An outbox copy is readable while it has its payload and the subject's key it names exists (copies under
        # the master key carry no personal data; a sent copy whose payload was dropped carries nothing).
        async for doc in db.outbox.find({"subject": subject, "payload": {"$exists": True}, "key": {"$ne": MASTER}},
                                        {"key": 1}, session=self._session):
            candidates.append((f"outbox/{doc['_id']}", doc.get("key", live_key_id(subject))))
        keys = await self._storage.keys.ciphers({k for _, k in candidates if k}, self._session)
        return [item for item, needs in candidates if needs is None or keys.get(needs) is not None]


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
        self.keys = SubjectKeys(self.db, cipher)
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
        collections = {"outbox", "inbox", "lifecycles", "processing_log", "subjects", "subject_keys", "confidentiality",
                       "dead_letters"}
        for name in (collections | {s.name for s in self.specs}) - existing:
            # Collections must exist before a transaction writes to them on MongoDB < 4.4.
            await db.create_collection(name)
        await db.outbox.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await db.outbox.create_index([("correlation_id", ASCENDING)])
        await db.outbox.create_index([("subject", ASCENDING)])
        await db.outbox.create_index("expire_at", expireAfterSeconds=0)
        await db.inbox.create_index("expire_at", expireAfterSeconds=0)
        for fields in (("subject", "time"), ("trace_id",), ("correlation_id", "time"), ("activity_id", "time"),
                       ("time",)):
            await db.processing_log.create_index([(f, ASCENDING) for f in fields])
        for spec in self.specs:
            if spec.retention:
                await db[spec.name].create_index([("_retention_start", ASCENDING)])
                await db[spec.name].create_index([("_withheld.keep_until", ASCENDING)])
            for fields in spec.indexes:
                await db[spec.name].create_index([(f, ASCENDING) for f in fields])
            for fields in spec.unique_indexes:
                await db[spec.name].create_index([(f, ASCENDING) for f in fields], unique=True)
