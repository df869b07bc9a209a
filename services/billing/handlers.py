"""Billing handlers: plain functions of (message, unit of work).

Each trajectory event is recorded on the account; the orders that became due are registered and
invoiced in the same transaction, numbered from the year's counter (gap-free: a rolled-back or
duplicate message uses no number).
"""

from __future__ import annotations

from decimal import Decimal

from services.billing.domain import Account, InvoiceCounter
from shared.contracts.commands import GetReferral, ListInvoices, ListReferrals
from shared.contracts.events import TrajectoryCommissioned, TrajectoryEnded, TrajectoryStarted
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.messaging.handlers import Incoming
from shared.privacy.register import performs
from shared.unit_of_work import UnitOfWork

# The registered processing activities (shared/privacy/register.toml) these handlers perform.
BILLING = "urn:werkbrug:activity:heliomare:billing:v2"
CASE_OVERVIEW = "urn:werkbrug:activity:heliomare:case-overview:v1"


@performs(BILLING)
async def on_trajectory_commissioned(event: Incoming[TrajectoryCommissioned], uow: UnitOfWork, *,
                                     vat_rate: Decimal) -> None:
    account = await _account(uow, event)
    account.commissioned(event.data)
    await _invoice_what_is_due(account, uow, vat_rate)


@performs(BILLING)
async def on_trajectory_started(event: Incoming[TrajectoryStarted], uow: UnitOfWork, *, vat_rate: Decimal) -> None:
    account = await _account(uow, event)
    account.started(event.data)
    await _invoice_what_is_due(account, uow, vat_rate)


@performs(BILLING)
async def on_trajectory_ended(event: Incoming[TrajectoryEnded], uow: UnitOfWork, *, vat_rate: Decimal) -> None:
    account = await _account(uow, event)
    account.ended(event.data)
    await _invoice_what_is_due(account, uow, vat_rate)


@performs(CASE_OVERVIEW)
async def get_referral(query: GetReferral, uow: UnitOfWork) -> dict:
    account = await uow.accounts.get(query.referral_id)
    if account is None:
        raise Refusal(ReasonCode.UNKNOWN_REFERRAL)
    return {**account.view(), "deliveries": await uow.deliveries(account.id)}


@performs(CASE_OVERVIEW)
async def list_referrals(query: ListReferrals, uow: UnitOfWork) -> list[dict]:
    accounts = await uow.accounts.find(limit=query.limit)
    return [a.view() for a in accounts if query.status is None or a.status == query.status]


@performs(CASE_OVERVIEW)
async def list_invoices(query: ListInvoices, uow: UnitOfWork) -> list[dict]:
    """The invoices, each with its referral and trajectory; with `referral_id`, only that referral's (its account
    alone is read, so the processing log names that one person, not everyone invoiced)."""
    if query.referral_id is not None:
        account = await uow.accounts.get(query.referral_id)
        accounts = [account] if account is not None else []
    else:
        accounts = await uow.accounts.find(limit=query.limit)
    invoices = [{**i.model_dump(mode="json"), "referral_id": str(a.id),
                 "trajectory_id": str(a.start.trajectory_id) if a.start else None}
                for a in accounts for i in a.invoices
                if query.year is None or i.invoice_date.year == query.year]
    return sorted(invoices, key=lambda i: i["number"])


async def _invoice_what_is_due(account: Account, uow: UnitOfWork, vat_rate: Decimal) -> None:
    account.draw_up_orders()
    for order in account.pending_orders():
        year = order.due_on.year
        counter = await uow.counters.get(InvoiceCounter.id_for(year))
        if counter is None:
            counter = InvoiceCounter.for_year(year)
            uow.counters.add(counter)
        account.issue(order, counter.take(), vat_rate)


async def _account(uow: UnitOfWork, event: Incoming) -> Account:
    subject = event.envelope.subject
    if subject is None:  # the pipeline refuses these already
        raise Refusal(Reason(code=ReasonCode.MISSING_FIELD, field="subject"))
    account = await uow.accounts.get(event.data.referral_id)
    if account is None:
        account = Account.open(event.data.referral_id, subject)
        uow.accounts.add(account)
    elif account.subject != subject:
        raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="subject", detail="not this referral's subject"))
    return account
