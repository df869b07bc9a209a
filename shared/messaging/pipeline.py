"""The one consumer pipeline every service runs its handlers through.

For an event message it applies, in order and in one place:

1. the contract: size, JSON, envelope, known type and version, permitted source party, a recipient the type
   may be addressed to that is this party (or all, or a message of this party's own services), routing key
   and message id consistent with the envelope, the type's own allow-list model, and the source party being
   the broker-authenticated sender (AMQP user_id);
2. deduplication: the inbox (a message already handled has no second effect);
3. the handler, inside a unit of work, under a span that carries only pseudonyms and ids;
4. the answer: a retour (accepted, or rejected with reason codes) for every message that crossed from
   another party, written to the outbox in the same transaction as the state change and inbox record;
5. dead-lettering of what cannot be accepted: the service records why (reason codes and schema paths, in
   its own database, in the same transaction as the rejection retour) and the runtime then rejects the
   message, so that the broker dead-letters it to the service's parking queue with its own `x-death`
   headers and the original properties, the broker-validated `user_id` among them. No service publishes a
   dead letter; no party may publish to the dead-letter exchange (its topic permission writes nothing).

Commands (request/reply from people's tools) go through the same unit of work, inbox and tracing, after two
checks in one place: the broker-validated sender (AMQP user_id) is this service's party, and the actor is in
force in that party's staff register with a role the command allows (`Command.roles`). A service's timer jobs
call `run_job` in the process: no broker message can claim to be one.
Handlers stay plain functions: `async def handler(message, uow) -> ...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Link
from pydantic import ValidationError

from shared.contracts.commands import (
    Command,
    CommandResult,
    Query,
    ReadProcessingLog,
    RecordConfidentialityStatement,
)
from shared.contracts.envelope import BROADCAST, Envelope, EventData, envelope_model, known_versions, lookup
from shared.contracts.events import Retour
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode, Refusal, reasons_from_validation_error, received_reasons
from shared.contracts.staff import StaffRegister
from shared.domain import NotYet, Outgoing
from shared.messaging.core_handlers import CORE_HANDLERS, StaffSource, record_confidentiality_statement, today
from shared.messaging.definition import ServiceDefinition
from shared.messaging.handlers import Answer, BoundByPipeline, CommandHandler, Incoming
from shared.privacy.processing_log import UNKNOWN_ACTOR, Processing, parent_span_of
from shared.privacy.register import load_register
from shared.unit_of_work import (
    ConcurrencyError,
    DeadLetterRecord,
    DuplicateMessage,
    InboxEntry,
    UnitOfWork,
)

log = logging.getLogger("werkbrug.pipeline")

RETOUR_NAMESPACE = uuid.UUID("6f1c1f0e-3d4b-4e0e-9a55-7765726b6272")
MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class RawMessage:
    """What the pipeline needs of a broker message (kept small so it is easy to fake)."""

    body: bytes
    headers: dict[str, Any]
    routing_key: str
    message_id: str | None
    correlation_id: str | None = None
    user_id: str | None = None  # AMQP user_id: validated by the broker against the publishing connection's user


def dead_letter_key(message_id: str | None, body: bytes) -> str:
    """The name under which a service records a message it refused: a digest of what the broker keeps of it
    in the parking queue (message id and body), so the record is found for the parked message and copies
    nothing of it."""
    return hashlib.sha256((message_id or "").encode("utf-8", "replace") + b"\0" + body).hexdigest()


class DeadLetterSink:
    """The service's parking queue as the service sees it. It never writes to it: a refused message is
    rejected and the broker dead-letters it there (Outcome "dead_lettered"; `Pipeline.park` records why).
    It only destroys what it holds about an erased subject."""

    async def destroy_about(self, subject: str) -> int:
        """Destroy the dead letters about a data subject (erasure); returns how many."""
        return 0


@dataclass
class Outcome:
    status: str  # accepted | rejected | duplicate | dead_lettered | deferred (requeue after a pause: NotYet)
    reasons: list[Reason] = field(default_factory=list)


class Pipeline:
    def __init__(
        self,
        definition: ServiceDefinition,
        uow_factory: Callable[[], UnitOfWork],
        dead_letters: DeadLetterSink,
        tracer: trace.Tracer,
        max_message_bytes: int,
        delivery_limit: int = 5,
        staff: StaffSource | None = None,
    ) -> None:
        self.d = definition
        self.delivery_limit = delivery_limit  # the queues' x-delivery-limit: NotYet waits for fewer deliveries
        # The party's staff register (deny by default: without one, no person may give a command).
        self.staff: StaffSource = staff if staff is not None else StaffRegister(party=definition.party)
        self.core_handlers: dict[type[Command], CommandHandler] = {
            **CORE_HANDLERS,
            RecordConfidentialityStatement: functools.partial(record_confidentiality_statement, staff=self.staff)}
        self.uow_factory = uow_factory
        self.dead_letters = dead_letters
        self.tracer = tracer
        self.max_message_bytes = max_message_bytes
        self._accepts = set(definition.event_handlers) | {Retour}
        self._activities = definition.activities()  # refuses to build a pipeline for unregistered processing
        self.event_handlers = {
            model: handler.bind(self._activities.values(), dead_letters.destroy_about)
            if isinstance(handler, BoundByPipeline) else handler
            for model, handler in definition.event_handlers.items()
        }

    # -- events ------------------------------------------------------------------------------------

    async def handle_event(self, raw: RawMessage) -> Outcome:
        span = trace.get_current_span()
        try:
            envelope, data = self._open(raw)
        except Refusal as refusal:
            reasons = list(refusal.reasons)
            await self._refuse_contract(raw, reasons)
            span.set_attributes({"werkbrug.outcome": "dead_lettered",
                                 "werkbrug.reasons": [r.code.value for r in reasons]})
            return Outcome("dead_lettered", reasons)

        with self._handling_span(span, f"{self.d.name} handle {envelope.type}") as work:
            work.set_attributes(_envelope_attributes(envelope))
            outcome = await self._apply_event(envelope, data, raw)
            work.set_attribute("werkbrug.outcome", outcome.status)
            if outcome.reasons:
                work.set_attribute("werkbrug.reasons", [r.code.value for r in outcome.reasons])
        return outcome

    @contextlib.contextmanager
    def _handling_span(self, consumer: trace.Span, name: str) -> Iterator[trace.Span]:
        """One span per handled message. Under FastStream's consumer span (RabbitTelemetryMiddleware) that
        span is it, renamed for what the service does with the message; a second span beneath it would
        repeat its attributes and cost as much again. Without one (the pipeline called directly), its own."""
        if consumer.is_recording():
            consumer.update_name(name)
            yield consumer
            return
        with self.tracer.start_as_current_span(name) as own:
            yield own

    def _open(self, raw: RawMessage) -> tuple[Envelope, EventData]:
        """Check everything about a message that does not need the database. Raises Refusal."""
        if len(raw.body) > self.max_message_bytes:
            raise Refusal(Reason(code=ReasonCode.OVERSIZED, detail=f"{len(raw.body)} > {self.max_message_bytes}"))
        # Strict: JSON types as the contract (docs/schemas) defines them, no coercion ("1" is not the number 1);
        # dates, times, UUIDs and amounts are read from their JSON strings, as the schema says.
        try:
            envelope = Envelope.model_validate_json(raw.body, strict=True)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            if any(e["type"] == "json_invalid" for e in errors):  # not JSON, not UTF-8, nested too deep
                raise Refusal(Reason(code=ReasonCode.MALFORMED_JSON, detail="json_invalid")) from None
            if any(e["type"] == "model_type" and not e["loc"] for e in errors):
                raise Refusal(Reason(code=ReasonCode.INVALID_ENVELOPE, detail="not a JSON object")) from None
            raise Refusal(*reasons_from_validation_error(exc)) from None
        spec = lookup(envelope.type, envelope.version)
        if spec is None:
            # The type and version are the message's own words until known: named only when registered.
            if versions := known_versions(envelope.type):
                raise Refusal(Reason(code=ReasonCode.UNSUPPORTED_VERSION, field="version",
                                     detail=f"{envelope.type} supports v{', v'.join(map(str, versions))}"))
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_EVENT_TYPE, field="type", detail="not a registered type"))
        if spec.model not in self._accepts:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_EVENT_TYPE, field="type",
                                 detail=f"{self.d.name} does not consume {envelope.type}"))
        if envelope.source not in spec.sources:
            raise Refusal(Reason(code=ReasonCode.SOURCE_NOT_PERMITTED, field="source",
                                 detail=f"{envelope.source.value} may not send {envelope.type}"))
        if envelope.recipient not in spec.model.recipients_from(envelope.source):
            raise Refusal(Reason(code=ReasonCode.RECIPIENT_NOT_PERMITTED, field="recipient",
                                 detail=f"{envelope.type} from {envelope.source.value} is not addressed so"))
        if envelope.recipient not in {self.d.party, BROADCAST} and envelope.source != self.d.party:
            # Addressed to another party (the broker should never have delivered it): parked, never handled.
            raise Refusal(Reason(code=ReasonCode.NOT_ADDRESSED_TO_US, field="recipient",
                                 detail=f"not addressed to {self.d.party.value}"))
        if spec.model.about_a_person and envelope.subject is None:
            raise Refusal(Reason(code=ReasonCode.MISSING_FIELD, field="subject",
                                 detail=f"{envelope.type} is about a person and needs the subject's pseudonym"))
        if raw.message_id != str(envelope.id):
            raise Refusal(Reason(code=ReasonCode.MESSAGE_ID_MISMATCH, field="id",
                                 detail="AMQP message_id must equal the event id"))
        try:  # the message as its type's own schema: `data` checked strictly against the type's model
            data = envelope_model(spec.model).model_validate_json(raw.body, strict=True).data
        except ValidationError as exc:
            raise Refusal(*reasons_from_validation_error(exc)) from None
        if envelope.routing_key != raw.routing_key:
            raise Refusal(Reason(code=ReasonCode.ROUTING_MISMATCH, detail="routing key does not match envelope"))
        if spec.model.between_parties and envelope.source == self.d.party:
            raise Refusal(Reason(code=ReasonCode.SOURCE_NOT_PERMITTED, field="source",
                                 detail=f"{envelope.type} is read from the other parties only"))
        if raw.user_id != envelope.source.value:
            raise Refusal(Reason(code=ReasonCode.SENDER_NOT_AUTHENTICATED, field="source",
                                 detail="AMQP user_id (checked by the broker) must be the source party"))
        return envelope, data

    async def _apply_event(self, envelope: Envelope, data: EventData, raw: RawMessage) -> Outcome:
        is_retour = isinstance(data, Retour)
        handler = self.d.retour_handler if is_retour else self.event_handlers[type(data)]
        incoming = Incoming(envelope, data)
        kind = "retour" if is_retour else "event"
        # A message that crossed from another party is answered; one between a party's own services is not.
        crossed = envelope.source != self.d.party
        answer = not is_retour and crossed
        started = datetime.now(UTC)

        def processing(status: str) -> Processing:
            return Processing(
                activity=self._activities[type(data)], operation=f"{self.d.name}.{_name_of(handler, kind)}",
                service=self.d.name, started_at=started, message_id=str(envelope.id),
                message_type=f"{envelope.type}.v{envelope.version}",
                correlation_id=envelope.correlation_id, status=status,
                foreign_party=envelope.source if crossed else None,
                foreign_span_id=parent_span_of(raw.headers.get("traceparent")) if crossed else None,
                subjects={envelope.subject} if envelope.subject else set(),
            )

        async def attempt(uow: UnitOfWork) -> Outcome | None:
            if await uow.processed(str(envelope.id)):
                return Outcome("duplicate")
            uow.processing = processing("ok")
            uow.causation_id = envelope.id
            uow.lifecycle_id = envelope.correlation_id
            if is_retour:
                if await self._take_retour(uow, envelope, data) == "duplicate":
                    return Outcome("duplicate")
            elif envelope.subject and not type(data).concerns_subject_rights:
                await _respect_subject_state(uow, {envelope.subject}, sent_at=envelope.time)
            if handler is not None:
                await handler(incoming, uow)
            if not is_retour and not type(data).concerns_subject_rights:
                await _respect_subject_state(uow, uow.touched_subjects() - {envelope.subject}, sent_at=None)
            uow.inbox = InboxEntry(str(envelope.id), kind, envelope.type)
            if answer:
                uow.emit(self._retour(envelope, "accepted", []))
            return None

        try:
            done = await self._in_transaction(attempt)
        except RetourRefused as refused:
            return await self._park_retour(envelope, data, raw, list(refused.reasons), refused.subject, processing)
        except Refusal as refusal:
            reasons = list(refusal.reasons)
            delivery = _delivery_count(raw)
            if isinstance(refusal, NotYet) and delivery < self.delivery_limit - 1:
                # What it follows from may still arrive on another queue: try again (the runtime requeues it
                # after a pause); on the last delivery the broker allows, it is refused for good below.
                log.info("%s holds back %s %s (delivery %d of %d): %s", self.d.name, envelope.type, envelope.id,
                         delivery + 1, self.delivery_limit, ",".join(r.code.value for r in reasons))
                return Outcome("deferred", reasons)
            log.warning("%s refused %s %s: %s", self.d.name, envelope.type, envelope.id,
                        ", ".join(str(r) for r in reasons))

            async def record_refusal(uow: UnitOfWork) -> Outcome | None:
                if await uow.processed(str(envelope.id)):
                    return Outcome("duplicate")
                uow.processing = processing("refused")
                uow.causation_id = envelope.id
                uow.inbox = InboxEntry(str(envelope.id), kind, envelope.type, {"refused": [r.code for r in reasons]})
                if answer:
                    uow.emit(self._retour(envelope, "rejected", reasons))
                return None

            done = await self._in_transaction(record_refusal)
            return done or Outcome("rejected", reasons)
        return done or Outcome("accepted")

    # -- retours: final, and only from the party the event was sent to -------------------------------

    async def _take_retour(self, uow: UnitOfWork, envelope: Envelope, retour: Retour) -> str:
        """Record a retour on the outbox record of the event it answers. Accepted only (a) from a party the
        answered event was sent to (a recipient of its type in the register, never ourselves), (b) about an
        event this service sent, of the type and version the retour names, and (c) once: the same answer
        again is a duplicate ("duplicate": no effect); another answer is refused (RetourRefused)."""
        source = envelope.source
        sent = await uow.sent_record(retour.about_event_id) if retour.about_event_id else None
        if sent is None and _sent_by_each_service(retour.about_type, retour.about_version):
            # Retours to a type several services of each party send reach all of them, whoever answered
            # whom (our own party's answers to the other party's events too): not ours, no effect.
            return "foreign"
        if source == self.d.party:
            raise RetourRefused(sent["subject"] if sent else None, Reason(
                code=ReasonCode.RETOUR_NOT_FROM_RECIPIENT, field="source",
                detail="a party does not answer its own events"))
        if sent is None:
            raise RetourRefused(None, Reason(code=ReasonCode.RETOUR_ABOUT_UNSENT_EVENT, field="data.about_event_id",
                                             detail=f"{self.d.name} sent no such event"))
        subject = sent["subject"]
        if (sent["type"], sent["version"]) != (retour.about_type, retour.about_version):
            raise RetourRefused(subject, Reason(code=ReasonCode.RETOUR_ABOUT_UNSENT_EVENT, field="data.about_type",
                                                detail="not the type and version of the event answered"))
        if source not in _recipients(sent["type"], sent["version"], self.d.party):
            raise RetourRefused(subject, Reason(code=ReasonCode.RETOUR_NOT_FROM_RECIPIENT, field="source",
                                                detail="the event answered was not sent to this party"))
        answer = {"status": retour.status, "from": source.value, "retour_id": str(envelope.id),
                  "reasons": received_reasons(retour.reasons), "at": envelope.time}
        recorded = sent["retour"]
        if recorded is not None:
            if _same_answer(recorded, answer):
                return "duplicate"
            raise RetourRefused(subject, Reason(code=ReasonCode.RETOUR_CONTRADICTS_ANSWER, field="data.status",
                                                detail="the event was answered otherwise already; a retour is final"))
        await uow.record_retour(retour.about_event_id, answer)
        return "recorded"

    async def _park_retour(self, envelope: Envelope, retour: Retour, raw: RawMessage, reasons: list[Reason],
                           subject: str | None, processing: Callable[[str], Processing]) -> Outcome:
        """A refused retour is never applied and never answered: written to the processing log as refused
        (about the subject of the event it answers, when we sent one) with its inbox record, logged with
        codes and ids only, and parked through the pipeline's refusal path. The inbox record first: of two
        copies of one message handled at once only one is parked, the other is a duplicate."""

        async def record(uow: UnitOfWork) -> Outcome | None:
            if await uow.processed(str(envelope.id)):
                return Outcome("duplicate")
            uow.processing = processing("refused")
            uow.processing.subjects = {subject} if subject else uow.processing.subjects
            uow.inbox = InboxEntry(str(envelope.id), "retour", envelope.type, {"refused": [r.code for r in reasons]})
            return None

        if (done := await self._in_transaction(record)) is not None:
            return done
        log.warning("%s refused a retour %s from %s about %s: %s", self.d.name, envelope.id, envelope.source.value,
                    retour.about_event_id, ",".join(r.code.value for r in reasons))
        await self._refuse_contract(raw, reasons)
        return Outcome("dead_lettered", reasons)

    def _retour(self, envelope: Envelope, status: str, reasons: list[Reason]) -> Outgoing:
        return Outgoing(
            Retour(about_event_id=envelope.id, about_type=envelope.type, about_version=envelope.version,
                   status=status, reasons=reasons),
            subject=envelope.subject,
            correlation_id=envelope.correlation_id,
            to=envelope.source,
        )

    async def park(self, uow: UnitOfWork, raw: RawMessage, reasons: list[Reason]) -> Outcome:
        """Record, in `uow`'s transaction, why `raw` is refused; the caller returns the Outcome this gives
        ("dead_lettered") and, once committed, the runtime rejects the message without requeueing it, so
        the broker dead-letters it to this service's parking queue. Usable for a refusal decided before
        the handler (the contract) or after it."""
        await uow.record_dead_letter(DeadLetterRecord(
            key=dead_letter_key(raw.message_id, raw.body), service=self.d.name,
            reasons=[r.model_dump(mode="json", exclude_none=True) for r in reasons],
            routing_key=raw.routing_key, at=datetime.now(UTC)))
        return Outcome("dead_lettered", list(reasons))

    async def record_failure(self, raw: RawMessage) -> None:
        """Record that handling `raw` failed at its last permitted delivery (a bug, not a refusal): the
        broker dead-letters it when the runtime gives it back, and the record says the service gave up on
        it (so a parked message no service recorded is one the service never saw fail)."""
        reason = Reason(code=ReasonCode.DELIVERY_LIMIT, detail="handling failed at every delivery")

        async def record(uow: UnitOfWork) -> Outcome | None:
            await self.park(uow, raw, [reason])
            return None

        await self._in_transaction(record)

    async def _refuse_contract(self, raw: RawMessage, reasons: list[Reason]) -> None:
        """Record why a message that broke the contract is dead-lettered, and answer its sender if one can
        be named, in one transaction."""
        log.warning("%s dead-letters a message on %s: %s", self.d.name, raw.routing_key,
                    ", ".join(str(r) for r in reasons))
        claimed = _claimed_origin(raw)
        if claimed is not None and (claimed[1] == Retour.event_type or claimed[0] == self.d.party
                                    or raw.routing_key.split(".")[1] not in {self.d.party, BROADCAST}):
            claimed = None  # never answer a retour, nor ourselves, nor for another party a message addressed to it
        answer: tuple[str, Outgoing] | None = None
        if claimed is not None:
            _, about_type, about_version, correlation_id = claimed
            retour = Retour(about_event_id=_as_uuid(raw.message_id), about_type=about_type,
                            about_version=about_version, status="rejected", reasons=reasons)
            # A deterministic id makes a redelivered bad message produce the same retour, deduplicated.
            retour_id = uuid.uuid5(RETOUR_NAMESPACE, f"{self.d.name}:{raw.message_id}:{raw.routing_key}")
            answer = (f"refused:{retour_id}", Outgoing(retour, subject=None,
                                                       correlation_id=correlation_id or retour_id, to=claimed[0]))

        async def record(uow: UnitOfWork) -> Outcome | None:
            await self.park(uow, raw, reasons)
            if answer is not None and not await uow.processed(answer[0]):
                uow.inbox = InboxEntry(answer[0], "refused", answer[1].data.about_type)
                uow.emit(answer[1])
            return None

        await self._in_transaction(record)

    # -- commands ----------------------------------------------------------------------------------

    async def handle_command(self, body: bytes, *, user_id: str | None, message_id: str | None = None
                             ) -> dict[str, Any]:
        """A command from the broker. Run only when its broker-validated sender (AMQP `user_id`, which RabbitMQ
        checks against the publishing connection's user) is this service's own party: the broker's topic
        permissions already keep other parties off this service's command key; this is the second check
        (an operator's connection may set any user_id, or none)."""
        span = trace.get_current_span()
        if user_id != self.d.party.value:
            # ids and codes only: neither the claimed user nor anything of the body is repeated
            log.warning("%s refused command message=%s: sender_not_authenticated", self.d.name,
                        _as_uuid(message_id) or "-")
            span.set_attributes({"werkbrug.outcome": "rejected",
                                 "werkbrug.reasons": [ReasonCode.SENDER_NOT_AUTHENTICATED.value]})
            reasons = [Reason(code=ReasonCode.SENDER_NOT_AUTHENTICATED,
                              detail=f"{self.d.name} runs commands from its own party only (AMQP user_id)")]
            if len(body) <= self.max_message_bytes:
                with contextlib.suppress(ValidationError):  # an attempt at a command we answer is logged
                    await self._record_refused(self.d.command_adapter.validate_json(body), reasons,
                                               from_party=False)
            return _result(False, None, reasons)
        if len(body) > self.max_message_bytes:
            return _result(False, None, [Reason(code=ReasonCode.OVERSIZED)])
        try:
            command = self.d.command_adapter.validate_json(body)
        except ValidationError as exc:
            reasons = reasons_from_validation_error(exc, tagged_union=True)
            if _is_union_tag_error(exc):
                reasons = [Reason(code=ReasonCode.UNKNOWN_COMMAND, detail="unknown or missing command")]
            span.set_attribute("werkbrug.outcome", "rejected")
            return _result(False, None, reasons)
        return await self._execute(command, internal=False)

    async def run_job(self, command: Command) -> dict[str, Any]:
        """A command the service gives itself on a timer (a Job): called in the process, never reachable from
        the broker, so it needs no sender and no actor."""
        return await self._execute(command, internal=True)

    def _authorise(self, command: Command) -> None:
        """The actor must be in force in this party's staff register with a role that may give the command.
        Raises Refusal; the reasons never repeat the actor."""
        if command.actor is None:
            raise Refusal(Reason(code=ReasonCode.ACTOR_MISSING, field="actor",
                                 detail="every command names the member of staff who gives it"))
        member = self.staff.current().member(command.actor, today())
        if member is None:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_ACTOR, field="actor",
                                 detail=f"not a member in force of {self.d.party.value}'s staff register"))
        if not member.roles & type(command).roles:
            allowed = ", ".join(sorted(type(command).roles)) or "nobody"
            raise Refusal(Reason(code=ReasonCode.ROLE_NOT_PERMITTED, field="actor",
                                 detail=f"{command.command} is given by: {allowed}"))

    async def _execute(self, command: Command, *, internal: bool) -> dict[str, Any]:
        span = trace.get_current_span()
        name = command.command
        if not internal:
            try:
                self._authorise(command)
            except Refusal as refusal:
                codes = [r.code.value for r in refusal.reasons]
                log.warning("%s refused %s %s: %s", self.d.name, name, command.command_id, ", ".join(codes))
                span.set_attributes({"werkbrug.command": name, "werkbrug.outcome": "rejected",
                                     "werkbrug.reasons": codes})
                await self._record_refused(command, list(refusal.reasons))
                return _result(False, command.command_id, list(refusal.reasons))
        if isinstance(command, ReadProcessingLog) and (why := command.refusal()):
            return _result(False, command.command_id, [Reason(code=ReasonCode.UNFILTERED_READ, detail=why)])
        handler = self.d.command_handlers.get(type(command)) or self.core_handlers[type(command)]
        span.set_attributes({"werkbrug.command": name, "werkbrug.service": self.d.name})

        lifecycle_id = _lifecycle_of(command)
        parent = None
        if lifecycle_id is not None and not isinstance(command, Query):
            async with self.uow_factory() as uow:
                carrier = await uow.lifecycle_trace(lifecycle_id)
            if carrier:
                parent = propagate.extract(carrier)
        links = [Link(span.get_span_context())] if parent is not None else []
        kind = "query" if isinstance(command, Query) else "command"
        with self.tracer.start_as_current_span(f"{self.d.name} {kind} {name}", context=parent,
                                               links=links) as work:
            work.set_attributes({"werkbrug.command": name, "werkbrug.service": self.d.name,
                                 "werkbrug.party": self.d.party.value})
            if lifecycle_id:
                work.set_attribute("werkbrug.correlation_id", str(lifecycle_id))
            try:
                if isinstance(command, Query):
                    async with self.uow_factory() as uow:
                        if command.reveals_personal_data():
                            await _require_confidentiality(uow, command.actor)
                        if not type(command).concerns_subject_rights:
                            await uow.exclude_restricted()  # art 18, 21: left out, not blocking the rest
                        uow.processing = self._command_processing(command, handler)
                        result = command.shown(await handler(command, uow))
                        await uow.commit()  # the reads' processing-log records
                        return _result(True, command.command_id, [], result)
                return await self._run_command(command, handler, work)
            except Refusal as refusal:
                work.set_attributes({"werkbrug.outcome": "rejected",
                                     "werkbrug.reasons": [r.code.value for r in refusal.reasons]})
                if not internal:
                    await self._record_refused(command, list(refusal.reasons))
                return _result(False, command.command_id, list(refusal.reasons))

    async def _run_command(self, command: Command, handler: CommandHandler, span: trace.Span) -> dict[str, Any]:
        key = f"command:{command.command_id}"
        replies: list[dict[str, Any]] = []

        async def attempt(uow: UnitOfWork) -> Outcome | None:
            previous = await uow.processed(key)
            if previous is not None:
                replies.append(previous.result or {})
                return Outcome("duplicate")
            uow.processing = self._command_processing(command, handler)
            if not type(command).concerns_subject_rights:
                await uow.exclude_restricted()  # art 18, 21: left out, not blocking the rest
            answer = await handler(command, uow)
            if not type(command).concerns_subject_rights:
                await _respect_subject_state(uow, uow.touched_subjects(), sent_at=None)
            if not isinstance(answer, Answer):
                answer = Answer(answer)
            reply = _result(answer.ok, command.command_id, list(answer.reasons), answer.result)
            if not answer.ok:  # refused, though what it did is recorded: so says its processing-log record
                uow.processing.status, uow.processing.reasons = "refused", [r.code.value for r in answer.reasons]
            lifecycle = _lifecycle_of(command) or answer.lifecycle_id
            uow.lifecycle_id = lifecycle
            uow.processing.correlation_id = lifecycle  # a command that starts a lifecycle learns its id here
            uow.inbox = InboxEntry(key, "command", command.command, reply)
            replies.append(reply)
            return None

        outcome = await self._in_transaction(attempt)
        reply = replies[-1]
        span.set_attribute("werkbrug.outcome", "duplicate" if outcome else ("accepted" if reply["ok"] else "refused"))
        if reply["reasons"]:
            span.set_attribute("werkbrug.reasons", [r["code"] for r in reply["reasons"]])
        return reply

    def _command_processing(self, command: Command, handler: CommandHandler) -> Processing:
        """The processing of a command or query: a change, a read, or a read of personal data (one place)."""
        kind = ("change" if not isinstance(command, Query)
                else "personal_data_read" if command.reads_personal_data() else "read")
        return Processing(
            activity=self._activities[type(command)], operation=f"{self.d.name}.{_name_of(handler, 'command')}",
            service=self.d.name, started_at=datetime.now(UTC), message_id=f"command:{command.command_id}",
            message_type=f"{'query' if isinstance(command, Query) else 'command'}:{command.command}",
            correlation_id=_lifecycle_of(command), actor=command.actor, kind=kind,
        )

    async def _record_refused(self, command: Command, reasons: list[Reason], *, from_party: bool = True) -> None:
        """A command or query refused for who gave it, or by its handler, leaves one processing-log record per
        subject it concerns (status refused, its reason codes, marked as a personal-data read when it asked
        for one): the actor only when a member in force of the party's staff register gave it through the
        party's own connection, else UNKNOWN_ACTOR (the claimed string is never written); its subject(s) when
        this service knows the referral or request it names, else a record without a subject."""
        handler = self.d.command_handlers.get(type(command)) or self.core_handlers.get(type(command))
        if handler is None or type(command) not in self._activities:
            return
        known = from_party and self.staff.current().member(command.actor, today()) is not None
        lifecycle = _lifecycle_of(command)

        async def record(uow: UnitOfWork) -> Outcome | None:
            uow.processing = processing = self._command_processing(command, handler)
            processing.status, processing.reasons = "refused", [r.code.value for r in reasons]
            processing.actor = command.actor if known else UNKNOWN_ACTOR
            if lifecycle is not None:
                processing.subjects |= set(await uow.lifecycle_subjects(lifecycle))
            return None

        try:
            await self._in_transaction(record)
        except Exception as exc:  # the refusal stands; that its record could not be written is logged (no data)
            log.error("%s could not log refused %s %s: %s", self.d.name, command.command, command.command_id,
                      type(exc).__name__)

    # -- shared ------------------------------------------------------------------------------------

    async def _in_transaction(self, work: Callable[[UnitOfWork], Awaitable[Outcome | None]]) -> Outcome | None:
        """Run `work` in a fresh unit of work and commit; retry on write conflicts and transient errors."""
        for attempt_no in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self.uow_factory() as uow:
                    outcome = await work(uow)
                    if outcome is None:
                        await uow.commit()
                    return outcome
            except DuplicateMessage:
                return Outcome("duplicate")
            except ConcurrencyError:  # a write conflict or a transient transaction error (the store says which)
                if attempt_no == MAX_ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0.01, 0.05) * attempt_no)
        raise AssertionError("unreachable")


async def _require_confidentiality(uow: UnitOfWork, actor: str | None) -> None:
    """Personal data only for staff with a confidentiality statement in force today (agreement art 8).
    The read that follows is logged naming the actor."""
    if actor is None:
        raise Refusal(Reason(code=ReasonCode.ACTOR_MISSING, field="actor",
                             detail="personal data is shown only to a named member of staff"))
    statement = next((s for s in await uow.confidentiality_statements() if s.staff == actor), None)
    if statement is None or not statement.applies_on(today()):
        raise Refusal(Reason(code=ReasonCode.NO_CONFIDENTIALITY_STATEMENT, field="actor",
                             detail="no confidentiality statement in force for this member of staff"))


async def _respect_subject_state(uow: UnitOfWork, subjects: set[str], *, sent_at: datetime | None) -> None:
    """Refuse to process data of a subject whose processing is restricted (art 18) or objected to (art 21),
    and a message written before the subject's erasure (art 17: a late message cannot bring data back).
    Data written after an erasure belongs to a new lifecycle (a new referral) and is processed as usual.

    Restriction and objection exclude, they do not block: before an ordinary command or query the unit of
    work leaves those subjects out (`UnitOfWork.exclude_restricted`: lists and reports pass over their
    records, naming one is refused), so this refusal is reached only by processing about that person
    (a message about them, a command on their referral). The state is per service: a request for one party
    (art 10.3), or an objection, which applies only to public-task processing, sets it only there."""
    for subject in sorted(subjects):
        state = await uow.subject_state(subject)
        if state.erased_at is not None and (sent_at is None or sent_at > state.erased_at):
            state.erased_at = None  # new data of a new lifecycle
        if (reason := state.refusal()) is not None:
            raise Refusal(reason)


def _lifecycle_of(command: Command) -> uuid.UUID | None:
    """The lifecycle a command belongs to: a referral, or a data-subject request."""
    return getattr(command, "referral_id", None) or getattr(command, "request_id", None)


class RetourRefused(Refusal):
    """A retour that may not be applied; `subject`: that of the event it answers, when we sent one."""

    def __init__(self, subject: str | None, *reasons: Reason) -> None:
        super().__init__(*reasons)
        self.subject = subject


def _recipients(event_type: str, version: int, sender: Party) -> set[Party]:
    """The parties an event of ours is sent to: those with a registered activity receiving it, not us."""
    spec = lookup(event_type, version)
    if spec is None or spec.model.internal:
        return set()
    message = f"{event_type}.v{version}"
    return {a.party for a in load_register().activity if message in a.receives} - {sender}


def _same_answer(recorded: dict[str, Any], answer: dict[str, Any]) -> bool:
    """The same retour again: from the same party, with the same status and reason codes."""
    def codes(a: dict[str, Any]) -> list[str]:
        return sorted(str(r.get("code")) for r in a.get("reasons") or [])
    return (recorded.get("from"), recorded.get("status"), codes(recorded)) == (
        answer["from"], answer["status"], codes(answer))


def _sent_by_each_service(event_type: str, version: int) -> bool:
    spec = lookup(event_type, version)
    return bool(spec and spec.model.from_each_service)


def _name_of(handler: Any, default: str) -> str:
    while isinstance(handler, functools.partial):
        handler = handler.func
    return getattr(handler, "__name__", default)


def _result(ok: bool, command_id: uuid.UUID | None, reasons: list[Reason], result: Any = None) -> dict[str, Any]:
    return CommandResult(ok=ok, command_id=command_id, reasons=reasons, result=result).model_dump(mode="json")


def _is_union_tag_error(exc: ValidationError) -> bool:
    return any(e["type"] in {"union_tag_invalid", "union_tag_not_found"} for e in exc.errors())


def _envelope_attributes(envelope: Envelope) -> dict[str, Any]:
    return {
        "werkbrug.event_id": str(envelope.id),
        "werkbrug.event_type": f"{envelope.type}.v{envelope.version}",
        "werkbrug.source_party": envelope.source.value,
        "werkbrug.subject": envelope.subject or "",
        "werkbrug.correlation_id": str(envelope.correlation_id),
    }


def _delivery_count(raw: RawMessage) -> int:
    """How often the broker delivered the message before (quorum queues' `x-delivery-count`; absent on the
    first delivery). A sender can set the header on its first delivery only to have its own message
    refused sooner; the broker overwrites it on every redelivery."""
    value = raw.headers.get("x-delivery-count", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _claimed_origin(raw: RawMessage) -> tuple[Party, str, int, uuid.UUID | None] | None:
    """The sender, type and lifecycle a refused message claims, read from its routing key
    (`<sender>.<recipient>.<subject>.<event>.v<N>`) and headers.

    Used only to address the rejection retour; nothing in it is trusted beyond that.
    """
    parts = raw.routing_key.split(".")
    if len(parts) != 5 or not parts[4].startswith("v") or not parts[4][1:].isdigit():
        return None
    try:
        party = Party(parts[0])
    except ValueError:
        return None
    if parts[2] == "retour":
        return None
    return party, f"{parts[2]}.{parts[3]}", int(parts[4][1:]), _as_uuid(raw.correlation_id)

