"""The processing log, modelled on the Dutch standard Logboek Dataverwerkingen.

Every processing of personal data writes one record per data subject, in the same transaction as the
state change it accounts for (no change without its record, no record without its change), in the
processing party's own database. Never sampled. Records name only the pseudonym, never a BSN.

Trace and span ids are OpenTelemetry's (W3C trace context), so records of different parties that
belong to one flow share a trace id, and a record triggered by another party's message names that
party and the span that sent it (`foreign`), as the standard's cross-organisation link.

Each record says what kind of processing it was (`kind`): a `change` (an event, a command), a `read` (a query),
or a `personal_data_read` (a query whose answer shows personal data, the processing log's own history of
persons included). Refused attempts are recorded too (`status` "refused", with their reason codes): a command
or query refused for who gave it or by its handler, naming the actor only when the staff register knows them
(otherwise `UNKNOWN_ACTOR`), and its subject when the service knows the referral or request it names; an
attempt about no subject the service knows is one record without a subject (found by trace, referral or
activity, never in a subject's access answer).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from opentelemetry import trace
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.contracts.parties import Party
from shared.privacy.pseudonym import PSEUDONYM_PATTERN
from shared.privacy.register import Activity

Kind = Literal["change", "read", "personal_data_read"]
# The actor of a refused attempt whose claimed actor is not a member in force of the party's staff register (or
# none was named, or the sender was not the party): never the claimed string itself. Not a valid staff id.
UNKNOWN_ACTOR = "(unknown)"


@dataclass
class Processing:
    """What the messaging core knows about the processing in hand; the unit of work turns it into records."""

    activity: Activity
    operation: str  # "<service>.<handler>"
    service: str
    started_at: datetime
    message_id: str | None = None  # the event or command that caused it
    message_type: str | None = None  # "quote.sent.v2", "command:send_quote", "query:get_referral"
    correlation_id: uuid.UUID | None = None  # the referral (lifecycle)
    foreign_party: Party | None = None  # the other party whose message triggered it
    foreign_span_id: str | None = None
    status: Literal["ok", "refused"] = "ok"
    subjects: set[str] = field(default_factory=set)
    actor: str | None = None  # the staff member whose command it was (art 8); None for messages and timers
    kind: Kind = "change"
    reasons: list[str] = field(default_factory=list)  # reason codes of a refused command or query

    def span_ids(self) -> tuple[str, str]:
        ctx = trace.get_current_span().get_span_context()
        return (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}") if ctx.is_valid else ("0" * 32, "0" * 16)


class ForeignLink(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    party: Party
    span_id: str | None


class ProcessingRecord(BaseModel):
    """One processing of one subject's data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    subject: str | None = Field(pattern=PSEUDONYM_PATTERN)  # None: a refused attempt about no known subject
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    span_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    activity_id: str
    activity_version: int
    legal_basis: str
    party: Party
    service: str
    operation: str
    status: Literal["ok", "refused"]
    started_at: AwareDatetime
    time: AwareDatetime
    correlation_id: uuid.UUID | None = None
    message_id: str | None = None
    message_type: str | None = None
    emitted: list[uuid.UUID] = Field(default_factory=list)
    foreign: ForeignLink | None = None
    actor: str | None = None
    kind: Kind
    reasons: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _kind_of_older_records(cls, data: Any) -> Any:
        """Records written before `kind` existed: a query's was a read (whether it showed personal data was not
        recorded then), anything else a change."""
        if isinstance(data, dict) and "kind" not in data:
            read = str(data.get("message_type") or "").startswith("query:")
            data = {**data, "kind": "read" if read else "change"}
        return data


def records_for(processing: Processing, subjects: set[str], emitted: list[uuid.UUID], now: datetime,
                new_id) -> list[ProcessingRecord]:
    trace_id, span_id = processing.span_ids()
    foreign = (ForeignLink(party=processing.foreign_party, span_id=processing.foreign_span_id)
               if processing.foreign_party else None)
    return [
        ProcessingRecord(
            id=new_id(), subject=subject, trace_id=trace_id, span_id=span_id,
            activity_id=processing.activity.id, activity_version=processing.activity.version,
            legal_basis=processing.activity.legal_basis.value, party=processing.activity.party,
            service=processing.service, operation=processing.operation, status=processing.status,
            started_at=processing.started_at, time=now, correlation_id=processing.correlation_id,
            message_id=processing.message_id, message_type=processing.message_type, emitted=emitted,
            foreign=foreign, actor=processing.actor, kind=processing.kind, reasons=list(processing.reasons),
        )
        for subject in _subjects_of(processing, subjects)
    ]


def _subjects_of(processing: Processing, subjects: set[str]) -> list[str | None]:
    """One record per subject; a refused attempt (with its reasons) about no subject is one record without."""
    if not subjects and processing.status == "refused" and processing.reasons:
        return [None]
    return sorted(subjects)


def parent_span_of(traceparent: str | None) -> str | None:
    """The sending span's id from a W3C traceparent header (00-<trace>-<span>-<flags>)."""
    if not traceparent:
        return None
    parts = str(traceparent).split("-")
    return parts[2] if len(parts) == 4 and len(parts[2]) == 16 else None
