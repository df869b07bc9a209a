"""Trajectory handlers: plain functions of (message, unit of work).

The messaging core around them does validation, deduplication, retours, tracing and the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

from services.trajectory.domain import PublishedReport, Trajectory
from services.trajectory.report import Fact, build_report, closes_on
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
from shared.contracts.events import InvoiceIssued, TrajectoryCommissioned
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.messaging.handlers import Incoming
from shared.privacy.register import performs
from shared.unit_of_work import UnitOfWork

# The registered processing activities (shared/privacy/register.toml) these handlers perform.
CASE_OVERVIEW = "urn:werkbrug:activity:heliomare:case-overview:v1"
TRAJECTORY = "urn:werkbrug:activity:heliomare:trajectory:v2"
REPORT = "urn:werkbrug:activity:heliomare:trajectory-report:v3"
MAX_TRAJECTORIES = 100_000
REPORT_IDS = uuid.UUID("5a1c0e2d-8f3b-4c7a-9e61-7265706f7274")



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


def _system_today() -> date:
    return now_utc().date()


@performs(REPORT)
async def publish_report(cmd: PublishReport, uow: UnitOfWork, today: Callable[[], date] = _system_today) -> dict:
    """Publish a closed year once; later only a correction (see services/trajectory/report.py)."""
    day = today()
    if day < closes_on(cmd.year):
        raise Refusal(Reason(code=ReasonCode.REPORT_PERIOD_OPEN, field="year",
                             detail="a year may be published from 1 February of the next year"))
    last = await _last_edition(uow, cmd.year)
    if last is not None and not cmd.correction:
        raise Refusal(Reason(code=ReasonCode.REPORT_ALREADY_PUBLISHED, field="year",
                             detail="published once; send a correction instead"))
    if last is None and cmd.correction:
        raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="correction", detail="nothing published to correct"))
    if last is not None and not last.anchors:  # a report.published v1: what it rests on was not kept
        raise Refusal(Reason(code=ReasonCode.INVALID_VALUE, field="correction",
                             detail="published without what a protected correction needs"))
    edition = last.edition + 1 if last is not None else 1
    facts, left_out = await _facts(uow)
    # One id per year and edition: two publications at once collide on it, and the second is then refused.
    report_id = uuid.uuid5(REPORT_IDS, f"{cmd.year}:{edition}")
    report, figures, anchors = build_report(
        facts, cmd.year, day, report_id, left_out=left_out,
        previous=(last.figures, last.anchors) if last is not None else None,
        edition=edition, corrects=last.id if last is not None else None)
    published = PublishedReport(id=report.report_id, year=cmd.year, published_on=day, edition=report.edition,
                                report=report.model_dump(mode="json"), figures=figures, anchors=anchors)
    published.emit(report, subject=None)
    uow.reports.add(published)
    return report.model_dump(mode="json")


@performs(REPORT)
async def get_report(query: GetReport, uow: UnitOfWork, today: Callable[[], date] = _system_today) -> dict:
    """The year's report as last published; before that, as it would be published today (a preview for
    Heliomare's staff: nothing is sent or kept)."""
    last = await _last_edition(uow, query.year)
    if last is not None:
        return last.report
    facts, left_out = await _facts(uow)
    report, _, _ = build_report(facts, query.year, today(), uuid.UUID(int=0), left_out=left_out)
    return report.model_dump(mode="json")


async def _last_edition(uow: UnitOfWork, year: int) -> PublishedReport | None:
    editions = await uow.reports.find(limit=100, year=year)
    return max(editions, key=lambda r: r.edition, default=None)


@performs(CASE_OVERVIEW)
async def get_referral(query: GetReferral, uow: UnitOfWork) -> dict:
    trajectory = await _trajectory(uow, query.referral_id)
    return {**trajectory.view(), "deliveries": await uow.deliveries(trajectory.id)}


@performs(CASE_OVERVIEW)
async def list_referrals(query: ListReferrals, uow: UnitOfWork) -> list[dict]:
    filters = {"status": query.status} if query.status else {}
    return [t.view() for t in await uow.trajectories.find(limit=query.limit, **filters)]


async def _facts(uow: UnitOfWork) -> tuple[list[Fact], int]:
    """What the report counts, and how many persons it leaves out. A person whose processing is restricted
    (art 18) or who objected (art 21) is left out, and so is a record withheld after an erasure (kept for its
    legal ground only); their records are dropped from the unit of work, so they are not processed for the
    report (no processing-log record, and the pipeline's subject check does not refuse the report for them)."""
    facts: list[Fact] = []
    left_out: set[str] = set()
    counted: set[str] = set()
    for t in await uow.trajectories.find(limit=MAX_TRAJECTORIES):
        if t.id in uow.trajectories.withheld:
            uow.trajectories.forget(t.id)
            continue
        if t.subject not in counted and t.subject not in left_out:
            state = await uow.subject_state(t.subject)
            excluded = state.restricted_since is not None or state.objected_since is not None
            (left_out if excluded else counted).add(t.subject)
        if t.subject in left_out:
            uow.trajectories.forget(t.id)
            continue
        facts.append(Fact(municipality=t.municipality, start_date=t.start_date, end_date=t.end_date,
                          outcome=t.outcome, invoices=tuple((i.invoice_date, i.amount) for i in t.invoices)))
    return facts, len(left_out)


async def _trajectory(uow: UnitOfWork, referral_id) -> Trajectory:
    return await uow.trajectories.require(referral_id)
