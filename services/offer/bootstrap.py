"""Offer wiring (the bootstrap): storage of its aggregates and the handlers for each message."""

from __future__ import annotations

from services.offer import handlers
from services.offer.domain import Case
from shared.bootstrap import service
from shared.config import Settings
from shared.contracts.commands import DecideReferral, GetReferral, ListReferrals, OfferCommand, SendQuote
from shared.contracts.events import (
    BreachReported,
    QuoteApproved,
    QuoteRejected,
    QuoteSent,
    ReferralAccepted,
    ReferralDeclined,
    ReferralRegistered,
    TrajectoryCommissioned,
)
from shared.contracts.parties import Party
from shared.messaging.definition import ServiceDefinition
from shared.privacy.breaches import BREACHES, breach_desk
from shared.unit_of_work import RepositorySpec

CASES = RepositorySpec("cases", Case, encrypted=("client",), indexes=(("subject",), ("status",)),
                       retention="referral-registration")


def definition(settings: Settings | None = None) -> ServiceDefinition:
    # Heliomare's breach desk (art 12): offer is its first point of contact with WerkSaam.
    breach_events, breach_commands = breach_desk(Party.HELIOMARE)
    return service(
        name="offer",
        party=Party.HELIOMARE,
        description="Heliomare offer: registered referrals, acceptance, quotes and their approval; Heliomare's "
                    "breach desk (art 12): reports breaches and receives WerkSaam's.",
        repositories=[CASES, BREACHES],
        event_handlers={
            ReferralRegistered: handlers.on_referral_registered,
            QuoteApproved: handlers.on_quote_approved,
            QuoteRejected: handlers.on_quote_rejected,
            **breach_events,
        },
        command_type=OfferCommand,
        command_handlers={
            DecideReferral: handlers.decide_referral,
            SendQuote: handlers.send_quote,
            GetReferral: handlers.get_referral,
            ListReferrals: handlers.list_referrals,
            **breach_commands,
        },
        emits=(ReferralAccepted, ReferralDeclined, QuoteSent, TrajectoryCommissioned, BreachReported),
    )
