"""The processing log, modelled on the Dutch standard Logboek Dataverwerkingen.

Every processing of personal data writes one record per data subject, in the same transaction as the
state change it accounts for (no change without its record, no record without its change), in the
processing party's own database. Never sampled. Records name only the pseudonym, never a BSN.

Trace and span ids are OpenTelemetry's (W3C trace context), so records of different parties that
belong to one flow share a trace id, and a record triggered by another party's message names that
party and the span that sent it (`foreign`), as the standard's cross-organisation link.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from opentelemetry import trace
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.parties import Party
from shared.privacy.pseudonym import PSEUDONYM_PATTERN
from shared.privacy.register import Activity


@dataclass
class Processing:
    """What the messaging core knows about the processing in hand; the unit of work turns it into records."""

    activity: Activity
    operation: str  # "<service>.<handler>"
    service: str
    started_at: datetime
    message_id: str | None = None  # the event or command that caused it
    message_type: str | None = None  # "quote.sent.v1", "command:send_quote", "query:get_referral"
    correlation_id: uuid.UUID | None = None  # the referral (lifecycle)
    foreign_party: Party | None = None  # the other party whose message triggered it
    foreign_span_id: str | None = None
    status: Literal["ok", "refused"] = "ok"
    subjects: set[str] = field(default_factory=set)
    actor: str | None = None  # the staff member whose command it was (art 8); None for messages and timers

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
    subject: str = Field(pattern=PSEUDONYM_PATTERN)
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
            foreign=foreign, actor=processing.actor,
        )
        for subject in sorted(subjects)
    ]


def parent_span_of(traceparent: str | None) -> str | None:
    """The sending span's id from a W3C traceparent header (00-<trace>-<span>-<flags>)."""
    if not traceparent:
        return None
    parts = str(traceparent).split("-")
    return parts[2] if len(parts) == 4 and len(parts[2]) == 16 else None
