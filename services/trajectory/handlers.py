"""Trajectory handlers: plain functions of (message, unit of work).

The messaging core around them does validation, deduplication, retours, tracing and the commit.
"""

from __future__ import annotations

import uuid
from datetime import date

from services.trajectory.domain import Trajectory
from services.trajectory.report import Fact, build_report
from shared.contracts.commands import (
    EndTrajectory,
    GetReferral,
    GetReport,
    ListReferrals,
    PublishReport,
    ReportProgress,
    StartTrajectory,
)
from shared.contracts.envelope import now_utc
from shared.contracts.events import InvoiceIssued, ReportPublished, TrajectoryCommissioned
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate
from shared.ids import uuid7
from shared.messaging.pipeline import Incoming
from shared.privacy.register import performs
from shared.unit_of_work import UnitOfWork

# The registered processing activities (shared/privacy/register.toml) these handlers perform.
CASE_OVERVIEW = "urn:werkbrug:activity:heliomare:case-overview:v1"
TRAJECTORY = "urn:werkbrug:activity:heliomare:trajectory:v1"
REPORT = "urn:werkbrug:activity:heliomare:trajectory-report:v1"
MAX_TRAJECTORIES = 100_000


class PublishedReport(Aggregate):
    """A report sent to WerkSaam, kept as sent (aggregates only, no subject)."""

    year: int
    published_on: date
    report: dict


# -- Heliomare's own events ---------------------------------------------------------------------------


@performs(TRAJECTORY)
async def on_trajectory_commissioned(event: Incoming[TrajectoryCommissioned], uow: UnitOfWork) -> None:
    subject = event.envelope.subject
    if subject is None:  # the pipeline refuses these already
        raise Refusal(Reason(code=ReasonCode.MISSING_FIELD, field="subject"))
    if await uow.trajectories.get(event.data.referral_id) is not None:
        existing = await uow.trajectories.require(event.data.referral_id, subject=subject)
        existing.commissioned_again(event.data)
        return
    uow.trajectories.add(Trajectory.commission(event.data, subject))


@performs(TRAJECTORY)
async def on_invoice_issued(event: Incoming[InvoiceIssued], uow: UnitOfWork) -> None:
    trajectory = await uow.trajectories.require(event.data.referral_id, subject=event.envelope.subject)
    trajectory.invoiced(event.data)


# -- commands (Heliomare's staff) ---------------------------------------------------------------------


@performs(TRAJECTORY)
async def start_trajectory(cmd: StartTrajectory, uow: UnitOfWork) -> dict:
    trajectory = await uow.trajectories.get(cmd.referral_id)
    if trajectory is None:  # no commission: WerkSaam approved no quote for this referral (yet)
        raise Refusal(ReasonCode.NO_APPROVED_QUOTE)
    trajectory.start(cmd.start_date)
    return trajectory.view()


@performs(TRAJECTORY)
async def report_progress(cmd: ReportProgress, uow: UnitOfWork) -> dict:
    trajectory = await _trajectory(uow, cmd.referral_id)
    trajectory.report_progress(cmd)
    return trajectory.view()


@performs(TRAJECTORY)
async def end_trajectory(cmd: EndTrajectory, uow: UnitOfWork) -> dict:
    trajectory = await _trajectory(uow, cmd.referral_id)
    trajectory.end(cmd)
    return trajectory.view()


@performs(REPORT)
async def publish_report(cmd: PublishReport, uow: UnitOfWork) -> dict:
    today = now_utc().date()
    report = build_report(await _facts(uow), cmd.year, today, uuid7())
    published = PublishedReport(id=report.report_id, year=cmd.year, published_on=today,
                                report=report.model_dump(mode="json"))
    published.emit(report, subject=None)
    uow.reports.add(published)
    return report.model_dump(mode="json")


@performs(REPORT)
async def get_report(query: GetReport, uow: UnitOfWork) -> dict:
    """The report as it would be sent today (a query: nothing is sent or kept)."""
    report: ReportPublished = build_report(await _facts(uow), query.year, now_utc().date(), uuid.UUID(int=0))
    return report.model_dump(mode="json")


@performs(CASE_OVERVIEW)
async def get_referral(query: GetReferral, uow: UnitOfWork) -> dict:
    trajectory = await _trajectory(uow, query.referral_id)
    return {**trajectory.view(), "deliveries": await uow.deliveries(trajectory.id)}


@performs(CASE_OVERVIEW)
async def list_referrals(query: ListReferrals, uow: UnitOfWork) -> list[dict]:
    filters = {"status": query.status} if query.status else {}
    return [t.view() for t in await uow.trajectories.find(limit=query.limit, **filters)]


async def _facts(uow: UnitOfWork) -> list[Fact]:
    return [
        Fact(municipality=t.municipality, start_date=t.start_date, end_date=t.end_date, outcome=t.outcome,
             invoices=tuple((i.invoice_date, i.amount) for i in t.invoices))
        for t in await uow.trajectories.find(limit=MAX_TRAJECTORIES)
    ]


async def _trajectory(uow: UnitOfWork, referral_id) -> Trajectory:
    return await uow.trajectories.require(referral_id)
