"""Every event type of werkbrug, each defined once.

The fields of each model are the explicit allow-list of agreement art 5.5: the only data that the
type may carry. Personal data appears only where the receiving party needs it for its task, and never
as free text (reason codes instead of remarks; support needs as codes, no health details).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from shared.contracts.envelope import BROADCAST, EventData, event
from shared.contracts.parties import Municipality, Party, PartyId, Role
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


@event("referral.registered", 2, sent_by={Role.COMMISSIONER}, sent_to={Role.PROVIDER})
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


@event("referral.accepted", 2, sent_by={Role.PROVIDER}, sent_to={Role.COMMISSIONER})
class ReferralAccepted(EventData):
    referral_id: uuid.UUID


@event("referral.declined", 2, sent_by={Role.PROVIDER}, sent_to={Role.COMMISSIONER})
class ReferralDeclined(EventData):
    referral_id: uuid.UUID
    reason: DeclineReason


# --- step 2: quote or reintegration plan, Heliomare -> WerkSaam ---------------------------------


@event("quote.sent", 2, sent_by={Role.PROVIDER}, sent_to={Role.COMMISSIONER})
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


@event("quote.approved", 2, sent_by={Role.COMMISSIONER}, sent_to={Role.PROVIDER})
class QuoteApproved(EventData):
    referral_id: uuid.UUID
    quote_id: uuid.UUID
    approved_amount: Euro


@event("quote.rejected", 2, sent_by={Role.COMMISSIONER}, sent_to={Role.PROVIDER})
class QuoteRejected(EventData):
    referral_id: uuid.UUID
    quote_id: uuid.UUID
    reason: QuoteRejectReason


# --- retour: every cross-party message is answered -----------------------------------------------


@event("retour.issued", 2, sent_by={Role.COMMISSIONER, Role.PROVIDER},
       sent_to={Role.COMMISSIONER, Role.PROVIDER})
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
        return f"retour.{str(data.get('about_type', 'unknown.unknown')).replace('.', '-')}"

    @staticmethod
    def binding_for(answered: type[EventData], recipient: str) -> str:
        """Binding key that collects every party's retours to `recipient`'s events of one type."""
        return Retour.routing_key_from("*", recipient, answered)

    @classmethod
    def routing_key_from(cls, party: str, recipient: str, answered: type[EventData]) -> str:
        """The routing key of `party`'s retours to `recipient` answering an event type:
        `<party>.<recipient>.retour.<type>.v2`."""
        return f"{party}.{recipient}.{cls.routing_subject_of({'about_type': answered.event_type})}.v{cls.version}"


# --- the cooperation itself: partners join and leave (agreement art 13, 16) ----------------------

GdprBasis = Annotated[str, Field(pattern=r"^GDPR 6\(1\)\([a-f]\)$")]
RoutingKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z][a-z0-9]*\.[a-z][a-z-]*\.[a-z][a-z-]*\.v\d{1,3}$")]
PartnerName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{2,30}$")]


@event("party.joined", 2, sent_by={Role.COORDINATOR}, sent_to=BROADCAST)
class PartyJoined(EventData):
    """A partner joined by addendum with every party's consent (art 13.1), and may now read the topics
    granted to it. Sent by WerkSaam, which coordinates the cooperation (art 5.3). About an organisation:
    no subject, and not the partner's contact person."""

    about_a_person = False

    addendum_id: uuid.UUID
    partner: PartnerName
    legal_basis: GdprBasis
    purpose: str = Field(min_length=1, max_length=500)
    topics: list[RoutingKey] = Field(min_length=1, max_length=50)
    effective_from: date


class DepartureKind(StrEnum):
    LEFT = "left"  # the partner left (art 13.2: e.g. it objects to a change)
    REMOVED = "removed"  # the partner was removed (art 16.3)


@event("party.left", 2, sent_by={Role.COORDINATOR}, sent_to=BROADCAST)
class PartyLeft(EventData):
    """A partner left or was removed (art 13.2, 16.3): its access ended when this was sent."""

    about_a_person = False

    addendum_id: uuid.UUID
    partner: PartnerName
    kind: DepartureKind
    effective_from: date


# --- Heliomare internal: the approved quote becomes a commission for a trajectory ----------------


@event("trajectory.commissioned", 2, sent_by={Role.PROVIDER}, sent_to={Role.PROVIDER})
class TrajectoryCommissioned(EventData):
    """Heliomare's own services learn that WerkSaam approved a quote (opdracht): the basis of the
    trajectory and of its invoicing. Sent by offer once it has checked the approval; read by trajectory
    and billing (event-carried state: neither reads offer's database)."""

    internal = True

    referral_id: uuid.UUID
    quote_id: uuid.UUID
    approved_amount: Euro
    planned_start: date
    duration_weeks: int = Field(ge=1, le=260)
    invoicing: list[InvoiceTranche] = Field(min_length=1, max_length=12)
    municipality: Municipality
    commissioner: PartyId = Field(description="The commissioner that referred the person and approved the quote: "
                                              "the trajectory's messages and invoices are addressed to it.")

    @model_validator(mode="after")
    def _schedule_adds_up(self) -> TrajectoryCommissioned:
        if sum((t.amount for t in self.invoicing), Decimal(0)) != self.approved_amount:
            raise ValueError("invoicing schedule must add up to the approved amount")
        return self


# --- steps 4, 6, 7: the trajectory, Heliomare -> WerkSaam ----------------------------------------


class Phase(StrEnum):
    """Where in the trajectory the person is (a code; no content of the guidance)."""

    ORIENTATION = "orientation"
    TRAINING = "training"
    WORK_EXPERIENCE = "work_experience"  # werkervaringsplaats
    JOB_SEARCH = "job_search"
    PLACEMENT = "placement"
    AFTERCARE = "aftercare"  # nazorg


class ProgressStatus(StrEnum):
    """How it goes, as a code: never the reason in words (no health details, art 5.5)."""

    ON_TRACK = "on_track"
    DELAYED = "delayed"
    AT_RISK = "at_risk"
    PAUSED = "paused"


class Outcome(StrEnum):
    """The result of a trajectory; paid work is the highest goal (art 3.1)."""

    PAID_WORK = "paid_work"
    EDUCATION = "education"
    OTHER_PROVISION = "other_provision"
    STOPPED_EARLY = "stopped_early"


class ContractType(StrEnum):
    PERMANENT = "permanent"
    FIXED_TERM = "fixed_term"
    TEMPORARY_AGENCY = "temporary_agency"
    SHELTERED = "sheltered"  # beschut werk
    SELF_EMPLOYED = "self_employed"


class HoursBand(StrEnum):
    UNDER_12 = "under_12"
    FROM_12_TO_24 = "12_to_24"
    FROM_24_TO_32 = "24_to_32"
    FROM_32 = "32_or_more"


class StopReason(StrEnum):
    """Why a trajectory stopped early, as a code (no health details)."""

    PERSON_WITHDREW = "person_withdrew"
    MOVED_AWAY = "moved_away"
    NO_LONGER_ENTITLED = "no_longer_entitled"
    NOT_FEASIBLE = "not_feasible"
    OTHER = "other"


def outcome_detail_errors(outcome: Outcome, contract_type: ContractType | None, hours_band: HoursBand | None,
                          stop_reason: StopReason | None) -> list[str]:
    """Which detail fields are wrong for the outcome: paid work needs contract type and hours band,
    stopped early needs a reason, and no outcome carries a detail that belongs to another."""
    wrong = []
    paid, stopped = outcome == Outcome.PAID_WORK, outcome == Outcome.STOPPED_EARLY
    if (contract_type is None) == paid:
        wrong.append("contract_type")
    if (hours_band is None) == paid:
        wrong.append("hours_band")
    if (stop_reason is None) == stopped:
        wrong.append("stop_reason")
    return wrong


@event("trajectory.started", 2, sent_by={Role.PROVIDER}, sent_to={Role.COMMISSIONER})
class TrajectoryStarted(EventData):
    """Bijlage 2 step 4: the trajectory started (registered by Heliomare)."""

    referral_id: uuid.UUID
    trajectory_id: uuid.UUID
    quote_id: uuid.UUID
    start_date: date
    planned_end: date

    @model_validator(mode="after")
    def _ends_after_start(self) -> TrajectoryStarted:
        if self.planned_end <= self.start_date:
            raise ValueError("planned end must be after the start")
        return self


@event("trajectory.progressed", 2, sent_by={Role.PROVIDER}, sent_to={Role.COMMISSIONER})
class TrajectoryProgressed(EventData):
    """Bijlage 2 step 6: a progress report. Date, phase and status codes only (data minimisation)."""

    referral_id: uuid.UUID
    trajectory_id: uuid.UUID
    sequence: int = Field(ge=1, le=500, description="1 for the first report of the trajectory, 2, ...")
    reported_on: date
    phase: Phase
    status: ProgressStatus


@event("trajectory.ended", 2, sent_by={Role.PROVIDER}, sent_to={Role.COMMISSIONER})
class TrajectoryEnded(EventData):
    """Bijlage 2 step 7: the trajectory ended, with its outcome as codes."""

    referral_id: uuid.UUID
    trajectory_id: uuid.UUID
    end_date: date
    outcome: Outcome
    contract_type: ContractType | None = None
    hours_band: HoursBand | None = None
    stop_reason: StopReason | None = None

    @model_validator(mode="after")
    def _details_fit_the_outcome(self) -> TrajectoryEnded:
        if wrong := outcome_detail_errors(self.outcome, self.contract_type, self.hours_band, self.stop_reason):
            raise ValueError(f"details do not fit the outcome: {', '.join(wrong)}")
        return self


# --- steps 5 and 8: the invoice, Heliomare -> WerkSaam (art 7) -----------------------------------

Rate = Annotated[Decimal, Field(ge=0, le=1, max_digits=5, decimal_places=4)]
Cents = Annotated[Decimal, Field(ge=0, le=Decimal("500000"), max_digits=12, decimal_places=2)]


class InvoiceBasis(StrEnum):
    SCHEDULE = "schedule"  # the approved quote's invoicing schedule
    EARLY_STOP = "early_stop"  # the settlement rule for a trajectory stopped early (README)


def vat_of(amount: Decimal, rate: Decimal) -> Decimal:
    """VAT on an amount excluding VAT: rounded half up to the cent."""
    return (amount * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@event("invoice.issued", 2, sent_by={Role.PROVIDER}, sent_to={Role.COMMISSIONER})
class InvoiceIssued(EventData):
    """An invoice (factuur) for a trajectory, drawn from a registered invoice order (facturatieopdracht)."""

    referral_id: uuid.UUID
    trajectory_id: uuid.UUID
    quote_id: uuid.UUID
    invoice_id: uuid.UUID
    invoice_number: str = Field(pattern=r"^\d{4}-\d{6}$", description="<year>-<sequence>, gap-free per year.")
    invoice_date: date
    moment: InvoiceMoment
    basis: InvoiceBasis
    currency: Literal["EUR"] = "EUR"
    amount_excl_vat: Euro
    vat_rate: Rate
    vat_amount: Cents
    total: Cents

    @model_validator(mode="after")
    def _arithmetic(self) -> InvoiceIssued:
        if self.invoice_number[:4] != f"{self.invoice_date.year:04d}":
            raise ValueError("invoice number must start with the invoice date's year")
        if self.vat_amount != vat_of(self.amount_excl_vat, self.vat_rate):
            raise ValueError("VAT must be the amount times the rate, rounded half up to the cent")
        if self.total != self.amount_excl_vat + self.vat_amount:
            raise ValueError("total must be the amount plus VAT")
        return self


# --- art 6.2, 6.3 and 3.5: the yearly report, Heliomare -> WerkSaam (no personal data) ------------


class ReportMeasure(StrEnum):
    STARTED = "started"  # trajectories started, by quarter of the start
    ENDED = "ended"  # trajectories ended, by quarter of the end
    RUNNING = "running"  # trajectories running at the end of each quarter
    OUTCOMES = "outcomes"  # ended in the year, by outcome
    INVOICES = "invoices"  # invoices, by quarter of the invoice date
    INVOICED_AMOUNT = "invoiced_amount"  # euros excluding VAT, only for groups with enough invoices
    PAID_WORK = "paid_work"  # ended with paid work, by quarter (all municipalities)


class ReportColumn(StrEnum):
    Q1 = "q1"
    Q2 = "q2"
    Q3 = "q3"
    Q4 = "q4"
    YEAR = "year"
    PAID_WORK = "paid_work"
    EDUCATION = "education"
    OTHER_PROVISION = "other_provision"
    STOPPED_EARLY = "stopped_early"
    TOTAL = "total"


class TrendSignal(StrEnum):
    RISING = "rising"
    FALLING = "falling"
    STABLE = "stable"
    INSUFFICIENT_DATA = "insufficient_data"


ROUNDING_BASE = 5  # every published count is rounded to a multiple of 5 (as Statistics Netherlands does)
AMOUNT_STEP = 5000  # every published amount is rounded to a multiple of EUR 5,000

Count = Annotated[int, Field(ge=0, le=1_000_000, multiple_of=ROUNDING_BASE,
                             description="A count rounded to the nearest multiple of 5 (0-2 show as 0, 3-7 as 5).")]
RoundedEuros = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1000000000"), multiple_of=AMOUNT_STEP, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": r"^(0|5000|[1-9][0-9]{0,5}[05]000)\.00$",
                    "description": "Euros excluding VAT as a decimal string, rounded to a multiple of 5000."}),
]
Share = Annotated[
    Decimal,
    Field(ge=0, le=1, decimal_places=3),
    WithJsonSchema({"type": "string", "pattern": r"^(0\.[0-9]{3}|1\.000)$",
                    "description": "A share between 0 and 1 as a decimal string with three decimals."}),
]


class CountRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    municipality: Municipality | None = Field(description="None: all municipalities together.")
    values: list[Count] = Field(max_length=10, description="Per column, each rounded on its own (totals included).")


class CountTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: ReportMeasure
    columns: list[ReportColumn] = Field(max_length=10)
    rows: list[CountRow] = Field(max_length=10)


class AmountRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    municipality: Municipality | None = Field(description="None: all municipalities together.")
    values: list[RoundedEuros | None] = Field(
        max_length=10, description="Per column; None: fewer invoices in the group than `min_invoices`.")


class AmountTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: Literal[ReportMeasure.INVOICED_AMOUNT] = ReportMeasure.INVOICED_AMOUNT
    columns: list[ReportColumn] = Field(max_length=10)
    rows: list[AmountRow] = Field(max_length=10)


class DurationFigure(BaseModel):
    """Duration in whole weeks of the trajectories that ended: median and quartiles, only for a group of at
    least `min_group_durations` (so that every quartile has that many trajectories around it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    municipality: Municipality | None
    period: ReportColumn
    ended: Count
    median_weeks: int | None = Field(None, ge=0, le=1000)
    p25_weeks: int | None = Field(None, ge=0, le=1000)
    p75_weeks: int | None = Field(None, ge=0, le=1000)


class TrendPoint(BaseModel):
    """Quarterly evaluation figure (art 6.1) and trend (art 3.5): the share of the trajectories ended in
    the quarter that reached paid work, computed from the rounded counts (so it tells nothing more than
    they do). None where the rounded count ended is 0."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quarter: ReportColumn
    ended: Count
    paid_work: Count
    share_paid_work: Share | None = None


@event("report.published", 3, sent_by={Role.PROVIDER}, sent_to=BROADCAST)
class ReportPublished(EventData):
    """The yearly report on executed trajectories (art 6.2), which cannot be traced back to persons
    (art 6.3), also not by comparing it with other publications: every count is rounded to a multiple of
    5 on its own (cells and totals), amounts to a multiple of EUR 5,000 and only for groups with at least
    `min_invoices` invoices, durations only for groups of at least `min_group_durations`. A year is published
    once, after it closed; a correction (`edition` > 1) repeats every figure whose underlying count moved by
    less than 5 since it was last published. Persons whose data is restricted (art 18) or who objected
    (art 21) are left out; `left_out` counts them, rounded like every count."""

    about_a_person = False  # aggregates only: no subject

    report_id: uuid.UUID
    year: int = Field(ge=2000, le=2100)
    edition: int = Field(ge=1, le=100, description="1: the publication of the closed year; 2 and up: corrections.")
    corrects: uuid.UUID | None = Field(None, description="The report_id of the edition this one corrects.")
    published_on: date
    rounding_base: Literal[5] = ROUNDING_BASE
    amount_step: Literal[5000] = AMOUNT_STEP
    min_invoices: int = Field(ge=5, le=1000)
    min_group_durations: int = Field(ge=5, le=1000)
    left_out: Count
    tables: list[CountTable] = Field(max_length=10)
    invoiced_amount: AmountTable
    durations: list[DurationFigure] = Field(max_length=60)
    trend: list[TrendPoint] = Field(max_length=4)
    trend_signal: TrendSignal


# --- data-subject rights (GDPR art 12-22, agreement art 10): WerkSaam coordinates ----------------


class Right(StrEnum):
    """The data-subject right a request exercises."""

    ACCESS = "access"  # art 15
    RECTIFICATION = "rectification"  # art 16 (and 19: passed on to the recipients)
    ERASURE = "erasure"  # art 17
    RESTRICTION = "restriction"  # art 18
    LIFT_RESTRICTION = "lift_restriction"  # art 18(3): only after the person was told
    PORTABILITY = "portability"  # art 20: only processing based on consent or contract (Heliomare)
    OBJECTION = "objection"  # art 21: only processing based on public task (WerkSaam)


class Correctable(StrEnum):
    """The personal fields a rectification may correct. The BSN is not among them: a wrong BSN is
    another person, handled as a new referral."""

    GIVEN_NAME = "given_name"
    FAMILY_NAME = "family_name"
    DATE_OF_BIRTH = "date_of_birth"
    POSTAL_CODE = "postal_code"
    PHONE = "phone"
    EMAIL = "email"


@event("subject-request.issued", 2, sent_by={Role.COORDINATOR}, sent_to={Role.COMMISSIONER, Role.PROVIDER})
class SubjectRequestIssued(EventData):
    """WerkSaam's contact point (art 10.3) asks the services of the parties the request is for to carry
    out a data-subject request, and to answer by the legal deadline. Sent again, with a higher
    attempt number, to a service that has not answered."""

    concerns_subject_rights = True  # carried out even while the subject's processing is restricted

    request_id: uuid.UUID
    right: Right
    parties: list[Party] = Field(min_length=1, max_length=10, description=(
        "The parties the request is for: only their services carry it out (art 10.3: a request for one party "
        "is handed to that party alone; objection and portability go where their legal basis applies)."))
    due: date
    attempt: int = Field(1, ge=1, le=100)
    corrections: dict[Correctable, str] | None = Field(None, max_length=len(Correctable))


class HeldRecord(BaseModel):
    """One record a service holds on the subject, and what became of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collection: str = Field(pattern=r"^[a-z_]{1,40}$")
    record_id: str = Field(max_length=80)
    status: Literal["held", "erased", "withheld", "rectified", "restricted", "unrestricted", "objected"]
    data: dict[str, Any] | None = Field(None, description="The record as held (access and portability only).")
    ground: str | None = Field(None, max_length=400, description="Why it was withheld from erasure (art 17(3)).")
    keep_until: date | None = None


class ProcessingInformation(BaseModel):
    """The art 15(1) information about one processing activity of the answering service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    activity: str = Field(max_length=200)
    name: str = Field(max_length=300)
    purpose: str = Field(max_length=600)
    legal_basis: str = Field(max_length=40)
    categories: list[str] = Field(max_length=20)
    recipients: list[str] = Field(max_length=20)
    retention: str = Field(max_length=20)
    retention_ground: str = Field(max_length=400)
    source: str = Field(max_length=200)


@event("subject-request.answered", 2, sent_by={Role.COMMISSIONER, Role.PROVIDER}, sent_to={Role.COORDINATOR})
class SubjectRequestAnswered(EventData):
    """A service's answer to a data-subject request: the records it holds and what it did with each,
    the art 15 information of its activities, and (for access) its processing-log records on the subject.
    After an erasure `readable_after` lists what the service can still read on the subject: exactly the
    withheld records, checked by reading again after the erasure."""

    concerns_subject_rights = True
    from_each_service = True  # several services of one party answer the same request

    request_id: uuid.UUID
    right: Right
    service: str = Field(pattern=r"^[a-z][a-z_-]{1,30}$")
    outcome: Literal["done", "nothing_held", "refused"]
    records: list[HeldRecord] = Field(default_factory=list, max_length=200)
    information: list[ProcessingInformation] = Field(default_factory=list, max_length=30)
    processing_log: list[dict[str, Any]] = Field(default_factory=list, max_length=500)
    recipients_notified: list[str] = Field(default_factory=list, max_length=10)
    dead_letters_destroyed: int = Field(0, ge=0)
    readable_after: list[str] = Field(default_factory=list, max_length=200)
    reasons: list[Reason] = Field(default_factory=list, max_length=20)


# --- personal-data breaches (agreement art 12, GDPR art 33-34) ------------------------------------


class BreachCause(StrEnum):
    """The presumed cause of a (suspected) breach, as a code: no free text (it could hold personal data)."""

    LOST_OR_STOLEN_DEVICE = "lost_or_stolen_device"
    MISDIRECTED_MESSAGE = "misdirected_message"  # sent to the wrong recipient
    UNAUTHORISED_ACCESS = "unauthorised_access"  # by staff or an outsider without a need to know
    STOLEN_CREDENTIALS = "stolen_credentials"
    MALWARE = "malware"
    SOFTWARE_ERROR = "software_error"
    HUMAN_ERROR = "human_error"
    UNKNOWN = "unknown"


class BreachDataCategory(StrEnum):
    """The categories of personal data concerned (the register's categories, as codes)."""

    PSEUDONYM = "pseudonym"
    IDENTIFICATION = "identification"  # BSN, names, date of birth
    CONTACT = "contact"
    RESIDENCE = "residence"
    SUPPORT_NEED = "support_need"
    QUOTE = "quote"
    TRAJECTORY = "trajectory"
    INVOICE = "invoice"
    SUBJECT_REQUEST = "subject_request"


class BreachSubjectCategory(StrEnum):
    """The categories of data subjects concerned."""

    JOBSEEKERS = "jobseekers"  # the referred persons
    STAFF = "staff"
    PARTNER_CONTACTS = "partner_contacts"


ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z_-]{1,30}$")]
Pseudonym = Annotated[str, Field(pattern=r"^psn_[a-z2-7]{26}$")]
MAX_BREACH_SUBJECTS = 1000  # the list is bounded (message size); subject_count is always the full count


@event("breach.reported", 2, sent_by={Role.COMMISSIONER, Role.PROVIDER}, sent_to=BROADCAST)
class BreachReported(EventData):
    """A party informs the other parties of a (suspected) personal-data breach (agreement art 12): its presumed
    cause, the categories of data and of subjects, how many subjects, and which (pseudonyms, found from the
    processing log of the affected services within the breach window). About many persons, so about no one
    in the envelope; processed whatever the subjects' restriction (a legal duty, GDPR art 33, 34)."""

    about_a_person = False
    concerns_subject_rights = True  # carried out even for restricted subjects: notifying a breach is a legal duty
    between_parties = True  # each party's breach desk reads the other parties' reports, not its own

    breach_id: uuid.UUID
    detected_at: AwareDatetime
    reported_at: AwareDatetime
    presumed_cause: BreachCause
    data_categories: list[BreachDataCategory] = Field(min_length=1, max_length=len(BreachDataCategory))
    subject_categories: list[BreachSubjectCategory] = Field(min_length=1, max_length=len(BreachSubjectCategory))
    subject_count: int = Field(ge=0, le=10_000_000)
    affected_subjects: list[Pseudonym] = Field(default_factory=list, max_length=MAX_BREACH_SUBJECTS)
    window_since: AwareDatetime
    window_until: AwareDatetime
    services: list[ServiceName] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> BreachReported:
        if self.window_until <= self.window_since:
            raise ValueError("window_until must be after window_since")
        if self.subject_count < len(set(self.affected_subjects)):
            raise ValueError("subject_count cannot be less than the subjects named")
        return self
