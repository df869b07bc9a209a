"""The in-memory store: the unit of work and repositories held in process memory (cosmicpython's fake
repository, pyeventsourcing's POPO recorder), product code beside the MongoDB store. The unit tests run the
services on it, and the benchmark's storage-free hop.

`MemoryStore` holds the committed state of one service's database: aggregates per repository, the inbox,
the outbox (the envelopes committed units of work emitted), the retour answers recorded on outbox
records, and the lifecycle trace contexts. Every `MemoryUnitOfWork` opened on a store sees that same
state, so a pipeline can open as many units of work as it likes.

A unit of work works on copies: an aggregate read through a `MemoryRepository` is a deep copy of the
stored one, and nothing reaches the store until `commit()`. A unit of work left without a commit
(a refusal, an exception) therefore changes nothing, like an aborted transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from opentelemetry import propagate

from shared.contracts.commands import ReadProcessingLog
from shared.contracts.envelope import Envelope, expects_retour
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason
from shared.domain import Aggregate, Withholding, corrected_copy
from shared.privacy.processing_log import ProcessingRecord
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

_MISSING = object()


class MemoryRepository(Repository[A]):
    """A repository over a dict of committed aggregates (shared with the store), handing out copies."""

    def __init__(self, spec: RepositorySpec[A], rows: dict[uuid.UUID, A],
                 withheld: dict[uuid.UUID, Withholding] | None = None) -> None:
        super().__init__(spec)
        self._rows = rows
        self._withheld = withheld if withheld is not None else {}
        self.erased: set[uuid.UUID] = set()  # deleted in this unit of work (gone on commit)
        # id -> (version, snapshot) of what this unit of work read
        self._loaded: dict[uuid.UUID, tuple[int, dict[str, Any]]] = {}

    def _load(self, stored: A) -> A:
        copy = stored.model_copy(deep=True)
        self._loaded[copy.id] = (copy.version, copy.model_dump(mode="json"))
        if copy.id in self._withheld:
            self.withheld[copy.id] = self._withheld[copy.id]
        return copy

    async def retention_due(self, started_before: date, today: date, limit: int = 100) -> list[A]:
        out = []
        for stored in list(self._rows.values()):
            withheld = self._withheld.get(stored.id)
            start = stored.retention_start()
            if (withheld and withheld.keep_until < today) or (not withheld and start and start <= started_before):
                aggregate = self.seen.get(stored.id) or self._load(stored)
                self.seen.setdefault(aggregate.id, aggregate)
                out.append(aggregate)
        return out[:limit]

    async def _get(self, aggregate_id: uuid.UUID) -> A | None:
        stored = self._rows.get(aggregate_id)
        return None if stored is None else self._load(stored)

    async def _find(self, limit: int = 100, **equals: Any) -> list[A]:
        """Committed aggregates whose attributes equal the given values (or are in a given list),
        newest (last inserted) first."""
        out: list[A] = []
        for stored in reversed(list(self._rows.values())):
            if len(out) >= limit:
                break
            if stored.id in self.erased:
                continue
            if all(_matches(getattr(stored, name, _MISSING), value) for name, value in equals.items()):
                aggregate = self.seen.get(stored.id) or self._load(stored)
                self.seen.setdefault(aggregate.id, aggregate)
                out.append(aggregate)
        return out

    def pending_writes(self) -> list[A]:
        """The aggregates to write on commit (new or changed), checked for concurrent changes."""
        writes: list[A] = []
        for aggregate in self.seen.values():
            stored = self._rows.get(aggregate.id)
            loaded = self._loaded.get(aggregate.id)
            if loaded is None:
                if stored is not None:
                    raise RuntimeError(f"{self.spec.name} {aggregate.id} inserted twice (duplicate key)")
                writes.append(aggregate)
                continue
            before, snapshot = loaded
            if aggregate.model_dump(mode="json") == snapshot:
                continue  # read, not changed
            if stored is None or stored.version != before:
                raise ConcurrencyError(f"{self.spec.name} {aggregate.id} changed concurrently")
            writes.append(aggregate)
        return writes

    def write(self, aggregate: A) -> None:
        loaded = self._loaded.get(aggregate.id)
        aggregate.version = 1 if loaded is None else loaded[0] + 1
        snapshot = aggregate.model_dump(mode="json")
        # What is stored is what a round trip through the database gives back: a separate object, built
        # from the serialised form (cheaper than a deep copy, and it fails on state that cannot be stored).
        self._rows[aggregate.id] = type(aggregate).model_validate(snapshot)
        self._loaded[aggregate.id] = (aggregate.version, snapshot)


class MemoryStore:
    """The committed state of one service's database, shared by every unit of work opened on it."""

    def __init__(self, party: Party, specs: Iterable[RepositorySpec] = ()) -> None:
        self.party = party
        self.specs = list(specs)
        self.rows: dict[str, dict[uuid.UUID, Aggregate]] = {spec.name: {} for spec in self.specs}
        self.inbox: dict[str, InboxEntry] = {}
        self.outbox: list[Envelope] = []
        self.retours: dict[uuid.UUID, dict[str, Any]] = {}
        self.lifecycles: dict[uuid.UUID, dict[str, str]] = {}
        self.processing_log: list[ProcessingRecord] = []
        self.subject_states: dict[str, SubjectState] = {}
        self.statements: dict[str, ConfidentialityStatement] = {}
        self.dead_letters: dict[str, DeadLetterRecord] = {}
        self.withheld: dict[str, dict[uuid.UUID, Withholding]] = {spec.name: {} for spec in self.specs}
        self.keys: set[str] = set()  # subjects with a live data key (they get one when first written about)
        self.shredded: set[str] = set()
        self.commits = 0

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    # -- reading helpers for assertions ------------------------------------------------------------

    def aggregates(self, name: str) -> list[Aggregate]:
        return list(self.rows[name].values())

    def outbox_of(self, event_type: str) -> list[Envelope]:
        return [e for e in self.outbox if e.type == event_type]

    @property
    def retours_sent(self) -> list[Envelope]:
        return self.outbox_of("retour.issued")


class MemoryUnitOfWork(UnitOfWork):
    """A unit of work in memory. `commit()` writes aggregates, outbox, inbox and lifecycle atomically."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(party=store.party)
        self.store = store
        self.repositories = {spec.name: MemoryRepository(spec, store.rows[spec.name], store.withheld[spec.name])
                             for spec in store.specs}
        self.committed = False
        self._retour_answers: dict[uuid.UUID, dict[str, Any]] = {}
        self._states: dict[str, SubjectState] = {}
        self._statements: dict[str, ConfidentialityStatement] = {}
        self._dead_letters: dict[str, DeadLetterRecord] = {}
        self._erased: list[tuple[str, uuid.UUID]] = []
        self._withhold: list[tuple[str, uuid.UUID, Withholding]] = []
        self._shred: set[str] = set()
        self._rectify: list[tuple[str, dict[str, Any]]] = []

    async def subject_state(self, subject: str) -> SubjectState:
        if subject in self._states:
            return self._states[subject]
        stored = self.store.subject_states.get(subject)
        return SubjectState(**vars(stored)) if stored else SubjectState(subject)

    async def excluded_subjects(self) -> dict[str, Reason]:
        states = {**self.store.subject_states, **self._states}
        return {subject: reason for subject, state in states.items()
                if state.erased_at is None and (reason := state.refusal()) is not None}

    async def save_subject_state(self, state: SubjectState) -> None:
        self._states[state.subject] = SubjectState(**vars(state))

    async def erase_record(self, repository: str, aggregate: Aggregate) -> None:
        self.repositories[repository].seen.pop(aggregate.id, None)
        self.repositories[repository].erased.add(aggregate.id)
        self._erased.append((repository, aggregate.id))

    async def withhold_record(self, repository: str, aggregate: Aggregate, withholding: Withholding) -> None:
        self._withhold.append((repository, aggregate.id, withholding))

    async def shred_subject(self, subject: str, *, retained_too: bool = False) -> int:
        self._shred.add(subject)
        return sum(1 for e in self.store.outbox if e.subject == subject)

    async def rectify_copies(self, subject: str, corrections: dict[str, Any]) -> int:
        """In memory every outbox copy counts as not yet sent: each is corrected on commit."""
        self._rectify.append((subject, dict(corrections)))
        return 0

    async def readable_about(self, subject: str) -> list[str]:
        erased = set(self._erased)
        return [f"{name}/{agg.id}" for name, rows in self.store.rows.items() for agg in rows.values()
                if getattr(agg, "subject", None) == subject and (name, agg.id) not in erased]

    async def processed(self, message_id: str) -> InboxEntry | None:
        return self.store.inbox.get(message_id)

    async def lifecycle_trace(self, lifecycle_id: uuid.UUID) -> dict[str, str] | None:
        return self.store.lifecycles.get(lifecycle_id)

    async def sent_record(self, event_id: uuid.UUID) -> dict[str, Any] | None:
        sent = next((e for e in self.store.outbox if e.id == event_id), None)
        if sent is None:
            return None
        retour = self._retour_answers.get(event_id, self.store.retours.get(event_id))
        return {"type": sent.type, "version": sent.version, "subject": sent.subject,
                "retour": dict(retour) if retour is not None else None}

    async def record_retour(self, about_event_id: uuid.UUID, answer: dict[str, Any]) -> bool:
        if about_event_id is None or not any(e.id == about_event_id for e in self.store.outbox):
            return False
        self._retour_answers[about_event_id] = dict(answer)
        return True

    async def deliveries(self, correlation_id: uuid.UUID) -> list[dict[str, Any]]:
        return [
            {"event_id": str(e.id), "type": e.type, "status": "pending", "routing_key": e.routing_key,
             "retour": self.store.retours.get(e.id), "expects_retour": expects_retour(e.type, e.version, e.routing_key)}
            for e in self.store.outbox
            if e.correlation_id == correlation_id and e.type != "retour.issued"
        ]

    async def read_processing_log(self, query: ReadProcessingLog) -> list[ProcessingRecord]:
        def matches(r: ProcessingRecord) -> bool:
            return all((
                query.subject in (None, r.subject), query.trace_id in (None, r.trace_id),
                query.activity_id in (None, r.activity_id), query.correlation_id in (None, r.correlation_id),
                query.since is None or r.time >= query.since, query.until is None or r.time < query.until,
            ))

        return [r for r in self.store.processing_log if matches(r)][: query.limit]

    async def confidentiality_statements(self) -> list[ConfidentialityStatement]:
        return sorted({**self.store.statements, **self._statements}.values(), key=lambda s: s.staff)

    async def save_confidentiality_statement(self, statement: ConfidentialityStatement) -> None:
        self._statements[statement.staff] = statement

    async def processing_subjects(self, since: datetime, until: datetime) -> list[str]:
        return sorted({r.subject for r in self.store.processing_log if since <= r.time < until and r.subject})

    async def lifecycle_subjects(self, correlation_id: uuid.UUID) -> list[str]:
        return sorted({r.subject for r in self.store.processing_log
                       if r.correlation_id == correlation_id and r.subject})

    async def record_dead_letter(self, record: DeadLetterRecord) -> None:
        self._dead_letters.setdefault(record.key, record)

    async def dead_letter_records(self, keys: list[str]) -> list[DeadLetterRecord]:
        every = {**self._dead_letters, **self.store.dead_letters}
        return [every[k] for k in keys if k in every]

    async def commit(self) -> None:
        store = self.store
        # Check everything first, so that a failed commit writes nothing.
        if self.inbox is not None and self.inbox.message_id in store.inbox:
            raise DuplicateMessage(self.inbox.message_id)
        writes = [(repo, aggregate) for repo in self.repositories.values()
                  for aggregate in repo.pending_writes()]
        envelopes = self.new_envelopes()
        records = self.processing_records(envelopes, datetime.now(UTC))
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        # Then write.
        for repo, aggregate in writes:
            repo.write(aggregate)
        for name, aggregate_id in self._erased:
            store.rows[name].pop(aggregate_id, None)
            store.withheld[name].pop(aggregate_id, None)
        for name, aggregate_id, withholding in self._withhold:
            store.withheld[name][aggregate_id] = withholding
        store.subject_states.update(self._states)
        store.statements.update(self._statements)
        for key, record in self._dead_letters.items():
            store.dead_letters.setdefault(key, record)
        store.shredded |= self._shred
        store.keys -= self._shred
        store.keys |= {e.subject for e in envelopes if e.subject and e.subject not in self._shred}
        for subject, corrections in self._rectify:
            store.outbox = [e.model_copy(update={"data": corrected_copy(e.data, corrections)})
                            if e.subject == subject else e for e in store.outbox]
        store.outbox.extend(envelopes)
        store.processing_log.extend(records)
        store.retours.update(self._retour_answers)
        if self.lifecycle_id is not None and carrier and self.lifecycle_id not in store.lifecycles:
            store.lifecycles[self.lifecycle_id] = carrier
        if self.inbox is not None:
            store.inbox[self.inbox.message_id] = self.inbox
        store.commits += 1
        self.committed = True




def _matches(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, list | tuple | set | frozenset):
        return actual in wanted
    return actual == wanted
