"""Intake wiring (the bootstrap): storage of its aggregates and the handlers for each message.

This is the only place that knows both the handlers and the infrastructure; `python -m services.intake`
runs it with the shared runtime.
"""

from __future__ import annotations

from functools import partial

from services.intake import handlers
from services.intake.domain import ReceivedReport, Referral
from shared.bootstrap import service
from shared.config import Settings, get_settings
from shared.contracts.commands import (
    DecideQuote,
    GetReferral,
    GetReport,
    IntakeCommand,
    ListReferrals,
    SubmitReferral,
)
from shared.contracts.events import (
    InvoiceIssued,
    QuoteApproved,
    QuoteRejected,
    QuoteSent,
    ReferralAccepted,
    ReferralDeclined,
    ReferralRegistered,
    ReportPublished,
    TrajectoryEnded,
    TrajectoryProgressed,
    TrajectoryStarted,
)
from shared.contracts.parties import Party
from shared.messaging.definition import ServiceDefinition
from shared.privacy.pseudonym import Pseudonymiser
from shared.unit_of_work import RepositorySpec

REFERRALS = RepositorySpec(
    "referrals", Referral, encrypted=("person",), indexes=(("subject",), ("status",)), retention="referral-intake",
)
REPORTS = RepositorySpec("reports", ReceivedReport, indexes=(("year",),))


def definition(settings: Settings | None = None) -> ServiceDefinition:
    settings = settings or get_settings()
    pseudonymise = Pseudonymiser(settings.pseudonym_key.get_secret_value())
    return service(
        name="intake",
        party=Party.WERKSAAM,
        description="WerkSaam intake: referrals (aanmelding), the commissioner's quote decisions, the trajectory "
                    "as Heliomare reports it, invoice checks and the yearly report.",
        repositories=[REFERRALS, REPORTS],
        event_handlers={
            ReferralAccepted: handlers.on_referral_accepted,
            ReferralDeclined: handlers.on_referral_declined,
            QuoteSent: handlers.on_quote_sent,
            TrajectoryStarted: handlers.on_trajectory_started,
            TrajectoryProgressed: handlers.on_trajectory_progressed,
            TrajectoryEnded: handlers.on_trajectory_ended,
            InvoiceIssued: handlers.on_invoice_issued,
            ReportPublished: handlers.on_report_published,
        },
        command_type=IntakeCommand,
        command_handlers={
            SubmitReferral: partial(handlers.submit_referral, pseudonymise=pseudonymise),
            DecideQuote: handlers.decide_quote,
            GetReferral: handlers.get_referral,
            ListReferrals: handlers.list_referrals,
            GetReport: handlers.get_report,
        },
        emits=(ReferralRegistered, QuoteApproved, QuoteRejected),
    )
