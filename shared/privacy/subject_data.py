"""How every service carries out a data-subject request (GDPR art 15-21) on the data it holds.

One mechanism for all services, as the processing log is: the messaging core hands each
`subject-request.issued` event to `SubjectRequestResponder`, which works on every repository whose
records name a subject, and answers with one `subject-request.answered` event in the same transaction.

- access (15) and portability (20): every record as held, the art 15 information of the service's
  activities (from the register) and, for access, its processing-log records on the subject. A record
  withheld from an earlier erasure is listed with its ground, the fields it keeps and the date it goes, but
  its values are not copied out: the ground keeps them for its legal duty alone, under the subject's
  retained key, and a copy in the answer (the outbox) and at the contact point (the request package)
  would make readable again, under a new key and beyond the ground's date, what the erasure closed;
- rectification (16): records hold corrected fields; the recipients the data was sent to are named (19);
  the outbox copies carrying the old values go: a message already sent keeps only its delivery record
  (type, routing, status, retour), one not yet sent is corrected before it goes;
- erasure (17): record by record erased, or withheld where the record says a legal duty keeps it
  (17(3)(b), with the ground and the date it may go), keeping only the personal fields that ground needs
  (shared.privacy.grounds); then the subject's data key is destroyed, which makes the outbox copies
  unreadable (crypto-shredding), the service's dead letters about them are destroyed, and the service
  reads itself again to list what it can still read (only the withheld);
- restriction (18), lifting it, and objection (21): the subject's state, which the messaging core
  checks before any further processing.

A request is carried out only by the services of the parties it names (`parties`): a request for one
party is that party's alone (agreement art 10.3), and objection and portability name only the parties whose
legal basis they apply to. Another party's service does nothing with it and does not answer.

A request is idempotent: asked again (a reminder), the service answers again from what it holds now.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.contracts.commands import ReadProcessingLog
from shared.contracts.events import (
    HeldRecord,
    ProcessingInformation,
    Right,
    SubjectRequestAnswered,
    SubjectRequestIssued,
)
from shared.contracts.parties import Party
from shared.domain import Aggregate, Outgoing
from shared.privacy.register import Activity, Register, load_register
from shared.unit_of_work import RepositorySpec, UnitOfWork

if TYPE_CHECKING:
    from shared.messaging.handlers import Incoming

log = logging.getLogger("werkbrug.subject_rights")

MAX_RECORDS = 200
MAX_LOG_RECORDS = 100  # the most recent; the whole log is read with `werkbrug log --subject`

DestroyDeadLetters = Callable[[str], Awaitable[int]]


def processing_information(activities: Iterable[Activity], register: Register | None = None) -> list[
        ProcessingInformation]:
    """The art 15(1)(a)-(g) information about activities: purpose, categories, recipients, retention, source."""
    register = register or load_register()
    seen: dict[str, ProcessingInformation] = {}
    for a in activities:
        if a.id in seen or not a.categories:
            continue
        seen[a.id] = ProcessingInformation(
            activity=a.id, name=a.name, purpose=a.purpose, legal_basis=a.legal_basis.value,
            categories=[c.name for c in a.categories], recipients=[p.value for p in a.recipients],
            retention=a.retention, retention_ground=a.retention_ground, source=source_of(a, register),
        )
    return list(seen.values())


def source_of(activity: Activity, register: Register) -> str:
    """Where the data of an activity comes from (art 15(1)(g)): the parties whose messages bring it fields
    it holds, or else the person themself (through the party's own staff)."""
    held = {f for category in activity.categories for f in category.fields}
    senders = sorted({other.party.value for other in register.activity if other.party != activity.party
                      for message in activity.receives
                      if (grant := other.grant(message)) and held & set(grant.fields)})
    if senders:
        return "received from " + ", ".join(senders)
    return f"collected by {activity.party.value} from the person or its own staff"


class SubjectRequestResponder:
    """The built-in handler of `subject-request.issued` (see the module docstring)."""

    __name__ = "answer_subject_request"

    def __init__(self, service: str, party: Party, specs: list[RepositorySpec], activities: Iterable[Activity] = (),
                 destroy_dead_letters: DestroyDeadLetters | None = None) -> None:
        self.service = service
        self.party = party
        self.specs = [s for s in specs if s.about_subjects]
        self.activities = list(activities)
        self.destroy_dead_letters = destroy_dead_letters
        self.__werkbrug_activity__ = load_register().by_name(party, "subject-rights").id

    def bind(self, activities: Iterable[Activity], destroy_dead_letters: DestroyDeadLetters | None) -> (
            SubjectRequestResponder):
        """The responder as a running service uses it: with its activities and its dead letters."""
        return SubjectRequestResponder(self.service, self.party, self.specs, activities, destroy_dead_letters)

    async def __call__(self, incoming: Incoming[SubjectRequestIssued], uow: UnitOfWork) -> None:
        request, subject = incoming.data, incoming.envelope.subject
        assert subject is not None  # the contract requires it of a message about a person
        if self.party not in request.parties:
            # Art 10.3: a request for another party is that party's alone: no effect here, and no answer
            # (the contact point did not ask this party, so it waits for nobody here).
            log.info("%s: request %s is not for %s: nothing done", self.service, request.request_id,
                     self.party.value)
            return
        held = await self._held(uow, subject)
        answer: dict[str, Any] = {}
        match request.right:
            case Right.ACCESS | Right.PORTABILITY:
                records = [self._record(uow, name, agg, "held", with_data=True) for name, agg in held]
                answer["records"] = records
                if request.right == Right.ACCESS:
                    answer["information"] = processing_information(self.activities)
                    log_records = await uow.read_processing_log(ReadProcessingLog(subject=subject, limit=1000))
                    answer["processing_log"] = [r.model_dump(mode="json") for r in log_records[-MAX_LOG_RECORDS:]]
            case Right.RECTIFICATION:
                corrections = {k.value: v for k, v in (request.corrections or {}).items()}
                changed = [(name, agg) for name, agg in held if agg.rectify(self._applicable(uow, name, agg,
                                                                                               corrections))]
                await uow.rectify_copies(subject, corrections)
                answer["records"] = [self._record(uow, name, agg, "rectified") for name, agg in changed]
                if changed:  # art 19: the recipients it was sent to get the correction (each answers too)
                    answer["recipients_notified"] = sorted({p.value for a in self.activities if a.sends
                                                            for p in a.recipients})
            case Right.ERASURE:
                answer.update(await self._erase(uow, subject, held))
            case Right.RESTRICTION | Right.LIFT_RESTRICTION | Right.OBJECTION:
                state = await uow.subject_state(subject)
                now = datetime.now(UTC)
                if request.right == Right.RESTRICTION:
                    state.restricted_since, status = state.restricted_since or now, "restricted"
                elif request.right == Right.LIFT_RESTRICTION:
                    state.restricted_since, status = None, "unrestricted"
                else:
                    state.objected_since, status = state.objected_since or now, "objected"
                await uow.save_subject_state(state)
                answer["records"] = [self._record(uow, name, agg, status) for name, agg in held]
        outcome = "done" if held or request.right in {Right.RESTRICTION, Right.OBJECTION} else "nothing_held"
        uow.emit(Outgoing(
            SubjectRequestAnswered(request_id=request.request_id, right=request.right, service=self.service,
                                   outcome=outcome, **answer),
            subject=subject, correlation_id=incoming.envelope.correlation_id,
            to=incoming.envelope.source,  # the coordinator that asked
        ))
        log.info("%s answered %s request %s: %s, %d records", self.service, request.right.value,
                 request.request_id, outcome, len(held))

    async def _held(self, uow: UnitOfWork, subject: str) -> list[tuple[str, Aggregate]]:
        held: list[tuple[str, Aggregate]] = []
        for spec in self.specs:
            held += [(spec.name, agg) for agg in await uow.repositories[spec.name].find(limit=MAX_RECORDS,
                                                                                       subject=subject)]
        return held

    @staticmethod
    def _applicable(uow: UnitOfWork, name: str, aggregate: Aggregate, corrections: dict[str, Any]) -> dict[str, Any]:
        """The corrections a record takes: all of them, or for a withheld record only the fields its ground keeps
        (a correction never brings back a field the erasure dropped)."""
        withholding = uow.repositories[name].withheld.get(aggregate.id)
        if withholding is None:
            return corrections
        return {k: v for k, v in corrections.items() if k in withholding.keeps}

    @staticmethod
    def _record(uow: UnitOfWork, name: str, aggregate: Aggregate, status: str, *, with_data: bool = False,
                withholding=None) -> HeldRecord:
        withholding = withholding or uow.repositories[name].withheld.get(aggregate.id)
        if withholding is not None and status == "held":
            status = "withheld"
        return HeldRecord(
            collection=name, record_id=str(aggregate.id), status=status,
            data=aggregate.model_dump(mode="json", exclude={"version"}) if with_data and not withholding else None,
            ground=withholding.ground if withholding else None,
            keep_until=withholding.keep_until if withholding else None,
        )

    async def _erase(self, uow: UnitOfWork, subject: str, held: list[tuple[str, Aggregate]]) -> dict[str, Any]:
        records = []
        for name, aggregate in held:
            withholding = aggregate.withholding()
            if withholding is not None:
                aggregate.keep_only_for(withholding)
                await uow.withhold_record(name, aggregate, withholding)
                records.append(self._record(uow, name, aggregate, "withheld", withholding=withholding))
            else:
                await uow.erase_record(name, aggregate)
                records.append(self._record(uow, name, aggregate, "erased"))
        await uow.shred_subject(subject)
        destroyed = await self.destroy_dead_letters(subject) if self.destroy_dead_letters else 0
        state = await uow.subject_state(subject)
        state.erased_at = datetime.now(UTC)
        await uow.save_subject_state(state)
        readable = await uow.readable_about(subject)
        withheld = {f"{r.collection}/{r.record_id}" for r in records if r.status == "withheld"}
        if set(readable) - withheld:
            log.error("%s: after erasure still readable beyond what was withheld: %d items", self.service,
                      len(set(readable) - withheld))
        return {"records": records, "dead_letters_destroyed": destroyed, "readable_after": sorted(readable)}
