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

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.commands import SubmitReferral
from shared.contracts.envelope import now_utc
from shared.contracts.events import (
    DeclineReason,
    InvoiceTranche,
    QuoteApproved,
    QuoteKind,
    QuoteRejected,
    QuoteRejectReason,
    QuoteSent,
    ReferralRegistered,
    SupportNeed,
)
from shared.contracts.parties import Municipality
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate
from shared.ids import uuid7
from shared.privacy.bsn import is_valid_bsn


class ReferralStatus(StrEnum):
    REFUSED = "refused"  # failed the intake checks; nothing was sent
    REGISTERED = "registered"  # sent to Heliomare
    ACCEPTED = "accepted"  # Heliomare took it on
    DECLINED = "declined"  # Heliomare declined it (end)
    QUOTE_RECEIVED = "quote_received"  # waiting for WerkSaam's decision
    QUOTE_REJECTED = "quote_rejected"  # waiting for a new quote
    QUOTE_APPROVED = "quote_approved"  # ready for the trajectory start


OPEN = {ReferralStatus.REGISTERED, ReferralStatus.ACCEPTED, ReferralStatus.QUOTE_RECEIVED,
        ReferralStatus.QUOTE_REJECTED, ReferralStatus.QUOTE_APPROVED}


class Person(BaseModel):
    """The personal data WerkSaam holds for the referral. Stored encrypted; never printed."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    bsn: str = Field(repr=False)
    given_name: str = Field(repr=False)
    family_name: str = Field(repr=False)
    date_of_birth: date = Field(repr=False)
    postal_code: str = Field(repr=False)
    phone: str | None = Field(None, repr=False)
    email: str | None = Field(None, repr=False)


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


class Referral(Aggregate):
    subject: str | None  # pseudonym; None when the BSN itself was invalid
    status: ReferralStatus
    submitted_at: datetime
    municipality: Municipality | None = None
    support_need: SupportNeed | None = None
    requested_start: date | None = None
    person: Person | None = None  # None for a refused referral: nothing to keep
    refusal_reasons: list[Reason] = Field(default_factory=list)
    decline_reason: DeclineReason | None = None
    quotes: list[ReceivedQuote] = Field(default_factory=list)

    # -- step 1 ------------------------------------------------------------------------------------

    @classmethod
    def submit(cls, cmd: SubmitReferral, pseudonymise: Callable[[str], str],
               open_referral: uuid.UUID | None = None) -> Referral:
        """`open_referral`: the person's referral still in progress, if any; a second one is refused."""
        reasons = target_group_reasons(cmd)
        if open_referral is not None:
            reasons.append(Reason(code=ReasonCode.DUPLICATE_REFERRAL, detail=f"open referral {open_referral}"))
        postal_code = normalise_postal_code(cmd.postal_code)
        if postal_code is None:
            reasons.append(Reason(code=ReasonCode.INVALID_VALUE, field="postal_code", detail="not a Dutch postal code"))
        valid_bsn = is_valid_bsn(cmd.bsn)
        referral = cls(
            id=uuid7(),
            subject=pseudonymise(cmd.bsn) if valid_bsn else None,
            status=ReferralStatus.REFUSED if reasons else ReferralStatus.REGISTERED,
            submitted_at=now_utc(),
            refusal_reasons=reasons,
        )
        if reasons:
            return referral
        referral.municipality = Municipality(normalise_municipality(cmd.municipality))
        referral.support_need = cmd.support_need
        referral.requested_start = cmd.requested_start
        referral.person = Person(bsn=cmd.bsn, given_name=cmd.given_name, family_name=cmd.family_name,
                                 date_of_birth=cmd.date_of_birth, postal_code=postal_code,
                                 phone=cmd.phone, email=cmd.email)
        p = referral.person
        referral.emit(
            ReferralRegistered(
                referral_id=referral.id, bsn=p.bsn, given_name=p.given_name, family_name=p.family_name,
                date_of_birth=p.date_of_birth, municipality=referral.municipality, postal_code=p.postal_code,
                phone=p.phone, email=p.email, support_need=cmd.support_need,
                requested_start=cmd.requested_start,
            ),
            subject=referral.subject,
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
                      subject=self.subject)
        else:
            quote.decision, quote.reject_reason = "rejected", reason
            self.status = ReferralStatus.QUOTE_REJECTED
            self.emit(QuoteRejected(referral_id=self.id, quote_id=quote_id, reason=reason), subject=self.subject)
        self.quotes = list(self.quotes)  # re-validate the changed item

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
