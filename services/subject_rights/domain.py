"""Data-subject requests as WerkSaam, the single contact point (agreement art 10.3), handles them.

A request is received with the person's verified identity and the right they exercise. It is routed by
the legal basis of the processing it concerns:
- access, rectification, erasure and restriction concern every party: the request fans out to every
  service that may hold data on the subject (scatter), and their answers are gathered; a request for one
  party (`parties`) is handed to that party alone (art 10.3): only its services are asked, and the request
  they receive names the parties it is for, so no other party's service acts on it;
- portability (art 20) applies only to processing based on consent or contract: Heliomare's (6(1)(b)).
  The request is handed over to Heliomare;
- objection (art 21) applies only to processing based on public task or legitimate interest: WerkSaam's
  (6(1)(e)). It goes to WerkSaam's own services.

Deadline: one calendar month from receipt (art 12(3)); the same day of the next month, or that month's
last day. Extendable once by two months, when the person is told why within the first month. A service
that does not answer is asked again; after the reminders, or when the deadline is near, the request is
escalated to the privacy officer. An open request past its deadline is overdue. Nothing waits forever:
every open request is either answered, escalated or listed overdue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.commands import IdentityCheck, SubmitSubjectRequest
from shared.contracts.events import HeldRecord, Right, SubjectRequestAnswered, SubjectRequestIssued
from shared.contracts.parties import LegalBasis, Party, load_parties
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate, Withholding
from shared.ids import uuid7
from shared.privacy.bsn import is_valid_bsn
from shared.privacy.periods import add_months

LOCAL = ZoneInfo("Europe/Amsterdam")  # a request received on a Dutch day is due on a Dutch day
# Art 12(5): a request "manifestly unfounded or excessive, in particular because of its repetitive character".
# WerkSaam's policy (README, data-subject rights): access or portability asked again within REPEAT_WINDOW of
# the completion of the same request is answered by the earlier answer, free of charge, unless the person asks
# for an update or says new data arrived (`update`); then it is carried out anew. No fee is ever charged.
REPEAT_WINDOW = timedelta(days=30)
REPEATABLE = {Right.ACCESS, Right.PORTABILITY}
CLOCK_SKEW = timedelta(minutes=5)  # a time "now" typed at the desk may run a little ahead of the service's clock


class RequestStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    REFUSED = "refused"


# Which legal bases each right applies to (GDPR art 20(1)(a), 21(1)); the others apply to all.
RIGHT_APPLIES_TO: dict[Right, set[LegalBasis]] = {
    Right.PORTABILITY: {LegalBasis.CONSENT, LegalBasis.CONTRACT},
    Right.OBJECTION: {LegalBasis.PUBLIC_TASK, LegalBasis.LEGITIMATE_INTERESTS},
}


def data_parties() -> list[str]:
    """The parties that may hold data on a person: those running services (commissioners and providers)."""
    return load_parties().service_parties()


def parties_for(right: Right) -> list[str]:
    """The parties whose processing a right can concern, by their legal basis (art 9 of the agreement) in the
    register of parties."""
    bases, register = RIGHT_APPLIES_TO.get(right), load_parties()
    return [p for p in data_parties() if bases is None or register.legal_basis(p) in bases]


def due_date(received_on: date, months: int = 1) -> date:
    """Art 12(3): within one month of receipt (31 January: 28 or 29 February)."""
    return add_months(received_on, months)


def days_to_deadline(days_left: int) -> str:
    """How far the deadline is, in words a person reads: "3 days to the deadline", "due today", "2 days overdue"."""
    if days_left == 0:
        return "due today"
    days = abs(days_left)
    words = f"{days} day{'s' if days != 1 else ''}"
    return f"{words} to the deadline" if days_left > 0 else f"{words} overdue"


def local_day(moment: datetime) -> date:
    return moment.astimezone(LOCAL).date()


@dataclass(frozen=True)
class ChasePolicy:
    reminder_after: timedelta
    max_reminders: int
    escalate_days_before_due: int


class Asked(BaseModel):
    """One service the request went to, and how often it was asked."""

    model_config = ConfigDict(extra="forbid")

    service: str
    party: Party
    attempts: int = 1
    last_asked_at: datetime
    answered_at: datetime | None = None
    outcome: str | None = None


class Package(BaseModel):
    """The personal part of a request, stored encrypted with the subject's key: the corrections asked
    for and the answers with the data the services hold."""

    model_config = ConfigDict(extra="forbid")

    corrections: dict[str, str] | None = None
    answers: dict[str, dict] = Field(default_factory=dict)  # service -> SubjectRequestAnswered as JSON


class SubjectRequest(Aggregate):
    subject: str
    right: Right
    parties: list[Party]
    identity: IdentityCheck
    received_at: datetime
    due: date
    original_due: date
    status: RequestStatus
    refusal_reasons: list[Reason] = Field(default_factory=list)
    extension_reason: str | None = None
    extension_told_at: datetime | None = None
    person_told_at: datetime | None = None  # before lifting a restriction (art 18(3))
    asked: list[Asked] = Field(default_factory=list)
    escalated_at: datetime | None = None
    escalation: str | None = None
    completed_at: datetime | None = None
    erasure_verified: bool | None = None
    taken_by: str | None = None  # the member of staff who took the request (the command's actor)
    answered_by: UUID | None = None  # art 12(5): a repetition answered by this earlier request's answer
    package: Package = Field(default_factory=Package)

    @property
    def handled_by(self) -> str:
        """The privacy officer handling the request: who took it, or else who verified the identity."""
        return self.taken_by or self.identity.verified_by

    # -- receipt -------------------------------------------------------------------------------------

    @classmethod
    def receive(cls, cmd: SubmitSubjectRequest, subject: str, now: datetime,
                holders: dict[Party, list[str]], open_same: SubjectRequest | None,
                restricted: bool, earlier: list[SubjectRequest] = ()) -> SubjectRequest:
        """Take a request. A refused one is recorded too (with its reasons); only an accepted one is sent."""
        received_at = cmd.received_at or now
        received_on = local_day(received_at)
        applicable = parties_for(cmd.right)
        parties = sorted(set(cmd.parties)) if cmd.parties else applicable
        reasons: list[Reason] = []
        for name, moment in (("received_at", cmd.received_at), ("person_told_at", cmd.person_told_at),
                             ("identity.verified_at", cmd.identity.verified_at)):
            if moment is not None and moment > now + CLOCK_SKEW:  # the deadline cannot run from tomorrow
                reasons.append(Reason(code=ReasonCode.INVALID_VALUE, field=name, detail="in the future"))
        if not is_valid_bsn(cmd.bsn):  # a mistyped BSN is somebody else's number: never ask about it
            reasons.append(Reason(code=ReasonCode.BSN_INVALID, field="bsn", detail="fails the 11-test"))
        if not cmd.identity.verified:
            reasons.append(Reason(code=ReasonCode.IDENTITY_NOT_VERIFIED, field="identity.method",
                                  detail="verify the identity before the request is carried out (art 12(6))"))
        if not_applicable := [p for p in parties if p not in applicable]:
            reasons.append(Reason(
                code=ReasonCode.RIGHT_NOT_APPLICABLE, field="parties",
                detail=f"{cmd.right.value} does not apply to processing on "
                       f"{', '.join(load_parties().legal_basis(p).value for p in not_applicable)}"))
        if open_same is not None:
            reasons.append(Reason(code=ReasonCode.DUPLICATE_REQUEST, field="right",
                                  detail=f"request {open_same.id} for this right is still open"))
        if cmd.right == Right.LIFT_RESTRICTION:
            if cmd.person_told_at is None:
                reasons.append(Reason(code=ReasonCode.NOT_TOLD_BEFORE_LIFTING, field="person_told_at",
                                      detail="tell the person before the restriction is lifted (art 18(3))"))
            if not restricted:
                reasons.append(Reason(code=ReasonCode.NOT_RESTRICTED, field="right"))
        corrections = cmd.corrections.as_message() if cmd.corrections else None
        if cmd.right == Right.RECTIFICATION and not corrections:
            reasons.append(Reason(code=ReasonCode.MISSING_FIELD, field="corrections"))
        request = cls(
            id=uuid7(), subject=subject, right=cmd.right, parties=parties, identity=cmd.identity, taken_by=cmd.actor,
            received_at=received_at, due=due_date(received_on), original_due=due_date(received_on),
            status=RequestStatus.REFUSED if reasons else RequestStatus.OPEN, refusal_reasons=reasons,
            person_told_at=cmd.person_told_at, package=Package(corrections=corrections),
        )
        if reasons:
            request.completed_at = now
            return request
        if (answer := request._recent_answer(earlier, cmd.update)) is not None:
            request.status, request.completed_at, request.answered_by = RequestStatus.COMPLETED, now, answer.id
            return request  # nothing sent: the earlier answer is the answer
        request.asked = [Asked(service=service, party=party, last_asked_at=now)
                         for party in parties for service in holders.get(party, [])]
        request._issue(attempt=1)
        return request

    def _recent_answer(self, earlier: list[SubjectRequest], update: bool) -> SubjectRequest | None:
        """Art 12(5): the same access or portability request for the same parties, completed (and carried out,
        not itself a repetition) within REPEAT_WINDOW before this one was received, unless an update is asked."""
        if update or self.right not in REPEATABLE:
            return None
        same = [r for r in earlier if r.subject == self.subject and r.right == self.right
                and r.status == RequestStatus.COMPLETED and r.answered_by is None and r.completed_at
                and set(r.parties) >= set(self.parties) and self.received_at - r.completed_at <= REPEAT_WINDOW]
        return max(same, key=lambda r: r.completed_at, default=None)

    def _issue(self, attempt: int, to: Iterable[str] | None = None) -> None:
        """One message to each party the request is for (`to`: only to these), addressed to it: its services
        carry it out."""
        corrections = self.package.corrections
        for party in sorted(set(self.parties if to is None else to)):
            self.emit(SubjectRequestIssued(request_id=self.id, right=self.right, parties=self.parties, due=self.due,
                                           attempt=attempt, corrections=corrections), subject=self.subject, to=party)

    # -- answers -------------------------------------------------------------------------------------

    def record_answer(self, answer: SubjectRequestAnswered, party: Party, now: datetime) -> None:
        asked = next((a for a in self.asked if a.service == answer.service and a.party == party), None)
        if asked is None:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_REQUEST, field="service",
                                 detail="that service was not asked for this request"))
        if answer.right != self.right:
            raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="right", detail="not the right asked for"))
        if asked.answered_at is not None:
            return  # the answer to a reminder: the first one stands
        asked.answered_at, asked.outcome = now, answer.outcome
        self.package.answers[answer.service] = answer.model_dump(mode="json")
        if all(a.answered_at for a in self.asked):
            self._complete(now)

    def _complete(self, now: datetime) -> None:
        self.status, self.completed_at = RequestStatus.COMPLETED, now
        if self.right == Right.ERASURE:
            self.erasure_verified = all(self._only_withheld_readable(a) for a in self.package.answers.values())

    @staticmethod
    def _only_withheld_readable(answer: dict) -> bool:
        records = [HeldRecord.model_validate(r) for r in answer.get("records", [])]
        withheld = {f"{r.collection}/{r.record_id}" for r in records if r.status == "withheld"}
        return set(answer.get("readable_after", [])) <= withheld

    def forget_copies(self) -> None:
        """After the subject's erasure: drop the copies of their data that earlier answers brought (access
        packages, corrections), keeping what shows how each request was handled (services, statuses, grounds)."""
        self.package = Package(corrections=None, answers={
            service: {**answer, "records": [{**r, "data": None} for r in answer.get("records", [])],
                      "processing_log": []}
            for service, answer in self.package.answers.items()})

    def accountability(self) -> Withholding:
        """Why the request's record is kept after the subject's erasure (GDPR art 5(2), 12: proof of handling)."""
        start = local_day(self.completed_at or self.received_at)
        return Withholding(ground="GDPR art 5(2) and 12: the record of how a data-subject request was handled "
                                  "(without the data it disclosed)", keep_until=add_months(start, 5 * 12))

    # -- deadlines -----------------------------------------------------------------------------------

    def extend(self, reason: str, told_at: datetime, now: datetime) -> None:
        """Art 12(3): two more months, once, with the reason told to the person within the first month.
        What counts is when the person was told, not when the desk records it: told in time and recorded
        after the first month is an extension all the same (a time told cannot be in the future, nor before
        the request was received)."""
        self._require_open()
        if self.extension_reason is not None:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail="already extended once"))
        if told_at > now + CLOCK_SKEW or told_at < self.received_at:
            raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="person_told_at",
                                 detail="in the future" if told_at > now else "before the request was received"))
        if local_day(told_at) > self.original_due:
            raise Refusal(Reason(code=ReasonCode.EXTENSION_TOO_LATE, field="person_told_at",
                                 detail=f"the person had to be told by {self.original_due}"))
        self.extension_reason, self.extension_told_at = reason, told_at
        self.due = due_date(local_day(self.received_at), months=3)

    def chase(self, now: datetime, policy: ChasePolicy) -> list[str]:
        """Ask silent services again; escalate when they stay silent or the deadline comes near.
        Returns the services asked again."""
        if self.status != RequestStatus.OPEN:
            return []
        silent = [a for a in self.asked if a.answered_at is None]
        again = [a for a in silent if now - a.last_asked_at >= policy.reminder_after]
        exhausted = [a.service for a in again if a.attempts > policy.max_reminders]
        remind = [a for a in again if a.attempts <= policy.max_reminders]
        if remind:
            attempt = max(a.attempts for a in remind) + 1
            for a in remind:
                a.attempts, a.last_asked_at = a.attempts + 1, now
            self._issue(attempt, to={a.party for a in remind})  # only the parties with a silent service
        days_left = (self.due - local_day(now)).days
        if self.escalated_at is None and (exhausted or days_left <= policy.escalate_days_before_due):
            self.escalated_at = now
            silent_names = ", ".join(a.service for a in silent) or "none"
            self.escalation = (f"no answer after {policy.max_reminders} reminders from {', '.join(exhausted)}"
                               if exhausted else f"{days_to_deadline(days_left)}; waiting for {silent_names}")
        return [a.service for a in remind]

    def deadline_state(self, today: date, escalate_days: int) -> str:
        if self.status != RequestStatus.OPEN:
            return "closed"
        if today > self.due:
            return "overdue"
        if self.escalated_at is not None or (self.due - today).days <= escalate_days:
            return "at_risk"
        return "on_time"

    def _require_open(self) -> None:
        if self.status != RequestStatus.OPEN:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail=f"request is {self.status.value}"))

    # -- retention ------------------------------------------------------------------------------------

    def retention_start(self) -> date | None:
        return local_day(self.completed_at) if self.completed_at else None

    # -- read side ------------------------------------------------------------------------------------

    def by_party(self) -> list[dict]:
        """What each party did with the request, and for a party it was not for, that it did nothing: its
        services were not asked, and the request they may see names only the parties it is for, which alone
        carry it out (agreement art 10.3; objection and portability by legal basis, GDPR art 20(1), 21(1))."""
        out = []
        for party in data_parties():
            asked = [a for a in self.asked if a.party == party]
            if party in self.parties:
                waiting = [a.service for a in asked if a.answered_at is None]
                if self.status == RequestStatus.REFUSED:
                    did = "nothing: the request was refused"
                elif self.answered_by is not None:
                    did = f"nothing new: answered by request {self.answered_by} (art 12(5))"
                elif not asked:
                    did = "nothing: none of its services holds such data"
                elif waiting:
                    did = f"waiting for {', '.join(waiting)}"
                else:
                    did = ", ".join(f"{a.service} {a.outcome}" for a in asked)
            elif party not in parties_for(self.right):
                did = (f"nothing: {self.right.value} does not apply to its processing "
                       f"({load_parties().legal_basis(party).value})")
            else:
                did = "nothing: the request is not for this party (art 10.3)"
            out.append({"party": party, "for_this_party": party in self.parties,
                        "services": [a.service for a in asked], "did": did})
        return out

    def view(self, today: date, escalate_days: int, *, with_package: bool = False) -> dict:
        out = {
            "request_id": str(self.id), "subject": self.subject, "right": self.right.value,
            "parties": [p.value for p in self.parties], "status": self.status.value,
            "received_at": self.received_at.isoformat(), "due": self.due.isoformat(),
            "original_due": self.original_due.isoformat(), "extended": self.extension_reason is not None,
            "extension_reason": self.extension_reason,
            "extension_told_at": self.extension_told_at.isoformat() if self.extension_told_at else None,
            "deadline": self.deadline_state(today, escalate_days),
            "identity": {"method": self.identity.method, "verified_by": self.identity.verified_by},
            "reasons": [r.model_dump(mode="json", exclude_none=True) for r in self.refusal_reasons],
            "services": [{"service": a.service, "party": a.party.value, "attempts": a.attempts,
                          "answered": a.answered_at is not None, "outcome": a.outcome} for a in self.asked],
            "by_party": self.by_party(),
            "escalated_at": self.escalated_at.isoformat() if self.escalated_at else None,
            "escalation": self.escalation,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "erasure_verified": self.erasure_verified,
            "answered_by": str(self.answered_by) if self.answered_by else None,
        }
        if with_package:  # the person's data: the answers, and the corrections a rectification asked for
            out["answers"] = self.package.answers
            out["corrections"] = self.package.corrections
        return out


def excluding_requests(requests: list[SubjectRequest]) -> list[SubjectRequest]:
    """The requests that leave the subject out of processing now: the restriction in force (the latest
    completed restriction, unless lifted since) and any completed objection (it is not lifted)."""
    done = [r for r in requests if r.status == RequestStatus.COMPLETED]
    objections = [r for r in done if r.right == Right.OBJECTION]
    restrictions = [r for r in done if r.right in {Right.RESTRICTION, Right.LIFT_RESTRICTION}]
    latest = max(restrictions, key=lambda r: r.completed_at, default=None)
    return objections + ([latest] if latest is not None and latest.right == Right.RESTRICTION else [])


def may_read(actor: str | None, request: SubjectRequest, requests: list[SubjectRequest]) -> bool:
    """Whether `actor` may read the data a request's answers hold on its subject. A restricted or objecting
    person's data is read only by the privacy officer handling the request: who took this request, or the
    restriction or objection in force (GDPR art 18(2): stored, processed only as the right allows).
    Seam: when the staff register has roles, any WerkSaam member of staff with the privacy-officer role."""
    excluding = excluding_requests(requests)
    if not excluding:
        return True
    return actor is not None and actor in {request.handled_by, *(r.handled_by for r in excluding)}


def restricted_now(requests: list[SubjectRequest]) -> bool:
    """Whether the subject's processing is restricted: the latest completed restriction or lifting wins."""
    relevant = [r for r in requests if r.status == RequestStatus.COMPLETED
                and r.right in {Right.RESTRICTION, Right.LIFT_RESTRICTION}]
    latest = max(relevant, key=lambda r: r.completed_at, default=None)
    return latest is not None and latest.right == Right.RESTRICTION

