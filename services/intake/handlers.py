"""Intake handlers: plain functions of (message, unit of work).

The messaging core around them does validation, deduplication, retours, tracing and the commit.
"""

from __future__ import annotations

from collections.abc import Callable

from services.intake.domain import OPEN, ReceivedReport, Referral, ReferralStatus
from shared.contracts.commands import DecideQuote, GetReferral, GetReport, ListReferrals, SubmitReferral
from shared.contracts.envelope import now_utc
from shared.contracts.events import (
    InvoiceIssued,
    QuoteSent,
    ReferralAccepted,
    ReferralDeclined,
    ReportPublished,
    TrajectoryEnded,
    TrajectoryProgressed,
    TrajectoryStarted,
)
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.messaging.handlers import Answer, Incoming
from shared.privacy.bsn import is_valid_bsn
from shared.privacy.register import performs
from shared.unit_of_work import UnitOfWork

# The registered processing activities (shared/privacy/register.toml) these handlers perform.
CASE_OVERVIEW = "urn:werkbrug:activity:werksaam:case-overview:v1"
QUOTE_DECISION = "urn:werkbrug:activity:werksaam:quote-decision:v2"
REFERRAL_INTAKE = "urn:werkbrug:activity:werksaam:referral-intake:v2"
TRAJECTORY_MONITORING = "urn:werkbrug:activity:werksaam:trajectory-monitoring:v2"
INVOICE_VERIFICATION = "urn:werkbrug:activity:werksaam:invoice-verification:v2"
TRAJECTORY_REPORT = "urn:werkbrug:activity:werksaam:trajectory-report:v3"



# -- commands (caseworkers) -------------------------------------------------------------------------


@performs(REFERRAL_INTAKE)
async def submit_referral(cmd: SubmitReferral, uow: UnitOfWork, *, pseudonymise: Callable[[str], str]) -> Answer:
    subject = pseudonymise(cmd.bsn) if is_valid_bsn(cmd.bsn) else None
    open_referrals = await uow.referrals.find(limit=1, subject=subject, status=sorted(OPEN)) if subject else []
    referral = Referral.submit(cmd, pseudonymise, open_referral=open_referrals[0].id if open_referrals else None)
    uow.referrals.add(referral)
    refused = referral.status == ReferralStatus.REFUSED
    return Answer(referral.view(), ok=not refused, reasons=tuple(referral.refusal_reasons),
                  lifecycle_id=referral.id)


@performs(QUOTE_DECISION)
async def decide_quote(cmd: DecideQuote, uow: UnitOfWork) -> dict:
    referral = await _referral(uow, cmd.referral_id)
    referral.decide_quote(cmd.quote_id, cmd.approve, cmd.reject_reason)
    return referral.view()


@performs(CASE_OVERVIEW)
async def get_referral(query: GetReferral, uow: UnitOfWork) -> dict:
    referral = await _referral(uow, query.referral_id)
    view = {**referral.view(), "deliveries": await uow.deliveries(referral.id)}
    if query.with_person:  # the messaging core let only staff with a confidentiality statement ask (art 8)
        view["person"] = referral.person.model_dump(mode="json") if referral.person else None
    return view


@performs(CASE_OVERVIEW)
async def list_referrals(query: ListReferrals, uow: UnitOfWork) -> list[dict]:
    filters = {"status": query.status} if query.status else {}
    return [r.view() for r in await uow.referrals.find(limit=query.limit, **filters)]


# -- events from Heliomare ------------------------------------------------------------------------


@performs(REFERRAL_INTAKE)
async def on_referral_accepted(event: Incoming[ReferralAccepted], uow: UnitOfWork) -> None:
    (await _referral(uow, event.data.referral_id, event)).provider_accepted()


@performs(REFERRAL_INTAKE)
async def on_referral_declined(event: Incoming[ReferralDeclined], uow: UnitOfWork) -> None:
    (await _referral(uow, event.data.referral_id, event)).provider_declined(event.data.reason)


@performs(QUOTE_DECISION)
async def on_quote_sent(event: Incoming[QuoteSent], uow: UnitOfWork) -> None:
    (await _referral(uow, event.data.referral_id, event)).quote_received(event.data)


@performs(TRAJECTORY_MONITORING)
async def on_trajectory_started(event: Incoming[TrajectoryStarted], uow: UnitOfWork) -> None:
    (await _referral(uow, event.data.referral_id, event)).trajectory_started(event.data)


@performs(TRAJECTORY_MONITORING)
async def on_trajectory_progressed(event: Incoming[TrajectoryProgressed], uow: UnitOfWork) -> None:
    (await _referral(uow, event.data.referral_id, event)).trajectory_progressed(event.data)


@performs(TRAJECTORY_MONITORING)
async def on_trajectory_ended(event: Incoming[TrajectoryEnded], uow: UnitOfWork) -> None:
    (await _referral(uow, event.data.referral_id, event)).trajectory_ended(event.data)


@performs(INVOICE_VERIFICATION)
async def on_invoice_issued(event: Incoming[InvoiceIssued], uow: UnitOfWork) -> None:
    (await _referral(uow, event.data.referral_id, event)).invoice_received(event.data)


@performs(TRAJECTORY_REPORT)
async def on_report_published(event: Incoming[ReportPublished], uow: UnitOfWork) -> None:
    if await uow.reports.get(event.data.report_id) is None:
        uow.reports.add(ReceivedReport(id=event.data.report_id, year=event.data.year, received_at=now_utc(),
                                       report=event.data.model_dump(mode="json")))


@performs(TRAJECTORY_REPORT)
async def get_report(query: GetReport, uow: UnitOfWork) -> dict:
    """The latest edition of the report Heliomare sent for the year (a correction replaces the publication)."""
    reports = await uow.reports.find(limit=100, year=query.year)
    if not reports:
        raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="year", detail="no report received for the year"))
    return max(reports, key=lambda r: (r.report.get("edition", 1), r.received_at)).report


async def _referral(uow: UnitOfWork, referral_id, event: Incoming | None = None) -> Referral:
    referral = await uow.referrals.require(referral_id, subject=event.envelope.subject if event else None)
    if event is not None and event.envelope.source != referral.provider:  # only the provider it was sent to answers
        raise Refusal(Reason(code=ReasonCode.SOURCE_NOT_PERMITTED, field="source",
                             detail="not the provider the referral was sent to"))
    return referral
