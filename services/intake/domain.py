"""Intake (WerkSaam): the referral (aanmelding) and the commissioner's decision on quotes.

Bijlage 2 steps 1 and 3 as seen by WerkSaam:
1. a caseworker refers a person; the referral is checked against the target group of art 4
   (resident of one of the seven West-Frisian municipalities, a labour disability, Participatiewet
   entitlement) and the BSN's 11-test; it is registered and handed to Heliomare, or refused with
   reason codes (a refusal is recorded, never dropped, and keeps no personal data);
3. Heliomare's quote arrives; WerkSaam approves it or rejects it with a reason; a rejected quote can
   be followed by a new one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.commands import SubmitReferral
from shared.contracts.envelope import now_utc
from shared.contracts.events import (
    ContractType,
    DeclineReason,
    HoursBand,
    InvoiceBasis,
    InvoiceIssued,
    InvoiceMoment,
    InvoiceTranche,
    Outcome,
    Phase,
    ProgressStatus,
    QuoteApproved,
    QuoteKind,
    QuoteRejected,
    QuoteRejectReason,
    QuoteSent,
    ReferralRegistered,
    StopReason,
    SupportNeed,
    TrajectoryEnded,
    TrajectoryProgressed,
    TrajectoryStarted,
)
from shared.contracts.parties import Municipality, Party, Role, load_parties
from shared.contracts.personal import PersonalData, date_of_birth_reasons
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate, NotYet, Withholding
from shared.ids import uuid7
from shared.privacy.bsn import is_valid_bsn
from shared.privacy.grounds import ARCHIEFWET_REINTEGRATION


class ReferralStatus(StrEnum):
    REFUSED = "refused"  # failed the intake checks; nothing was sent
    REGISTERED = "registered"  # sent to Heliomare
    ACCEPTED = "accepted"  # Heliomare took it on
    DECLINED = "declined"  # Heliomare declined it (end)
    QUOTE_RECEIVED = "quote_received"  # waiting for WerkSaam's decision
    QUOTE_REJECTED = "quote_rejected"  # waiting for a new quote
    QUOTE_APPROVED = "quote_approved"  # ready for the trajectory start
    TRAJECTORY_RUNNING = "trajectory_running"  # Heliomare reported the start (or progress)
    TRAJECTORY_ENDED = "trajectory_ended"  # Heliomare reported the end (invoices may follow)


OPEN = {ReferralStatus.REGISTERED, ReferralStatus.ACCEPTED, ReferralStatus.QUOTE_RECEIVED,
        ReferralStatus.QUOTE_REJECTED, ReferralStatus.QUOTE_APPROVED, ReferralStatus.TRAJECTORY_RUNNING}


class ReceivedQuote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote_id: uuid.UUID
    sequence: int
    kind: QuoteKind
    amount: Decimal
    planned_start: date
    duration_weeks: int
    invoicing: list[InvoiceTranche]
    received_at: datetime
    decision: str | None = None  # approved | rejected
    reject_reason: QuoteRejectReason | None = None
    decided_at: datetime | None = None


class ProgressRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sequence: int
    reported_on: date
    phase: Phase
    status: ProgressStatus


class TrajectoryRecord(BaseModel):
    """The trajectory as WerkSaam registers it from Heliomare's messages (art 3.5). Every message must
    follow from what WerkSaam has seen: progress, the end and invoices follow the start, under the
    trajectory id the start gave. They travel on separate queues, so one may overtake the start: such a
    message does not follow YET (NotYet) and is tried again until the start had time to arrive; one that
    contradicts the record (another trajectory id, a second different start or end, a date before the
    start or the referral) is refused at once."""

    model_config = ConfigDict(extra="forbid")

    trajectory_id: uuid.UUID
    start_date: date | None = None
    planned_end: date | None = None
    progress: list[ProgressRecord] = Field(default_factory=list)
    end_date: date | None = None
    outcome: Outcome | None = None
    contract_type: ContractType | None = None
    hours_band: HoursBand | None = None
    stop_reason: StopReason | None = None


class ReceivedInvoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    invoice_id: uuid.UUID
    number: str
    trajectory_id: uuid.UUID
    invoice_date: date
    moment: InvoiceMoment
    basis: InvoiceBasis
    amount_excl_vat: Decimal
    vat_amount: Decimal
    total: Decimal


class Referral(Aggregate):
    subject: str | None  # pseudonym; None when the BSN itself was invalid
    status: ReferralStatus
    submitted_at: datetime
    municipality: Municipality | None = None
    support_need: SupportNeed | None = None
    requested_start: date | None = None
    person: PersonalData | None = None  # None for a refused referral: nothing to keep
    personal_field: ClassVar[str | None] = "person"
    # The provider the referral is addressed to (every message about it goes to it, and is taken only from it).
    # A referral recorded before messages were addressed (issue 18) went to the founding provider.
    provider: str = Party.HELIOMARE
    refusal_reasons: list[Reason] = Field(default_factory=list)
    decline_reason: DeclineReason | None = None
    quotes: list[ReceivedQuote] = Field(default_factory=list)
    trajectory: TrajectoryRecord | None = None
    invoices: list[ReceivedInvoice] = Field(default_factory=list)

    # -- data-subject rights and retention -----------------------------------------------------------

    def retention_start(self) -> date | None:
        """The file is closed when the referral was refused or declined, or the trajectory ended (the last
        invoice may come later: the period runs from the latest of these dates)."""
        if self.status not in {ReferralStatus.REFUSED, ReferralStatus.DECLINED, ReferralStatus.TRAJECTORY_ENDED}:
            return None
        dates = [self.submitted_at.date(), *(q.decided_at.date() for q in self.quotes if q.decided_at),
                 *(i.invoice_date for i in self.invoices)]
        if self.trajectory and self.trajectory.end_date:
            dates.append(self.trajectory.end_date)
        return max(dates)

    def withholding(self) -> Withholding | None:
        """A referral that led to an approved trajectory is part of WerkSaam's re-integration file and its
        payments, which the Archiefwet requires it to keep (only the fields that duty needs); one that ended
        before is erased."""
        if self.approved_amount() is None and not self.invoices:
            return None
        return ARCHIEFWET_REINTEGRATION.withholding(self.retention_start() or now_utc().date())

    # -- step 1 ------------------------------------------------------------------------------------

    @classmethod
    def submit(cls, cmd: SubmitReferral, pseudonymise: Callable[[str], str],
               open_referral: uuid.UUID | None = None, provider: str | None = None) -> Referral:
        """`open_referral`: the person's referral still in progress, if any; a second one is refused.
        `provider`: the provider it is addressed to; by default the one provider of the register of parties."""
        reasons = target_group_reasons(cmd)
        if open_referral is not None:
            reasons.append(Reason(code=ReasonCode.DUPLICATE_REFERRAL, detail=f"open referral {open_referral}"))
        postal_code = normalise_postal_code(cmd.postal_code)
        if postal_code is None:
            reasons.append(Reason(code=ReasonCode.INVALID_VALUE, field="postal_code", detail="not a Dutch postal code"))
        submitted_at = now_utc()
        reasons += date_of_birth_reasons(cmd.date_of_birth, submitted_at.date())
        valid_bsn = is_valid_bsn(cmd.bsn)
        referral = cls(
            id=uuid7(),
            subject=pseudonymise(cmd.bsn) if valid_bsn else None,
            status=ReferralStatus.REFUSED if reasons else ReferralStatus.REGISTERED,
            submitted_at=submitted_at,
            refusal_reasons=reasons,
            provider=provider or load_parties().sole(Role.PROVIDER),
        )
        if reasons:
            return referral
        referral.municipality = Municipality(normalise_municipality(cmd.municipality))
        referral.support_need = cmd.support_need
        referral.requested_start = cmd.requested_start
        referral.person = PersonalData.of(cmd, postal_code=postal_code)
        referral.emit(
            ReferralRegistered(
                referral_id=referral.id, **referral.person.model_dump(), municipality=referral.municipality,
                support_need=cmd.support_need, requested_start=cmd.requested_start,
            ),
            subject=referral.subject, to=referral.provider,
        )
        return referral

    # -- Heliomare's answers -----------------------------------------------------------------------

    def provider_accepted(self) -> None:
        if self.status == ReferralStatus.REGISTERED:
            self.status = ReferralStatus.ACCEPTED
        elif self.status in {ReferralStatus.DECLINED, ReferralStatus.REFUSED}:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail=f"accepted while {self.status}"))
        # A quote may overtake the acceptance (they travel on different queues): then it is already implied.

    def provider_declined(self, reason: DeclineReason) -> None:
        if self.status not in {ReferralStatus.REGISTERED, ReferralStatus.ACCEPTED}:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail=f"declined while {self.status}"))
        self.status = ReferralStatus.DECLINED
        self.decline_reason = reason

    def quote_received(self, quote: QuoteSent) -> None:
        allowed = {ReferralStatus.REGISTERED, ReferralStatus.ACCEPTED, ReferralStatus.QUOTE_REJECTED}
        if self.status not in allowed:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail=f"quote while {self.status}"))
        if any(q.quote_id == quote.quote_id for q in self.quotes):
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail="quote id already received"))
        if quote.planned_start < self.submitted_at.date():
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_REFERRAL, field="data.planned_start"))
        self.quotes.append(ReceivedQuote(
            quote_id=quote.quote_id, sequence=quote.sequence, kind=quote.kind, amount=quote.amount,
            planned_start=quote.planned_start, duration_weeks=quote.duration_weeks,
            invoicing=list(quote.invoicing), received_at=now_utc(),
        ))
        self.status = ReferralStatus.QUOTE_RECEIVED

    # -- step 3 ------------------------------------------------------------------------------------

    def decide_quote(self, quote_id: uuid.UUID, approve: bool, reason: QuoteRejectReason | None) -> None:
        quote = next((q for q in self.quotes if q.quote_id == quote_id), None)
        if quote is None:
            raise Refusal(ReasonCode.UNKNOWN_QUOTE)
        if quote is not self.quotes[-1]:
            raise Refusal(ReasonCode.QUOTE_SUPERSEDED)
        if self.status != ReferralStatus.QUOTE_RECEIVED or quote.decision is not None:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail=f"decision while {self.status}"))
        if not approve and reason is None:
            raise Refusal(Reason(code=ReasonCode.MISSING_FIELD, field="reject_reason"))
        quote.decided_at = now_utc()
        if approve:
            quote.decision = "approved"
            self.status = ReferralStatus.QUOTE_APPROVED
            self.emit(QuoteApproved(referral_id=self.id, quote_id=quote_id, approved_amount=quote.amount),
                      subject=self.subject, to=self.provider)
        else:
            quote.decision, quote.reject_reason = "rejected", reason
            self.status = ReferralStatus.QUOTE_REJECTED
            self.emit(QuoteRejected(referral_id=self.id, quote_id=quote_id, reason=reason), subject=self.subject,
                      to=self.provider)
        self.quotes = list(self.quotes)  # re-validate the changed item

    # -- steps 4, 6, 7: the trajectory as Heliomare reports it -----------------------------------------

    def trajectory_started(self, event: TrajectoryStarted) -> None:
        # WerkSaam's approval is its own decision, recorded before quote.approved left: no waiting for it.
        if event.quote_id != self._approved_quote().quote_id:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_QUOTE, detail="not the approved quote"))
        if event.start_date < self.submitted_at.date():
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_REFERRAL, field="data.start_date"))
        t = self._trajectory(event.trajectory_id)
        if t.start_date is not None:
            if (t.start_date, t.planned_end) != (event.start_date, event.planned_end):
                raise Refusal(ReasonCode.TRAJECTORY_ALREADY_STARTED)
            return  # the same start again: nothing new
        if event.start_date < self.submitted_at.date():
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_REFERRAL, field="data.start_date"))
        if any(p.reported_on < event.start_date for p in t.progress) or (
                t.end_date is not None and t.end_date < event.start_date):
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_START, detail="reported dates precede this start"))
        t.start_date, t.planned_end = event.start_date, event.planned_end
        self._trajectory_changed(t)

    def trajectory_progressed(self, event: TrajectoryProgressed) -> None:
        self._approved_quote()
        t = self._started_trajectory(event.trajectory_id)
        report = ProgressRecord(sequence=event.sequence, reported_on=event.reported_on, phase=event.phase,
                                status=event.status)
        same = next((p for p in t.progress if p.sequence == event.sequence), None)
        if same is not None:
            if same != report:
                raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, field="data.sequence",
                                     detail="another report with this sequence"))
            return
        if t.start_date is not None and event.reported_on < t.start_date:
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_START, field="data.reported_on"))
        if t.end_date is not None and event.reported_on > t.end_date:
            raise Refusal(Reason(code=ReasonCode.TRAJECTORY_ENDED, field="data.reported_on", detail="after the end"))
        t.progress = sorted([*t.progress, report], key=lambda p: p.sequence)
        self._trajectory_changed(t)

    def trajectory_ended(self, event: TrajectoryEnded) -> None:
        self._approved_quote()
        t = self._started_trajectory(event.trajectory_id)
        end = (event.end_date, event.outcome, event.contract_type, event.hours_band, event.stop_reason)
        if t.end_date is not None:
            if (t.end_date, t.outcome, t.contract_type, t.hours_band, t.stop_reason) != end:
                raise Refusal(ReasonCode.TRAJECTORY_ENDED)
            return
        if t.start_date is not None and event.end_date < t.start_date:
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_START, field="data.end_date"))
        if any(p.reported_on > event.end_date for p in t.progress):
            raise Refusal(Reason(code=ReasonCode.DATE_OUT_OF_ORDER, field="data.end_date",
                                 detail="progress was reported after this end"))
        t.end_date, t.outcome, t.contract_type, t.hours_band, t.stop_reason = end
        self._trajectory_changed(t)

    # -- steps 5, 8: invoices (art 7) ----------------------------------------------------------------

    def invoice_received(self, event: InvoiceIssued) -> None:
        """Check an invoice on WerkSaam's side: for the approved quote and this trajectory, not twice,
        and never more in total than the approved amount (art 7.2)."""
        quote = self._approved_quote()
        if event.quote_id != quote.quote_id:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_QUOTE, detail="not the approved quote"))
        if self.trajectory is not None and self.trajectory.trajectory_id != event.trajectory_id:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_TRAJECTORY, field="data.trajectory_id",
                                 detail="not the trajectory that started"))
        invoice = ReceivedInvoice(invoice_id=event.invoice_id, number=event.invoice_number,
                                  trajectory_id=event.trajectory_id, invoice_date=event.invoice_date,
                                  moment=event.moment, basis=event.basis, amount_excl_vat=event.amount_excl_vat,
                                  vat_amount=event.vat_amount, total=event.total)
        same = next((i for i in self.invoices if event.invoice_id == i.invoice_id or event.invoice_number == i.number),
                    None)
        if same is not None:
            if same != invoice:
                raise Refusal(ReasonCode.DUPLICATE_INVOICE)
            return
        if self.invoiced_total() + event.amount_excl_vat > quote.amount:
            raise Refusal(Reason(code=ReasonCode.INVOICE_EXCEEDS_APPROVED, field="data.amount_excl_vat"))
        # What contradicts the records is refused above, at once; what may still follow waits (NotYet).
        t = self._started_trajectory(event.trajectory_id)
        if event.moment == InvoiceMoment.AFTERWARDS and t.end_date is None:
            raise NotYet(Reason(code=ReasonCode.INVALID_TRANSITION, field="data.moment",
                                detail="an invoice afterwards follows the trajectory's end"))
        self.invoices = [*self.invoices, invoice]

    def invoiced_total(self) -> Decimal:
        return sum((i.amount_excl_vat for i in self.invoices), Decimal(0))

    def approved_amount(self) -> Decimal | None:
        return next((q.amount for q in self.quotes if q.decision == "approved"), None)

    def _approved_quote(self) -> ReceivedQuote:
        quote = next((q for q in self.quotes if q.decision == "approved"), None)
        if quote is None:
            raise Refusal(ReasonCode.NO_APPROVED_QUOTE)
        return quote

    def _trajectory(self, trajectory_id: uuid.UUID) -> TrajectoryRecord:
        if self.trajectory is None:
            return TrajectoryRecord(trajectory_id=trajectory_id)
        if self.trajectory.trajectory_id != trajectory_id:
            raise Refusal(ReasonCode.UNKNOWN_TRAJECTORY)
        return self.trajectory.model_copy(deep=True)

    def _started_trajectory(self, trajectory_id: uuid.UUID) -> TrajectoryRecord:
        """The trajectory a message after the start is about: not started yet → NotYet; another id than
        the one the start gave → refused at once."""
        if self.trajectory is not None and self.trajectory.trajectory_id != trajectory_id:
            raise Refusal(Reason(code=ReasonCode.UNKNOWN_TRAJECTORY, field="data.trajectory_id",
                                 detail="not the trajectory that started"))
        if self.trajectory is None or self.trajectory.start_date is None:
            raise NotYet(Reason(code=ReasonCode.TRAJECTORY_NOT_STARTED, field="data.trajectory_id"))
        return self.trajectory.model_copy(deep=True)

    def _trajectory_changed(self, trajectory: TrajectoryRecord) -> None:
        self.trajectory = trajectory
        self.status = (ReferralStatus.TRAJECTORY_ENDED if trajectory.end_date is not None
                       else ReferralStatus.TRAJECTORY_RUNNING)

    def view(self) -> dict:
        """A summary without personal data, for caseworkers' lists and the demo."""
        return {
            "referral_id": str(self.id),
            "subject": self.subject,
            "status": self.status.value,
            "municipality": self.municipality.value if self.municipality else None,
            "support_need": self.support_need.value if self.support_need else None,
            "refusal_reasons": [r.model_dump(mode="json", exclude_none=True) for r in self.refusal_reasons],
            "decline_reason": self.decline_reason.value if self.decline_reason else None,
            "quotes": [
                {"quote_id": str(q.quote_id), "sequence": q.sequence, "amount": str(q.amount),
                 "planned_start": q.planned_start.isoformat(), "duration_weeks": q.duration_weeks,
                 "decision": q.decision, "reject_reason": q.reject_reason}
                for q in self.quotes
            ],
            "trajectory": self.trajectory.model_dump(mode="json") if self.trajectory else None,
            "approved_amount": str(a) if (a := self.approved_amount()) is not None else None,
            "invoices": [i.model_dump(mode="json") for i in self.invoices],
            "invoiced_total": str(self.invoiced_total()),
        }


def normalise_municipality(value: str) -> str:
    return "-".join(value.strip().lower().replace("-", " ").split())


def normalise_postal_code(value: str) -> str | None:
    compact = value.replace(" ", "").upper()
    ascii_ok = len(compact) == 6 and compact.isascii()
    if ascii_ok and compact[:4].isdigit() and compact[0] != "0" and compact[4:].isalpha():
        return compact
    return None


def target_group_reasons(cmd: SubmitReferral) -> list[Reason]:
    """Agreement art 4 and the BSN: every failed check, not only the first."""
    reasons = []
    if not is_valid_bsn(cmd.bsn):
        reasons.append(Reason(code=ReasonCode.BSN_INVALID, field="bsn", detail="9 digits passing the 11-test"))
    if normalise_municipality(cmd.municipality) not in {m.value for m in Municipality}:
        reasons.append(Reason(code=ReasonCode.NOT_RESIDENT_WEST_FRIESLAND, field="municipality"))
    if not cmd.labour_disability:
        reasons.append(Reason(code=ReasonCode.NO_LABOUR_DISABILITY, field="labour_disability"))
    if not cmd.participatiewet_entitlement:
        reasons.append(Reason(code=ReasonCode.NO_PARTICIPATIEWET_ENTITLEMENT, field="participatiewet_entitlement"))
    return reasons

class ReceivedReport(Aggregate):
    """A yearly report as Heliomare sent it (aggregates only, no subject)."""

    year: int
    received_at: datetime
    report: dict
