"""Intake wiring (the bootstrap): storage of its aggregates and the handlers for each message.

This is the only place that knows both the handlers and the infrastructure; `python -m services.intake`
runs it with the shared runtime.
"""

from __future__ import annotations

from functools import partial

from services.intake import handlers
from services.intake.domain import Referral
from shared.config import Settings, get_settings
from shared.contracts.commands import DecideQuote, GetReferral, IntakeCommand, ListReferrals, SubmitReferral
from shared.contracts.events import (
    QuoteApproved,
    QuoteRejected,
    QuoteSent,
    ReferralAccepted,
    ReferralDeclined,
    ReferralRegistered,
)
from shared.contracts.parties import Party
from shared.messaging.pipeline import ServiceDefinition
from shared.privacy.pseudonym import Pseudonymiser
from shared.unit_of_work import RepositorySpec

REFERRALS = RepositorySpec(
    "referrals", Referral, encrypted=("person",), indexes=(("subject",), ("status",)),
)


def definition(settings: Settings | None = None) -> ServiceDefinition:
    settings = settings or get_settings()
    pseudonymise = Pseudonymiser(settings.pseudonym_key.get_secret_value())
    return ServiceDefinition(
        name="intake",
        party=Party.WERKSAAM,
        description="WerkSaam intake: referrals (aanmelding) and the commissioner's quote decisions.",
        repositories=[REFERRALS],
        event_handlers={
            ReferralAccepted: handlers.on_referral_accepted,
            ReferralDeclined: handlers.on_referral_declined,
            QuoteSent: handlers.on_quote_sent,
        },
        command_type=IntakeCommand,
        command_handlers={
            SubmitReferral: partial(handlers.submit_referral, pseudonymise=pseudonymise),
            DecideQuote: handlers.decide_quote,
            GetReferral: handlers.get_referral,
            ListReferrals: handlers.list_referrals,
        },
        emits=(ReferralRegistered, QuoteApproved, QuoteRejected),
    )
