"""Billing wiring (the bootstrap): storage of its aggregates and the handlers for each message."""

from __future__ import annotations

from functools import partial

from services.billing import handlers
from services.billing.domain import Account, InvoiceCounter
from shared.bootstrap import service
from shared.config import Settings, get_settings
from shared.contracts.commands import BillingCommand, GetReferral, ListInvoices, ListReferrals
from shared.contracts.events import InvoiceIssued, TrajectoryCommissioned, TrajectoryEnded, TrajectoryStarted
from shared.contracts.parties import Party
from shared.messaging.definition import ServiceDefinition
from shared.unit_of_work import RepositorySpec

ACCOUNTS = RepositorySpec("accounts", Account, indexes=(("subject",),), retention="billing")
COUNTERS = RepositorySpec("counters", InvoiceCounter, unique_indexes=(("year",),))


def definition(settings: Settings | None = None) -> ServiceDefinition:
    settings = settings or get_settings()
    vat = {"vat_rate": settings.vat_rate}
    return service(
        name="billing",
        party=Party.HELIOMARE,
        description="Heliomare billing: invoice orders and invoices to WerkSaam per the approved quote's schedule.",
        repositories=[ACCOUNTS, COUNTERS],
        event_handlers={
            TrajectoryCommissioned: partial(handlers.on_trajectory_commissioned, **vat),
            TrajectoryStarted: partial(handlers.on_trajectory_started, **vat),
            TrajectoryEnded: partial(handlers.on_trajectory_ended, **vat),
        },
        command_type=BillingCommand,
        command_handlers={
            GetReferral: handlers.get_referral,
            ListReferrals: handlers.list_referrals,
            ListInvoices: handlers.list_invoices,
        },
        emits=(InvoiceIssued,),
    )
