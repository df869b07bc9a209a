"""Personal-data breaches (agreement art 12, GDPR art 33-34): a party's breach desk and its clocks.

Any party reports a (suspected) breach: presumed cause, categories of data and of subjects, how many
subjects and which (pseudonyms found from the processing log of the affected services in the breach
window). Each party keeps a `Breach` for every breach it knows, its own and those reported to it, with
three clocks:

- **inform the other parties** within 24 hours of detection (agreement art 12): met when the report was
  sent (the reporter's record) or received (the receiver's record);
- **notify the Autoriteit Persoonsgegevens** within 72 hours of this party becoming aware (GDPR art 33(1)):
  for its own breach, when it detected it; for another party's, when the report reached it. Met by
  recording the notification (time, the AP's reference), or the decision that it is not required;
- **inform the data subjects** (art 34): a decision, inform or not, with a reason code.

A clock is `met` (done by its deadline), `late` (done after it), `running` or `overdue` (not done, and
the deadline has or has not passed). Nothing here does I/O; the desk's handlers are plain functions.

The desk is one mechanism that a service of each party takes on (`breach_desk(party)`): WerkSaam's
subject_rights (its privacy desk) and Heliomare's offer (its first point of contact with WerkSaam).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from shared.contracts.commands import (
    DecideSubjectNotification,
    ListBreaches,
    RecordAuthorityNotification,
    ReportBreach,
    SubjectNotificationReason,
)
from shared.contracts.events import BreachCause, BreachDataCategory, BreachReported, BreachSubjectCategory
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate
from shared.ids import uuid7
from shared.messaging.handlers import Answer
from shared.privacy.register import performs
from shared.unit_of_work import RepositorySpec, UnitOfWork

INFORM_PARTIES_WITHIN = timedelta(hours=24)  # agreement art 12
NOTIFY_AUTHORITY_WITHIN = timedelta(hours=72)  # GDPR art 33(1)

ClockState = Literal["met", "late", "running", "overdue"]


def clock(due: datetime, done_at: datetime | None, now: datetime) -> dict[str, Any]:
    """The state of one deadline at `now`."""
    if done_at is not None:
        state: ClockState = "met" if done_at <= due else "late"
    else:
        state = "overdue" if now > due else "running"
    return {"due": due.isoformat(), "done_at": done_at.isoformat() if done_at else None, "state": state,
            "hours_left": None if done_at else round((due - now).total_seconds() / 3600, 1)}


class Breach(Aggregate):
    origin: Party  # the party that reported it
    own: bool  # reported by this party (True) or to it (False)
    detected_at: datetime
    reported_at: datetime
    aware_at: datetime  # when this party became aware: its 72-hour clock starts here
    informed_at: datetime  # own: when the report was sent; another's: when it reached this party
    presumed_cause: BreachCause
    data_categories: list[BreachDataCategory]
    subject_categories: list[BreachSubjectCategory]
    subject_count: int
    affected_subjects: list[str] = Field(default_factory=list)
    window_since: datetime
    window_until: datetime
    services: list[str]
    authority_notified_at: datetime | None = None
    authority_reference: str | None = None
    authority_not_required: bool = False
    inform_subjects: bool | None = None
    subjects_reason: SubjectNotificationReason | None = None
    subjects_decided_at: datetime | None = None

    # -- reporting and receiving -----------------------------------------------------------------------

    @classmethod
    def report(cls, cmd: ReportBreach, party: Party, now: datetime) -> Breach:
        reasons = []
        if cmd.window_until <= cmd.window_since:
            reasons.append(Reason(code=ReasonCode.INVALID_VALUE, field="window_until", detail="not after since"))
        if cmd.detected_at > now:
            reasons.append(Reason(code=ReasonCode.INVALID_VALUE, field="detected_at", detail="in the future"))
        subjects = sorted(set(cmd.affected_subjects))
        count = len(subjects) if cmd.subject_count is None else cmd.subject_count
        if count < len(subjects):
            reasons.append(Reason(code=ReasonCode.INVALID_VALUE, field="subject_count",
                                  detail="less than the subjects named"))
        if reasons:
            raise Refusal(*reasons)
        breach = cls(
            id=uuid7(), origin=party, own=True, detected_at=cmd.detected_at, reported_at=now, aware_at=cmd.detected_at,
            informed_at=now, presumed_cause=cmd.presumed_cause, data_categories=sorted(set(cmd.data_categories)),
            subject_categories=sorted(set(cmd.subject_categories)), subject_count=count, affected_subjects=subjects,
            window_since=cmd.window_since, window_until=cmd.window_until, services=sorted(set(cmd.services)),
        )
        breach.emit(BreachReported(
            breach_id=breach.id, detected_at=breach.detected_at, reported_at=breach.reported_at,
            presumed_cause=breach.presumed_cause, data_categories=breach.data_categories,
            subject_categories=breach.subject_categories, subject_count=breach.subject_count,
            affected_subjects=breach.affected_subjects, window_since=breach.window_since,
            window_until=breach.window_until, services=breach.services), subject=None)
        return breach

    @classmethod
    def receive(cls, report: BreachReported, origin: Party, now: datetime) -> Breach:
        return cls(
            id=report.breach_id, origin=origin, own=False, detected_at=report.detected_at,
            reported_at=report.reported_at, aware_at=now, informed_at=now, presumed_cause=report.presumed_cause,
            data_categories=report.data_categories, subject_categories=report.subject_categories,
            subject_count=report.subject_count, affected_subjects=sorted(set(report.affected_subjects)),
            window_since=report.window_since, window_until=report.window_until, services=report.services,
        )

    # -- what the party did about it -------------------------------------------------------------------

    def record_authority_notification(self, cmd: RecordAuthorityNotification, now: datetime) -> None:
        if self.authority_notified_at is not None:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail="the authority notification is recorded"))
        if cmd.not_required == (cmd.reference is not None):
            raise Refusal(Reason(code=ReasonCode.MISSING_FIELD if not cmd.not_required else ReasonCode.INVALID_VALUE,
                                 field="reference", detail="a notification has the AP's reference; "
                                                           "a decision that none is required has none"))
        if cmd.at > now or cmd.at < self.aware_at - INFORM_PARTIES_WITHIN:
            raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="at", detail="not a plausible time"))
        self.authority_notified_at, self.authority_reference = cmd.at, cmd.reference
        self.authority_not_required = cmd.not_required

    def decide_subject_notification(self, cmd: DecideSubjectNotification, now: datetime) -> None:
        if self.inform_subjects is not None:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail="the decision is recorded"))
        if cmd.inform != (cmd.reason == SubjectNotificationReason.HIGH_RISK):
            raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="reason",
                                 detail="inform for high_risk; otherwise a ground of art 34(1) or 34(3)"))
        self.inform_subjects, self.subjects_reason = cmd.inform, cmd.reason
        self.subjects_decided_at = cmd.decided_at or now

    # -- clocks ----------------------------------------------------------------------------------------

    def clocks(self, now: datetime) -> dict[str, dict[str, Any]]:
        return {
            "inform_parties": clock(self.detected_at + INFORM_PARTIES_WITHIN, self.informed_at, now),
            "notify_authority": clock(self.aware_at + NOTIFY_AUTHORITY_WITHIN, self.authority_notified_at, now),
        }

    def overdue(self, now: datetime) -> bool:
        return any(c["state"] == "overdue" for c in self.clocks(now).values())

    def view(self, now: datetime) -> dict[str, Any]:
        return {
            "breach_id": str(self.id), "reported_by": self.origin.value, "own": self.own,
            "detected_at": self.detected_at.isoformat(), "reported_at": self.reported_at.isoformat(),
            "aware_at": self.aware_at.isoformat(), "presumed_cause": self.presumed_cause.value,
            "data_categories": [c.value for c in self.data_categories],
            "subject_categories": [c.value for c in self.subject_categories],
            "subject_count": self.subject_count, "subjects_named": len(self.affected_subjects),
            "window": {"since": self.window_since.isoformat(), "until": self.window_until.isoformat()},
            "services": self.services, "clocks": self.clocks(now),
            "authority": {"notified_at": self.authority_notified_at.isoformat() if self.authority_notified_at
                          else None, "reference": self.authority_reference,
                          "not_required": self.authority_not_required},
            "subjects_decision": None if self.inform_subjects is None else {
                "inform": self.inform_subjects, "reason": self.subjects_reason.value,
                "decided_at": self.subjects_decided_at.isoformat()},
        }


BREACHES = RepositorySpec("breaches", Breach, indexes=(("own",),))


def _now() -> datetime:
    return datetime.now(UTC)


def breach_desk(party: Party) -> tuple[dict, dict]:
    """The breach desk's (event handlers, command handlers) for a service of `party`, performing the party's
    registered activity `breach-notification`. The service adds BREACHES to its repositories and
    BreachReported to what it emits."""
    activity = f"urn:werkbrug:activity:{party.value}:breach-notification:v2"

    @performs(activity)
    async def report_breach(cmd: ReportBreach, uow: UnitOfWork) -> Answer:
        now = _now()
        breach = Breach.report(cmd, party, now)
        uow.breaches.add(breach)
        _names_subjects(uow, breach)
        return Answer(breach.view(now), lifecycle_id=breach.id)  # the breach is a lifecycle: one trace

    @performs(activity)
    async def on_breach_reported(event, uow: UnitOfWork) -> None:
        if await uow.breaches.get(event.data.breach_id) is not None:
            return  # the same breach again (another message id): the first report stands
        breach = Breach.receive(event.data, event.envelope.source, _now())
        uow.breaches.add(breach)
        _names_subjects(uow, breach)

    @performs(activity)
    async def record_authority_notification(cmd: RecordAuthorityNotification, uow: UnitOfWork) -> dict:
        breach = await _require(uow, cmd.breach_id)
        breach.record_authority_notification(cmd, _now())
        return breach.view(_now())

    @performs(activity)
    async def decide_subject_notification(cmd: DecideSubjectNotification, uow: UnitOfWork) -> dict:
        breach = await _require(uow, cmd.breach_id)
        breach.decide_subject_notification(cmd, _now())
        return breach.view(_now())

    @performs(activity)
    async def list_breaches(query: ListBreaches, uow: UnitOfWork) -> list[dict]:
        now = query.now or _now()
        views = []
        for breach in await uow.breaches.find(limit=query.limit):
            if query.overdue and not breach.overdue(now):
                continue
            view = breach.view(now)
            if breach.own:  # how the other parties answered the report (their retours)
                view["deliveries"] = [{"to": (d["retour"] or {}).get("from"), "status": (d["retour"] or {}).get(
                    "status", "awaiting retour"), "at": (d["retour"] or {}).get("at")}
                    for d in await uow.deliveries(breach.id)]
            views.append(view)
        return views

    events = {BreachReported: on_breach_reported}
    commands = {ReportBreach: report_breach, RecordAuthorityNotification: record_authority_notification,
                DecideSubjectNotification: decide_subject_notification, ListBreaches: list_breaches}
    return events, commands


def _names_subjects(uow: UnitOfWork, breach: Breach) -> None:
    """Sending or keeping the affected subjects' pseudonyms is processing of their data: one log record each."""
    if uow.processing is not None:
        uow.processing.subjects |= set(breach.affected_subjects)


async def _require(uow: UnitOfWork, breach_id: uuid.UUID) -> Breach:
    breach = await uow.breaches.get(breach_id)
    if breach is None:
        raise Refusal(Reason(code=ReasonCode.UNKNOWN_BREACH, field="breach_id"))
    return breach
