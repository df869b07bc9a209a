"""The commands every service answers, whatever it does: its own processing log, the register of confidentiality
statements of its party (agreement art 8), and why it refused the messages parked in its dead-letter queue. The
pipeline adds them to each service's own command handlers."""

from __future__ import annotations

import logging
import typing
from datetime import UTC, datetime
from typing import Any

from shared.contracts.commands import (
    Command,
    ListConfidentialityStatements,
    ListDeadLetters,
    ReadProcessingLog,
    RecordConfidentialityStatement,
    RecordDeadLetterRead,
)
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.contracts.staff import StaffRegister
from shared.messaging.handlers import CommandHandler
from shared.unit_of_work import ConfidentialityStatement, UnitOfWork

log = logging.getLogger("werkbrug.pipeline")


class StaffSource(typing.Protocol):
    """Where the pipeline reads the party's staff register (a StaffRegister, or shared.staff.StaffFile)."""

    def current(self) -> StaffRegister: ...


async def read_processing_log(query: ReadProcessingLog, uow: UnitOfWork) -> list[dict[str, Any]]:
    """The query every service answers: its own processing log (reading it is logged too). With
    `distinct_subjects`, only who was processed in the time range (no records): who a breach may concern."""
    if query.distinct_subjects:
        subjects = await uow.processing_subjects(query.since, query.until)
        if uow.processing is not None:
            uow.processing.subjects |= set(subjects)
        return [{"subject": s} for s in subjects]
    records = await uow.read_processing_log(query)
    if uow.processing is not None:
        uow.processing.subjects |= {r.subject for r in records if r.subject}  # (a refused attempt may have none)
    return [r.model_dump(mode="json") for r in records]


async def record_confidentiality_statement(cmd: RecordConfidentialityStatement, uow: UnitOfWork,
                                           staff: StaffSource | None = None) -> dict[str, Any]:
    """Every service keeps its party's register of confidentiality statements (agreement art 8), fed by this
    command: given by a privacy officer (Command.roles), for a member of the party's own staff, never for
    themselves; the one who records it is named in the processing log."""
    if cmd.actor is None:
        raise Refusal(Reason(code=ReasonCode.ACTOR_MISSING, field="actor"))
    if cmd.staff == cmd.actor:
        raise Refusal(Reason(code=ReasonCode.NOT_FOR_ONESELF, field="staff",
                             detail="a confidentiality statement is recorded by someone else"))
    register = staff.current() if staff is not None else None
    known = register is not None and (
        register.member(cmd.staff, today()) is not None  # in force today, or: ending the statement of one who left
        or (cmd.ended_on is not None and any(m.staff_id == cmd.staff for m in register.staff)))
    if not known:
        raise Refusal(Reason(code=ReasonCode.UNKNOWN_ACTOR, field="staff",
                             detail="not a member of this party's staff register"))
    if cmd.ended_on is not None and cmd.ended_on < cmd.signed_on:
        raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="ended_on", detail="before signed_on"))
    statement = ConfidentialityStatement(staff=cmd.staff, signed_on=cmd.signed_on, recorded_by=cmd.actor,
                                         recorded_at=datetime.now(UTC), ended_on=cmd.ended_on)
    await uow.save_confidentiality_statement(statement)
    # The register keeps who recorded it and when; the service log says that it happened (ids only).
    log.info("confidentiality statement %s by command %s", "ended" if cmd.ended_on else "recorded", cmd.command_id)
    return _statement_view(statement)


async def list_confidentiality_statements(query: ListConfidentialityStatements, uow: UnitOfWork) -> list[dict]:
    return [_statement_view(s) for s in await uow.confidentiality_statements()]


async def list_dead_letters(query: ListDeadLetters, uow: UnitOfWork) -> list[dict[str, Any]]:
    """Why this service refused the parked messages named by their keys (`dead_letter_key`)."""
    return [{"key": r.key, "service": r.service, "reasons": r.reasons, "routing_key": r.routing_key,
             "at": r.at.isoformat()} for r in await uow.dead_letter_records(query.keys)]


async def record_dead_letter_read(query: RecordDeadLetterRead, uow: UnitOfWork) -> dict[str, Any]:
    """The read of a parked message's body, in the processing log: the messaging core checked the reader's
    confidentiality statement (the query reveals personal data) and names the actor; this names the message
    by its dead-letter key, with the subject and referral its envelope names. Whether this service recorded
    refusing it is part of the answer (a message can be parked without a record: see `record_failure`)."""
    if uow.processing is not None:
        uow.processing.message_id = f"dead-letter:{query.key}"
        uow.processing.correlation_id = query.correlation_id
        uow.processing.subjects |= {query.subject} if query.subject else set()
    recorded = await uow.dead_letter_records([query.key])
    return {"key": query.key, "recorded": bool(recorded), "subject": query.subject}


CORE_HANDLERS: dict[type[Command], CommandHandler] = {
    ReadProcessingLog: read_processing_log,
    RecordConfidentialityStatement: record_confidentiality_statement,
    ListConfidentialityStatements: list_confidentiality_statements,
    ListDeadLetters: list_dead_letters,
    RecordDeadLetterRead: record_dead_letter_read,
}


def _statement_view(s: ConfidentialityStatement) -> dict[str, Any]:
    return {"staff": s.staff, "signed_on": s.signed_on.isoformat(), "recorded_by": s.recorded_by,
            "ended_on": s.ended_on.isoformat() if s.ended_on else None, "applies": s.applies_on(today())}


def today():
    return datetime.now(UTC).date()
