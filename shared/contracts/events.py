"""Every event type of werkbrug, each defined once.

The fields of each model are the explicit allow-list of agreement art 5.5: the only data that the
type may carry. Personal data appears only where the receiving party needs it for its task, and never
as free text (reason codes instead of remarks; support needs as codes, no health details).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.envelope import EventData, event
from shared.contracts.parties import Municipality, Party
from shared.contracts.reasons import Reason

BSN = Annotated[str, Field(pattern=r"^\d{9}$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
PostalCode = Annotated[str, Field(pattern=r"^[1-9]\d{3}[A-Z]{2}$")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9 \-]{6,20}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}\.[a-z]{2,20}$", max_length=254)]
Euro = Annotated[Decimal, Field(gt=0, le=Decimal("250000"), max_digits=12, decimal_places=2)]


class SupportNeed(StrEnum):
    """What kind of guidance the person needs, as a code. No diagnosis or health detail (art 5.5)."""

    JOB_COACHING = "job_coaching"
    WORKPLACE_ADAPTATION = "workplace_adaptation"
    VOCATIONAL_TRAINING = "vocational_training"
    SHELTERED_WORK = "sheltered_work"
    JOB_SEARCH = "job_search"


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    OUTSIDE_EXPERTISE = "outside_expertise"
    PERSON_UNREACHABLE = "person_unreachable"
    OTHER = "other"


class QuoteRejectReason(StrEnum):
    AMOUNT_TOO_HIGH = "amount_too_high"
    DURATION_TOO_LONG = "duration_too_long"
    PLAN_NOT_SUITABLE = "plan_not_suitable"
    OTHER = "other"


class QuoteKind(StrEnum):
    QUOTE = "quote"  # offerte
    REINTEGRATION_PLAN = "reintegration_plan"  # re-integratieplan


class InvoiceMoment(StrEnum):
    ADVANCE = "advance"  # facturatie vooraf, at the trajectory start
    AFTERWARDS = "afterwards"  # facturatie achteraf, at the trajectory end


class InvoiceTranche(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    moment: InvoiceMoment
    amount: Euro


# --- step 1: referral (aanmelding), WerkSaam -> Heliomare ----------------------------------------


@event("referral.registered", 1, sources={Party.WERKSAAM})
class ReferralRegistered(EventData):
    """WerkSaam assessed and registered a referral and hands the person over to Heliomare."""

    referral_id: uuid.UUID
    bsn: BSN
    given_name: Name
    family_name: Name
    date_of_birth: date
    municipality: Municipality
    postal_code: PostalCode
    phone: Phone | None = None
    email: Email | None = None
    support_need: SupportNeed
    requested_start: date | None = None


# --- step 1 answered by the provider -------------------------------------------------------------


@event("referral.accepted", 1, sources={Party.HELIOMARE})
class ReferralAccepted(EventData):
    referral_id: uuid.UUID


@event("referral.declined", 1, sources={Party.HELIOMARE})
class ReferralDeclined(EventData):
    referral_id: uuid.UUID
    reason: DeclineReason


# --- step 2: quote or reintegration plan, Heliomare -> WerkSaam ---------------------------------


@event("quote.sent", 1, sources={Party.HELIOMARE})
class QuoteSent(EventData):
    """A custom quote (offerte op maat, art 7.1) with its invoicing schedule."""

    referral_id: uuid.UUID
    quote_id: uuid.UUID
    sequence: int = Field(ge=1, le=100, description="1 for the first quote, 2 after a rejection, ...")
    kind: QuoteKind
    amount: Euro = Field(description="Total excluding VAT, euros.")
    planned_start: date
    duration_weeks: int = Field(ge=1, le=260)
    invoicing: list[InvoiceTranche] = Field(min_length=1, max_length=12)

    @model_validator(mode="after")
    def _schedule_adds_up(self) -> QuoteSent:
        if sum((t.amount for t in self.invoicing), Decimal(0)) != self.amount:
            raise ValueError("invoicing schedule must add up to the quote amount")
        return self


# --- step 3: the commissioner's decision, WerkSaam -> Heliomare ---------------------------------


@event("quote.approved", 1, sources={Party.WERKSAAM})
class QuoteApproved(EventData):
    referral_id: uuid.UUID
    quote_id: uuid.UUID
    approved_amount: Euro


@event("quote.rejected", 1, sources={Party.WERKSAAM})
class QuoteRejected(EventData):
    referral_id: uuid.UUID
    quote_id: uuid.UUID
    reason: QuoteRejectReason


# --- retour: every cross-party message is answered -----------------------------------------------


@event("retour.issued", 1, sources=set(Party))
class Retour(EventData):
    """The answer to a cross-party message: accepted, or rejected with reason codes (iWmo-style)."""

    about_a_person = False  # a retour to an unreadable message cannot name a subject

    about_event_id: uuid.UUID | None = Field(description="None when the rejected message had no readable id.")
    about_type: str = Field(pattern=r"^[a-z][a-z-]*\.[a-z][a-z-]*$", max_length=80)
    about_version: int = Field(ge=1, le=999)
    status: Literal["accepted", "rejected"]
    reasons: list[Reason] = Field(default_factory=list, max_length=20)

    @classmethod
    def routing_subject_of(cls, data: dict[str, Any]) -> str:
        about = str(data.get("about_type", "unknown.unknown")).replace(".", "-")
        return f"retour.{about}"

    @staticmethod
    def binding_for(answered: type[EventData]) -> str:
        """Binding key that collects every party's retours to one of our event types."""
        return f"*.retour.{answered.event_type.replace('.', '-')}.v1"
