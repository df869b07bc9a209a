"""Offer (Heliomare): a referral as the provider sees it, and its quotes (offerte / re-integratieplan).

Heliomare registers the referral WerkSaam sent, accepts or declines it, and sends a custom quote
(art 7.1): amount in euros excluding VAT, planned start and duration, and the invoicing schedule
(in advance and/or afterwards, wholly or in parts). WerkSaam approves or rejects it; after a
rejection Heliomare may send a new quote.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.commands import SendQuote
from shared.contracts.envelope import now_utc
from shared.contracts.events import (
    DeclineReason,
    InvoiceTranche,
    QuoteKind,
    QuoteRejectReason,
    QuoteSent,
    ReferralAccepted,
    ReferralDeclined,
    ReferralRegistered,
    SupportNeed,
    TrajectoryCommissioned,
)
from shared.contracts.parties import Municipality, Party
from shared.contracts.personal import PersonalData, date_of_birth_reasons
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate


class CaseStatus(StrEnum):
    REGISTERED = "registered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    QUOTE_SENT = "quote_sent"
    QUOTE_REJECTED = "quote_rejected"
    QUOTE_APPROVED = "quote_approved"


class Quote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quote_id: uuid.UUID
    sequence: int
    kind: QuoteKind
    amount: Decimal
    planned_start: date
    duration_weeks: int
    invoicing: list[InvoiceTranche]
    sent_at: datetime
    status: str = "sent"  # sent | approved | rejected
    reject_reason: QuoteRejectReason | None = None


class Case(Aggregate):
    """Heliomare's record of one referral; its id is the referral id both parties share."""

    subject: str
    status: CaseStatus
    registered_at: datetime
    municipality: Municipality
    support_need: SupportNeed
    requested_start: date | None = None
    client: PersonalData
    personal_field: ClassVar[str | None] = "client"
    decline_reason: DeclineReason | None = None
    quotes: list[Quote] = Field(default_factory=list)
    # The commissioner that referred the person: every message about the case goes to it, and is taken only from
    # it. A case recorded before messages were addressed (issue 18) came from the founding commissioner.
    commissioner: str = Party.WERKSAAM

    @classmethod
    def register(cls, event: ReferralRegistered, subject: str, commissioner: str) -> Case:
        registered_at = now_utc()
        if reasons := date_of_birth_reasons(event.date_of_birth, registered_at.date(), field="data.date_of_birth"):
            raise Refusal(*reasons)  # a date no person has: refused on receipt, nothing kept
        return cls(
            id=event.referral_id, subject=subject, status=CaseStatus.REGISTERED, registered_at=registered_at,
            municipality=event.municipality, support_need=event.support_need,
            requested_start=event.requested_start,
            client=PersonalData.of(event), commissioner=commissioner,
        )

    def retention_start(self) -> date | None:
        """Offer's part ends with the decline or the approval (the trajectory service takes over)."""
        if self.status not in {CaseStatus.DECLINED, CaseStatus.QUOTE_APPROVED}:
            return None
        return max([self.registered_at.date(), *(q.sent_at.date() for q in self.quotes)])

    def accept(self) -> None:
        self._require({CaseStatus.REGISTERED}, "accept")
        self.status = CaseStatus.ACCEPTED
        self.emit(ReferralAccepted(referral_id=self.id), subject=self.subject, to=self.commissioner)

    def decline(self, reason: DeclineReason | None) -> None:
        self._require({CaseStatus.REGISTERED, CaseStatus.ACCEPTED}, "decline")
        if reason is None:
            raise Refusal(Reason(code=ReasonCode.MISSING_FIELD, field="decline_reason"))
        self.status, self.decline_reason = CaseStatus.DECLINED, reason
        self.emit(ReferralDeclined(referral_id=self.id, reason=reason), subject=self.subject, to=self.commissioner)

    def send_quote(self, cmd: SendQuote) -> Quote:
        self._require({CaseStatus.ACCEPTED, CaseStatus.QUOTE_REJECTED}, "send a quote")
        if sum((t.amount for t in cmd.invoicing), Decimal(0)) != cmd.amount:
            raise Refusal(Reason(code=ReasonCode.INVOICING_SCHEDULE_INVALID, field="invoicing",
                                 detail="tranches must add up to the quote amount"))
        if cmd.planned_start < self.registered_at.date():
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_REFERRAL, field="planned_start"))
        quote = Quote(quote_id=uuid.uuid4(), sequence=len(self.quotes) + 1, kind=cmd.kind, amount=cmd.amount,
                      planned_start=cmd.planned_start, duration_weeks=cmd.duration_weeks,
                      invoicing=list(cmd.invoicing), sent_at=now_utc())
        self.quotes = [*self.quotes, quote]
        self.status = CaseStatus.QUOTE_SENT
        self.emit(QuoteSent(referral_id=self.id, quote_id=quote.quote_id, sequence=quote.sequence,
                            kind=quote.kind, amount=quote.amount, planned_start=quote.planned_start,
                            duration_weeks=quote.duration_weeks, invoicing=quote.invoicing),
                  subject=self.subject, to=self.commissioner)
        return quote

    def quote_approved(self, quote_id: uuid.UUID, approved_amount: Decimal) -> None:
        quote = self._current_quote(quote_id)
        if approved_amount != quote.amount:
            raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="data.approved_amount",
                                 detail="differs from the quoted amount"))
        self._set_quote(quote.model_copy(update={"status": "approved"}))
        self.status = CaseStatus.QUOTE_APPROVED
        # Heliomare's trajectory and billing services take it from here (event-carried state).
        self.emit(TrajectoryCommissioned(referral_id=self.id, quote_id=quote.quote_id, approved_amount=quote.amount,
                                         planned_start=quote.planned_start, duration_weeks=quote.duration_weeks,
                                         invoicing=quote.invoicing, municipality=self.municipality,
                                         commissioner=self.commissioner),
                  subject=self.subject)

    def quote_rejected(self, quote_id: uuid.UUID, reason: QuoteRejectReason) -> None:
        quote = self._current_quote(quote_id)
        self._set_quote(quote.model_copy(update={"status": "rejected", "reject_reason": reason}))
        self.status = CaseStatus.QUOTE_REJECTED

    def approved_quote(self) -> Quote | None:
        return next((q for q in self.quotes if q.status == "approved"), None)

    def _current_quote(self, quote_id: uuid.UUID) -> Quote:
        quote = next((q for q in self.quotes if q.quote_id == quote_id), None)
        if quote is None:
            raise Refusal(ReasonCode.UNKNOWN_QUOTE)
        if quote is not self.quotes[-1]:
            raise Refusal(ReasonCode.QUOTE_SUPERSEDED)
        self._require({CaseStatus.QUOTE_SENT}, "decide on a quote")
        return quote

    def _set_quote(self, quote: Quote) -> None:
        self.quotes = [quote if q.quote_id == quote.quote_id else q for q in self.quotes]

    def _require(self, allowed: set[CaseStatus], action: str) -> None:
        if self.status not in allowed:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail=f"cannot {action} while {self.status}"))

    def view(self) -> dict:
        return {
            "referral_id": str(self.id),
            "subject": self.subject,
            "status": self.status.value,
            "municipality": self.municipality.value,
            "support_need": self.support_need.value,
            "decline_reason": self.decline_reason.value if self.decline_reason else None,
            "quotes": [
                {"quote_id": str(q.quote_id), "sequence": q.sequence, "amount": str(q.amount),
                 "status": q.status, "reject_reason": q.reject_reason}
                for q in self.quotes
            ],
        }
