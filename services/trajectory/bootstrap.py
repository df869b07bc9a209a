"""Trajectory wiring (the bootstrap): storage of its aggregates and the handlers for each message."""

from __future__ import annotations

import functools
from datetime import date

from services.trajectory import handlers
from services.trajectory.domain import PublishedReport, Trajectory
from shared.bootstrap import service
from shared.config import Settings, get_settings
from shared.contracts.commands import (
    EndTrajectory,
    GetReferral,
    GetReport,
    ListReferrals,
    PublishReport,
    ReportProgress,
    StartTrajectory,
    TrajectoryCommand,
)
from shared.contracts.envelope import now_utc
from shared.contracts.events import (
    InvoiceIssued,
    ReportPublished,
    TrajectoryCommissioned,
    TrajectoryEnded,
    TrajectoryProgressed,
    TrajectoryStarted,
)
from shared.contracts.parties import Party
from shared.messaging.definition import ServiceDefinition
from shared.unit_of_work import RepositorySpec

TRAJECTORIES = RepositorySpec("trajectories", Trajectory, indexes=(("subject",), ("status",)), retention="trajectory")
REPORTS = RepositorySpec("reports", PublishedReport, indexes=(("year",),))


def definition(settings: Settings | None = None) -> ServiceDefinition:
    def today() -> date:  # read when asked: the demo and the tests set the day the report rules see
        # (a service run as its own process, `python -m services.trajectory`, reads it from its environment)
        return (settings or get_settings()).report_today or now_utc().date()

    return service(
        name="trajectory",
        party=Party.HELIOMARE,
        description="Heliomare trajectory: start, progress and end of approved trajectories, and the yearly report.",
        repositories=[TRAJECTORIES, REPORTS],
        event_handlers={
            TrajectoryCommissioned: handlers.on_trajectory_commissioned,
            InvoiceIssued: handlers.on_invoice_issued,
        },
        command_type=TrajectoryCommand,
        command_handlers={
            StartTrajectory: handlers.start_trajectory,
            ReportProgress: handlers.report_progress,
            EndTrajectory: handlers.end_trajectory,
            PublishReport: functools.partial(handlers.publish_report, today=today),
            GetReport: functools.partial(handlers.get_report, today=today),
            GetReferral: handlers.get_referral,
            ListReferrals: handlers.list_referrals,
        },
        emits=(TrajectoryStarted, TrajectoryProgressed, TrajectoryEnded, ReportPublished),
    )
