"""The unit of work and repository abstractions that handlers are written against.

A handler gets a unit of work, reads and changes aggregates through its repositories and returns.
The messaging core commits: aggregates, the outbox records of the events they emitted, and the inbox
record of the message that caused it all, atomically. `shared.storage.mongo` implements this on
MongoDB; `shared/storage/memory.py` implements it in memory (unit tests, the benchmark).
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from shared.contracts.commands import ReadProcessingLog
from shared.contracts.envelope import Envelope
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate, Outgoing, Withholding
from shared.ids import uuid7
from shared.privacy.processing_log import Processing, ProcessingRecord, records_for

A = TypeVar("A", bound=Aggregate)


class ConcurrencyError(Exception):
    """Another transaction changed the aggregate first, or the store reports a transient transaction error: the
    whole unit of work is retried."""


class DuplicateMessage(Exception):
    """The message was handled by a concurrent transaction (inbox unique index)."""


@dataclass(frozen=True)
class RepositorySpec(Generic[A]):
    """How one aggregate type is stored: collection, personal fields to encrypt, extra indexes."""

    name: str
    model: type[A]
    encrypted: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    unique_indexes: tuple[tuple[str, ...], ...] = ()
    retention: str | None = None  # the register activity (its name) whose retention period applies

    @property
    def about_subjects(self) -> bool:
        """Its records name a data subject (field `subject`): subject-rights requests and retention reach it."""
        return "subject" in self.model.model_fields


@dataclass
class ConfidentialityStatement:
    """A staff member signed a confidentiality statement (agreement art 8); it applies from `signed_on` until
    `ended_on` (exclusive)."""

    staff: str
    signed_on: date
    recorded_by: str
    recorded_at: datetime
    ended_on: date | None = None

    def applies_on(self, day: date) -> bool:
        return self.signed_on <= day and (self.ended_on is None or day < self.ended_on)


@dataclass
class SubjectState:
    """What a service must respect about one data subject before it processes their data."""

    subject: str
    erased_at: datetime | None = None  # art 17: nothing new is stored about them
    restricted_since: datetime | None = None  # art 18: stored, not processed
    objected_since: datetime | None = None  # art 21: public-task processing stopped

    def refusal(self) -> Reason | None:
        if self.erased_at is not None:
            return Reason(code=ReasonCode.SUBJECT_ERASED, field="subject", detail="the subject's data was erased")
        if self.restricted_since is not None:
            return Reason(code=ReasonCode.SUBJECT_RESTRICTED, field="subject", detail="processing restricted (art 18)")
        if self.objected_since is not None:
            return Reason(code=ReasonCode.SUBJECT_RESTRICTED, field="subject", detail="the subject objected (art 21)")
        return None


class Repository(abc.ABC, Generic[A]):
    def __init__(self, spec: RepositorySpec[A]) -> None:
        self.spec = spec
        self.seen: dict[uuid.UUID, A] = {}
        self.withheld: dict[uuid.UUID, Withholding] = {}  # loaded records kept despite an erasure request
        # Subjects left out of this unit of work's processing (art 18, 21), set by the messaging core: their
        # records are not found, and asking for one by id is refused. `left_out` counts what was passed over.
        self.hidden: dict[str, Reason] = {}
        self.left_out: set[uuid.UUID] = set()

    def add(self, aggregate: A) -> None:
        self.seen[aggregate.id] = aggregate

    def forget(self, aggregate_id: uuid.UUID) -> None:
        """Leave a record this unit of work read out of it: it is not written, and its subject is not one this
        unit of work touched (a report that skips a restricted person's record, h5)."""
        self.seen.pop(aggregate_id, None)

    async def get(self, aggregate_id: uuid.UUID) -> A | None:
        if aggregate_id in self.seen:
            return self.seen[aggregate_id]
        found = await self._get(aggregate_id)
        if found is not None and (reason := self.hidden.get(getattr(found, "subject", None) or "")):
            self.left_out.add(found.id)
            raise Refusal(reason)  # this record's subject is excluded from this processing
        if found is not None:
            self.seen[found.id] = found
        return found

    async def find(self, limit: int = 100, **equals: Any) -> list[A]:
        """Aggregates whose plain (unencrypted) fields equal the given values (or are in a given list),
        newest first (ids are time-ordered UUIDv7); those of hidden subjects left out."""
        if not self.hidden:
            return await self._find(limit, **equals)
        before = set(self.seen)
        found = await self._find(limit + len(self.hidden), **equals)  # room for the ones left out
        visible = []
        for aggregate in found:
            if getattr(aggregate, "subject", None) in self.hidden:
                self.left_out.add(aggregate.id)
                if aggregate.id not in before:
                    self.seen.pop(aggregate.id, None)  # not processed: no log record, nothing written
            else:
                visible.append(aggregate)
        return visible[:limit]

    async def require(self, aggregate_id: uuid.UUID, *, subject: str | None = None) -> A:
        """The aggregate, or a refusal: an unknown referral, or one that is not the given subject's
        (a message naming a referral must be about that referral's person)."""
        aggregate = await self.get(aggregate_id)
        if aggregate is None:
            raise Refusal(ReasonCode.UNKNOWN_REFERRAL)
        if subject is not None and getattr(aggregate, "subject", None) != subject:
            raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="subject", detail="not this referral's subject"))
        return aggregate

    @abc.abstractmethod
    async def _get(self, aggregate_id: uuid.UUID) -> A | None: ...

    @abc.abstractmethod
    async def retention_due(self, started_before: date, today: date, limit: int = 100) -> list[A]:
        """Records the retention job must destroy: their retention period started on or before
        `started_before` (and they are not withheld), or they were withheld until before `today`."""

    @abc.abstractmethod
    async def _find(self, limit: int = 100, **equals: Any) -> list[A]:
        """Aggregates whose plain (unencrypted) fields equal the given values (or are in a given list),
        newest first (ids are time-ordered UUIDv7)."""


@dataclass
class InboxEntry:
    """The tracking record of one handled message (pyeventsourcing's notification tracking)."""

    message_id: str
    kind: str  # "event" | "command" | "retour"
    type: str
    result: dict[str, Any] | None = None


@dataclass
class DeadLetterRecord:
    """What a service records when it refuses a message that the broker then dead-letters to its parking
    queue (the service rejects it; it never publishes a dead letter). Keyed by a digest of the message id
    and body, so the parked message can be matched; holds only what the service decided (codes, schema
    paths), the routing key the broker delivered it on, and when. Nothing copied from the message."""

    key: str
    service: str
    reasons: list[dict[str, Any]]
    routing_key: str
    at: datetime


@dataclass
class UnitOfWork(abc.ABC):
    party: Party
    repositories: dict[str, Repository] = field(default_factory=dict)
    extra_events: list[Outgoing] = field(default_factory=list)
    inbox: InboxEntry | None = None
    causation_id: uuid.UUID | None = None
    lifecycle_id: uuid.UUID | None = None  # set to record this lifecycle's trace context on commit
    processing: Processing | None = None  # set by the messaging core: the commit writes its log records

    def __getattr__(self, name: str) -> Repository:
        repos = self.__dict__.get("repositories", {})
        if name in repos:
            return repos[name]
        raise AttributeError(name)

    def emit(self, outgoing: Outgoing) -> None:
        """Emit an event that belongs to no aggregate (retours)."""
        self.extra_events.append(outgoing)

    def collect_new_events(self) -> Iterator[Outgoing]:
        for repo in self.repositories.values():
            for aggregate in repo.seen.values():
                yield from aggregate.pop_events()
        yield from self.extra_events
        self.extra_events = []

    def new_envelopes(self) -> list[Envelope]:
        """The events emitted in this unit of work, wrapped as this party's envelopes."""
        return [
            Envelope.wrap(
                o.data,
                source=self.party,
                subject=o.subject,
                correlation_id=o.correlation_id,
                causation_id=self.causation_id,
                recipient=o.to,
            )
            for o in self.collect_new_events()
        ]

    def touched_subjects(self, envelopes: list[Envelope] = ()) -> set[str]:
        """The data subjects whose records this unit of work read or changed, or whom it sends messages about."""
        subjects = set(self.processing.subjects) if self.processing else set()
        for repo in self.repositories.values():
            subjects |= {s for agg in repo.seen.values() if (s := getattr(agg, "subject", None))}
        subjects |= {env.subject for env in envelopes if env.subject}
        return subjects

    def processing_records(self, envelopes: list[Envelope], now: datetime) -> list[ProcessingRecord]:
        """One processing-log record per data subject this unit of work touched."""
        if self.processing is None:
            return []
        return records_for(self.processing, self.touched_subjects(envelopes), [env.id for env in envelopes], now,
                           uuid7)

    # -- data-subject rights -----------------------------------------------------------------------

    @abc.abstractmethod
    async def subject_state(self, subject: str) -> SubjectState:
        """The subject's erasure, restriction and objection state (a blank state when none was recorded)."""

    @abc.abstractmethod
    async def save_subject_state(self, state: SubjectState) -> None: ...

    @abc.abstractmethod
    async def excluded_subjects(self) -> dict[str, Reason]:
        """The subjects whose processing is restricted (art 18) or objected to (art 21) at this service, each
        with the reason: they are left out of processing that is not about their rights."""

    async def exclude_restricted(self) -> None:
        """Leave restricted and objecting subjects out of this unit of work (the messaging core calls this
        before an ordinary command or query): they are not found, and naming one is refused."""
        hidden = await self.excluded_subjects()
        for repo in self.repositories.values():
            repo.hidden = hidden

    @abc.abstractmethod
    async def erase_record(self, repository: str, aggregate: Aggregate) -> None:
        """Delete one record (art 17)."""

    @abc.abstractmethod
    async def withhold_record(self, repository: str, aggregate: Aggregate, withholding: Withholding) -> None:
        """Keep one record despite erasure, under the subject's retained key, marked with its ground."""

    @abc.abstractmethod
    async def shred_subject(self, subject: str, *, retained_too: bool = False) -> int:
        """Destroy the subject's data key (crypto-shredding): every copy encrypted with it becomes unreadable,
        and messages about them not yet sent are never sent. Returns how many outbox copies it made unreadable."""

    @abc.abstractmethod
    async def rectify_copies(self, subject: str, corrections: dict[str, Any]) -> int:
        """After a rectification (art 16): the outbox copies about the subject no longer carry the old values. A
        message already sent keeps its delivery record (type, routing, status, retour) but not its payload; one
        not yet sent is corrected before it goes. Returns how many sent copies lost their payload."""

    @abc.abstractmethod
    async def readable_about(self, subject: str) -> list[str]:
        """What this service can still read on the subject: `collection/record id` of each record or message."""

    @abc.abstractmethod
    async def processed(self, message_id: str) -> InboxEntry | None:
        """The inbox entry of a message already handled, or None."""

    @abc.abstractmethod
    async def lifecycle_trace(self, lifecycle_id: uuid.UUID) -> dict[str, str] | None:
        """The W3C trace context recorded when the lifecycle began, or None."""

    @abc.abstractmethod
    async def sent_record(self, event_id: uuid.UUID) -> dict[str, Any] | None:
        """What this service's outbox holds about an event it sent: `type`, `version`, `subject` and the
        `retour` recorded so far (None when not yet answered); None if this service never sent it (or
        the record's retention ended)."""

    @abc.abstractmethod
    async def record_retour(self, about_event_id: uuid.UUID, answer: dict[str, Any]) -> bool:
        """Note on our outbox record how the receiver answered it. False if we never sent it."""

    @abc.abstractmethod
    async def deliveries(self, correlation_id: uuid.UUID) -> list[dict[str, Any]]:
        """What this service sent in a lifecycle, and how each was answered (read side)."""

    @abc.abstractmethod
    async def read_processing_log(self, query: ReadProcessingLog) -> list[ProcessingRecord]:
        """Processing-log records matching a filtered query, oldest first."""

    # -- confidentiality statements (agreement art 8) ------------------------------------------------

    @abc.abstractmethod
    async def confidentiality_statements(self) -> list[ConfidentialityStatement]:
        """The party's confidentiality statements this service knows, by staff id."""

    @abc.abstractmethod
    async def save_confidentiality_statement(self, statement: ConfidentialityStatement) -> None: ...

    @abc.abstractmethod
    async def processing_subjects(self, since: datetime, until: datetime) -> list[str]:
        """The distinct subjects of the processing-log records in [since, until), sorted."""

    @abc.abstractmethod
    async def lifecycle_subjects(self, correlation_id: uuid.UUID) -> list[str]:
        """The subjects this service processed in a lifecycle (a referral, a request), from its processing log:
        whom a refused attempt naming that lifecycle concerns. Empty for a lifecycle the service does not know."""

    # -- dead letters ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def record_dead_letter(self, record: DeadLetterRecord) -> None:
        """Record why a message is refused and dead-lettered (in this transaction); once per key."""

    @abc.abstractmethod
    async def dead_letter_records(self, keys: list[str]) -> list[DeadLetterRecord]:
        """The recorded dead letters with these keys."""

    @abc.abstractmethod
    async def commit(self) -> None: ...

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
