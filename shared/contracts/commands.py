"""Commands: what people (through the CLI or the demo) ask one service of their own party to do.

Commands travel on the commands exchange to one service's command queue and are answered with a
`CommandResult` (request/reply). Unlike events they never cross from one party to another.
A command is validated by the discriminated union of its service, so an unknown command or field is
refused with reason codes.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.events import (
    BSN,
    MAX_BREACH_SUBJECTS,
    BreachCause,
    BreachDataCategory,
    BreachSubjectCategory,
    ContractType,
    DeclineReason,
    Email,
    Euro,
    HoursBand,
    InvoiceTranche,
    Name,
    Outcome,
    Phase,
    Phone,
    PostalCode,
    ProgressStatus,
    Pseudonym,
    QuoteKind,
    QuoteRejectReason,
    Right,
    ServiceName,
    StopReason,
    SupportNeed,
)
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason
from shared.contracts.staff import ANYONE, Role, StaffId
from shared.privacy.pseudonym import PSEUDONYM_PATTERN

CW, AM, COACH, FIN, PO, OPS = (Role.CASEWORKER, Role.ACCOUNT_MANAGER, Role.JOB_COACH, Role.FINANCE,
                               Role.PRIVACY_OFFICER, Role.OPERATOR)


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    concerns_subject_rights: ClassVar[bool] = False  # carried out even while a subject's processing is restricted
    # Who may give it: the actor must hold one of these roles in the sending party's staff register. None by
    # default: a command that names no roles is given by nobody (tests/unit check every command names some).
    roles: ClassVar[frozenset[Role]] = frozenset()

    command_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Idempotency key.")
    actor: StaffId | None = Field(None, description="The staff member who gives the command (art 8); named in the "
                                                    "processing log. None: the service itself (a timer).")


class Query(Command):
    """A command that only reads; it changes nothing and is not recorded."""

    def reveals_personal_data(self) -> bool:
        """Whether the answer holds personal data beyond pseudonyms: then only an actor with a recorded
        confidentiality statement (agreement art 8) gets it."""
        return False

    def reads_personal_data(self) -> bool:
        """Whether the processing log marks this read as a read of personal data (`kind` personal_data_read):
        every query that reveals it, and reads of a history of persons by their pseudonyms."""
        return self.reveals_personal_data()

    def shown(self, result: Any) -> Any:
        """What of the handler's answer the actor gets (the pipeline applies it to every query's answer)."""
        return result


# What a referral-level view keeps when the actor asks no detail (`ReferralView.detail` false): ids, states,
# the pseudonym and how messages were answered. Deny by default: every other key is left out, at any depth,
# so a municipality, support need, outcome, amount, date or progress report never reaches it.
STATUS_VIEW_KEYS = frozenset({
    "referral_id", "subject", "status", "trajectory_id", "quote_id", "quotes", "sequence", "decision",
    "invoices", "number", "moment", "deliveries", "event_id", "type", "routing_key", "retour", "expects_retour",
    "from", "retour_id", "reasons", "refusal_reasons", "code", "field", "at",
})


def status_view(value: Any) -> Any:
    """`value` with only the keys of STATUS_VIEW_KEYS, at every depth."""
    if isinstance(value, dict):
        return {k: status_view(v) for k, v in value.items() if k in STATUS_VIEW_KEYS}
    if isinstance(value, list):
        return [status_view(v) for v in value]
    return value


class ReferralView(Query):
    """A query whose answer is about single referrals. Referral-level data (municipality, support need,
    outcome, amounts, dates) is personal data (agreement art 8): asked with `detail`, the view needs a
    confidentiality statement like any personal data; without it the actor gets the status view only
    (`STATUS_VIEW_KEYS`), which is what a role that follows messages and states needs (an operator)."""

    detail: bool = Field(False, description="The referral-level fields too (municipality, support need, outcome, "
                                            "amounts, dates): needs a confidentiality statement (art 8).")

    def reveals_personal_data(self) -> bool:
        return self.detail

    def shown(self, result: Any) -> Any:
        return result if self.reveals_personal_data() else status_view(result)


# --- intake (WerkSaam) -----------------------------------------------------------------------


class SubmitReferral(Command):
    """A caseworker refers a person (aanmelding). Checked against the target group of art 4."""

    roles = frozenset({CW})

    command: Literal["submit_referral"] = "submit_referral"
    bsn: str = Field(max_length=20, description="Burgerservicenummer: 9 digits passing the 11-test (checked by the "
                                                "domain, refused if wrong).")
    given_name: Name
    family_name: Name
    date_of_birth: date = Field(description="Not in the future, not more than 120 years ago.")
    municipality: str = Field(max_length=60, description="Municipality of residence: one of the seven West-Frisian "
                                                         "municipalities (art 4), e.g. Hoorn or Stede Broec.")
    postal_code: str = Field(max_length=10, description="Dutch postal code, e.g. 1621 AB.")
    phone: Phone | None = None
    email: Email | None = None
    labour_disability: bool = Field(description="The person has a labour disability (art 4).")
    participatiewet_entitlement: bool = Field(description="Entitled to a benefit or provision under the "
                                                          "Participatiewet (art 4).")
    support_need: SupportNeed = Field(description="The kind of guidance needed, a code (no health detail).")
    requested_start: date | None = Field(None, description="When the guidance should start, if asked.")


class DecideQuote(Command):
    """The commissioner approves or rejects a quote (goedkeuring opdrachtgever, Bijlage 2 step 3)."""

    roles = frozenset({CW})

    command: Literal["decide_quote"] = "decide_quote"
    referral_id: uuid.UUID
    quote_id: uuid.UUID
    approve: bool
    reject_reason: QuoteRejectReason | None = None


class GetReferral(ReferralView):

    roles = ANYONE
    command: Literal["get_referral"] = "get_referral"
    referral_id: uuid.UUID
    with_person: bool = Field(False, description="Also the person's data (intake, offer), with every detail: needs "
                                                 "a confidentiality statement (art 8).")

    def reveals_personal_data(self) -> bool:
        return self.detail or self.with_person


class ListReferrals(ReferralView):

    roles = ANYONE
    command: Literal["list_referrals"] = "list_referrals"
    status: str | None = Field(None, max_length=40)
    limit: int = Field(100, ge=1, le=1000)


class ReadProcessingLog(Query):
    """Read a service's processing log (Logboek Dataverwerkingen): by subject, trace, lifecycle or activity,
    within an optional time range. An unfiltered read is refused; by activity alone it needs a range."""

    roles = frozenset({PO, OPS})

    command: Literal["read_processing_log"] = "read_processing_log"
    subject: str | None = Field(None, pattern=PSEUDONYM_PATTERN)
    trace_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    correlation_id: uuid.UUID | None = None
    activity_id: str | None = Field(None, max_length=200)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    limit: int = Field(1000, ge=1, le=10_000)
    distinct_subjects: bool = Field(False, description="Only the distinct subjects processed in the time range "
                                                       "(no records): who a breach may concern (art 12).")

    def reads_personal_data(self) -> bool:
        return True  # what was done with whose data, by pseudonym: personal data, read by `log` and `trace`

    def refusal(self) -> str | None:
        if self.distinct_subjects:
            return None if self.since and self.until else "the subjects in a window need since and until"
        if not (self.subject or self.trace_id or self.correlation_id or self.activity_id):
            return "name a subject, trace, referral or activity"
        if self.activity_id and not (self.subject or self.trace_id or self.correlation_id) and not (
                self.since and self.until):
            return "reading by activity alone needs a time range (since and until)"
        return None


class RecordConfidentialityStatement(Command):
    """Record that a staff member of this service's party signed a confidentiality statement (agreement art 8),
    or that it ended. Every service answers it; `werkbrug confidentiality sign` sends it to each service of
    the party."""

    roles = frozenset({PO})

    command: Literal["record_confidentiality_statement"] = "record_confidentiality_statement"
    staff: StaffId
    signed_on: date
    ended_on: date | None = Field(None, description="The statement no longer applies from this day (left, revoked).")


class ListConfidentialityStatements(Query):

    roles = ANYONE
    command: Literal["list_confidentiality_statements"] = "list_confidentiality_statements"


class ListDeadLetters(Query):
    """What this service recorded about the messages it refused and the broker dead-lettered to its parking
    queue: per message, named by its digest (`dead_letter_key`: message id and body), the reason codes, the
    schema paths, the routing key it arrived on and when. Nothing copied from the message itself."""

    roles = frozenset({OPS, PO})
    command: Literal["list_dead_letters"] = "list_dead_letters"
    keys: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(max_length=10_000)


class RecordDeadLetterRead(Query):
    """Someone is about to read the body of a message parked at this service (`werkbrug dlq show --body`). The
    body may hold personal data: the read needs a confidentiality statement in force at this party (art 8),
    checked like every query that reveals personal data, and it leaves a processing-log record naming the
    actor, the message (its `dead_letter_key`) and the subject and referral its envelope names, if any. The
    body itself never reaches the service: the reader's tool asks first and shows the body only when answered ok."""

    roles = frozenset({OPS, PO})
    command: Literal["record_dead_letter_read"] = "record_dead_letter_read"
    key: str = Field(pattern=r"^[0-9a-f]{64}$", description="The parked message's dead_letter_key.")
    subject: Pseudonym | None = Field(None, description="The subject the parked message's envelope names.")
    correlation_id: uuid.UUID | None = Field(None, description="The referral (lifecycle) the message names.")

    def reveals_personal_data(self) -> bool:
        return True


CORE_COMMANDS = (ReadProcessingLog, RecordConfidentialityStatement, ListConfidentialityStatements,
                 ListDeadLetters, RecordDeadLetterRead)  # every service


class GetReport(Query):
    """The yearly report on executed trajectories (art 6.2) with its quarterly figures and trend (art 6.1,
    3.5): computed by Heliomare's trajectory service, or as WerkSaam received it (intake)."""

    roles = ANYONE

    command: Literal["get_report"] = "get_report"
    year: int = Field(ge=2000, le=2100)


IntakeCommand = Annotated[
    SubmitReferral | DecideQuote | GetReferral | ListReferrals | GetReport, Field(discriminator="command")
]


# --- personal-data breaches (agreement art 12, GDPR art 33-34): each party's breach desk ------------


class ReportBreach(Command):
    """A party's privacy officer reports a (suspected) breach; the other parties are informed at once.
    The affected subjects are the distinct subjects in the processing log of the affected services within
    the window (`werkbrug breach report` gathers them with ReadProcessingLog(distinct_subjects=True))."""

    roles = frozenset({PO})

    concerns_subject_rights = True  # a legal duty (GDPR art 33, 34), whatever the subjects' restriction

    command: Literal["report_breach"] = "report_breach"
    detected_at: AwareDatetime
    presumed_cause: BreachCause
    data_categories: list[BreachDataCategory] = Field(min_length=1, max_length=len(BreachDataCategory))
    subject_categories: list[BreachSubjectCategory] = Field(min_length=1, max_length=len(BreachSubjectCategory))
    window_since: AwareDatetime
    window_until: AwareDatetime
    services: list[ServiceName] = Field(min_length=1, max_length=20)
    affected_subjects: list[Pseudonym] = Field(default_factory=list, max_length=MAX_BREACH_SUBJECTS)
    subject_count: int | None = Field(None, ge=0, le=10_000_000,
                                      description="Default: the subjects named; more when not all are known.")


class SubjectNotificationReason(StrEnum):
    """Why the data subjects are, or are not, informed of a breach (GDPR art 34)."""

    HIGH_RISK = "high_risk"  # art 34(1): inform them
    NO_HIGH_RISK = "no_high_risk"  # art 34(1) does not apply
    DATA_UNINTELLIGIBLE = "data_unintelligible"  # art 34(3)(a): e.g. encrypted, key not compromised
    RISK_NO_LONGER_LIKELY = "risk_no_longer_likely"  # art 34(3)(b): measures taken since
    DISPROPORTIONATE_EFFORT = "disproportionate_effort"  # art 34(3)(c): a public communication instead


class RecordAuthorityNotification(Command):
    """The party notified the Autoriteit Persoonsgegevens (GDPR art 33), or decided it need not (unlikely to
    result in a risk, art 33(1))."""

    roles = frozenset({PO})

    command: Literal["record_authority_notification"] = "record_authority_notification"
    breach_id: uuid.UUID
    at: AwareDatetime
    reference: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.-]{1,40}$",
                                  description="The AP's reference of the notification.")
    not_required: bool = False


class DecideSubjectNotification(Command):
    """Whether the data subjects are informed (GDPR art 34), with the reason as a code."""

    roles = frozenset({PO})

    command: Literal["decide_subject_notification"] = "decide_subject_notification"
    breach_id: uuid.UUID
    inform: bool
    reason: SubjectNotificationReason
    decided_at: AwareDatetime | None = Field(None, description="Default: now.")


class ListBreaches(Query):
    """The breaches this party knows (its own and those reported to it) with their clocks."""

    roles = frozenset({PO, OPS})

    command: Literal["list_breaches"] = "list_breaches"
    overdue: bool = Field(False, description="Only breaches with a clock past its deadline.")
    now: AwareDatetime | None = Field(None, description="For tests and replays; default: now.")
    limit: int = Field(200, ge=1, le=1000)


BreachCommand = ReportBreach | RecordAuthorityNotification | DecideSubjectNotification | ListBreaches


# --- offer (Heliomare) -------------------------------------------------------------------------


class DecideReferral(Command):
    """Heliomare accepts or declines a registered referral."""

    roles = frozenset({AM})

    command: Literal["decide_referral"] = "decide_referral"
    referral_id: uuid.UUID
    accept: bool
    decline_reason: DeclineReason | None = None


class SendQuote(Command):
    """Heliomare sends a custom quote or reintegration plan (art 7.1)."""

    roles = frozenset({AM})

    command: Literal["send_quote"] = "send_quote"
    referral_id: uuid.UUID
    kind: QuoteKind = QuoteKind.QUOTE
    amount: Euro
    planned_start: date
    duration_weeks: int = Field(ge=1, le=260)
    invoicing: list[InvoiceTranche] = Field(min_length=1, max_length=12)


OfferCommand = Annotated[
    DecideReferral | SendQuote | GetReferral | ListReferrals | BreachCommand, Field(discriminator="command")
]


# --- trajectory (Heliomare) --------------------------------------------------------------------


class StartTrajectory(Command):
    """Heliomare registers the start of the trajectory of an approved quote (Bijlage 2 step 4)."""

    roles = frozenset({COACH, AM})

    command: Literal["start_trajectory"] = "start_trajectory"
    referral_id: uuid.UUID
    start_date: date


class ReportProgress(Command):
    """A progress report (step 6): a date, a phase and a status code. No free text (art 5.5)."""

    roles = frozenset({COACH, AM})

    command: Literal["report_progress"] = "report_progress"
    referral_id: uuid.UUID
    reported_on: date
    phase: Phase
    status: ProgressStatus


class EndTrajectory(Command):
    """The end of the trajectory (step 7) with its outcome: paid work (contract type and hours band),
    education, another provision, or stopped early (with a reason code)."""

    roles = frozenset({COACH, AM})

    command: Literal["end_trajectory"] = "end_trajectory"
    referral_id: uuid.UUID
    end_date: date
    outcome: Outcome
    contract_type: ContractType | None = None
    hours_band: HoursBand | None = None
    stop_reason: StopReason | None = None


class PublishReport(Command):
    """Send the yearly report for a closed year to WerkSaam (art 6.2): once; after that only as a correction,
    which repeats every figure whose underlying count moved by less than 5 (art 6.3)."""

    roles = frozenset({AM})

    command: Literal["publish_report"] = "publish_report"
    year: int = Field(ge=2000, le=2100)
    correction: bool = Field(False, description="Publish a correction of the year's earlier publication.")


TrajectoryCommand = Annotated[
    StartTrajectory | ReportProgress | EndTrajectory | PublishReport | GetReport | GetReferral | ListReferrals,
    Field(discriminator="command"),
]


# --- billing (Heliomare) -----------------------------------------------------------------------


class ListInvoices(ReferralView):
    """Billing's invoices, each naming its referral: with `detail`, their dates and amounts."""

    roles = frozenset({FIN, AM})
    command: Literal["list_invoices"] = "list_invoices"
    referral_id: uuid.UUID | None = Field(None, description="Only this referral's invoices (its trajectory's).")
    year: int | None = Field(None, ge=2000, le=2100)
    limit: int = Field(1000, ge=1, le=10_000)


BillingCommand = Annotated[GetReferral | ListReferrals | ListInvoices, Field(discriminator="command")]


# --- subject_rights (WerkSaam): data-subject requests, agreement art 10 ---------------------------


class IdentityCheck(BaseModel):
    """How the person's identity was verified before the request was taken (GDPR art 12(6))."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["id_document_at_desk", "digid", "known_contact", "not_verified"]
    verified_by: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,40}$", description="Staff id of who checked it.")
    verified_at: AwareDatetime

    @property
    def verified(self) -> bool:
        return self.method != "not_verified"


class Corrections(BaseModel):
    """What a rectification corrects, each value checked as the original field is."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    given_name: Name | None = None
    family_name: Name | None = None
    date_of_birth: date | None = None
    postal_code: PostalCode | None = None
    phone: Phone | None = None
    email: Email | None = None

    def as_message(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


class SubmitSubjectRequest(Command):
    """A person exercises a right (GDPR art 15-21) at WerkSaam, the contact point (agreement art 10.3).
    The BSN is turned into the pseudonym at the door and not kept."""

    concerns_subject_rights = True  # the desk handles the requests of restricted persons too
    roles = frozenset({PO})

    command: Literal["submit_subject_request"] = "submit_subject_request"
    bsn: BSN
    right: Right
    identity: IdentityCheck
    parties: list[Party] | None = Field(None, max_length=5, description="Whose data; default: by the right.")
    corrections: Corrections | None = None
    received_at: AwareDatetime | None = Field(None, description="When it reached WerkSaam; default: now.")
    person_told_at: AwareDatetime | None = Field(None, description="Lifting a restriction: when the person was told.")
    update: bool = Field(False, description="Access or portability asked again soon after an answer: the person "
                                            "asks for an update (or says new data arrived), so it is carried out "
                                            "anew (art 12(5); see README).")


class ExtendSubjectRequest(Command):
    """Extend the deadline by two months (art 12(3)); the person must be told why within the first month."""

    concerns_subject_rights = True  # the desk handles the requests of restricted persons too
    roles = frozenset({PO})

    command: Literal["extend_subject_request"] = "extend_subject_request"
    request_id: uuid.UUID
    reason: Literal["complex_request", "number_of_requests"]
    person_told_at: AwareDatetime


class ChaseSubjectRequests(Command):
    """Ask silent services again and escalate requests at risk (run on a timer, or by hand)."""

    concerns_subject_rights = True  # the desk handles the requests of restricted persons too
    roles = frozenset({PO, OPS})

    command: Literal["chase_subject_requests"] = "chase_subject_requests"
    now: AwareDatetime | None = Field(None, description="For tests and replays; default: now.")


class GetSubjectRequest(Query):
    concerns_subject_rights = True  # the desk handles the requests of restricted persons too
    roles = frozenset({PO})
    command: Literal["get_subject_request"] = "get_subject_request"
    request_id: uuid.UUID

    def reveals_personal_data(self) -> bool:
        return True  # the answers hold copies of the data every service holds on the person


class ListSubjectRequests(Query):
    concerns_subject_rights = True  # the desk handles the requests of restricted persons too
    roles = frozenset({PO, OPS})
    command: Literal["list_subject_requests"] = "list_subject_requests"
    status: Literal["open", "completed", "refused"] | None = None
    at_risk: bool = Field(False, description="Only open requests that are escalated, near or past their deadline.")
    limit: int = Field(200, ge=1, le=1000)


SubjectRightsCommand = Annotated[
    SubmitSubjectRequest | ExtendSubjectRequest | ChaseSubjectRequests | GetSubjectRequest | ListSubjectRequests
    | BreachCommand,
    Field(discriminator="command"),
]


class CommandResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: bool
    command_id: uuid.UUID | None = None
    reasons: list[Reason] = Field(default_factory=list)
    result: dict[str, Any] | list[dict[str, Any]] | None = None
