"""Trajectory (Heliomare): start, progress and end of the trajectory of an approved quote.

Bijlage 2 steps 4, 6 and 7 as Heliomare executes them. The trajectory exists from the moment offer
tells Heliomare's services that WerkSaam approved a quote (`trajectory.commissioned`); staff then
register its start, any number of progress reports, and its end with the outcome. Each is sent to
WerkSaam with only codes and dates (art 5.5: no free text, no health details).

Order guards (a command out of order is refused with a reason code, never silently applied): no start
without an approved quote, no second start, no progress before the start or after the end, no date
before the start or before an earlier report, no second end.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.commands import EndTrajectory, ReportProgress
from shared.contracts.events import (
    ContractType,
    HoursBand,
    InvoiceIssued,
    InvoiceTranche,
    Outcome,
    Phase,
    ProgressStatus,
    StopReason,
    TrajectoryCommissioned,
    TrajectoryEnded,
    TrajectoryProgressed,
    TrajectoryStarted,
    outcome_detail_errors,
)
from shared.contracts.parties import Municipality, Party
from shared.contracts.reasons import Reason, ReasonCode, Refusal
from shared.domain import Aggregate

TRAJECTORY_NAMESPACE = uuid.UUID("0b5f2a3e-6a41-4d6e-8f0e-7472616a6563")


def trajectory_id_for(referral_id: uuid.UUID, quote_id: uuid.UUID) -> uuid.UUID:
    """Deterministic: the same approved quote always gives the same trajectory id."""
    return uuid.uuid5(TRAJECTORY_NAMESPACE, f"{referral_id}:{quote_id}")


class TrajectoryStatus(StrEnum):
    COMMISSIONED = "commissioned"  # quote approved, not started yet
    RUNNING = "running"
    ENDED = "ended"


class ProgressReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sequence: int
    reported_on: date
    phase: Phase
    status: ProgressStatus


class InvoicedAmount(BaseModel):
    """What billing invoiced, as far as the report needs it (date and amount excluding VAT)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invoice_id: uuid.UUID
    invoice_date: date
    amount: Decimal


class Trajectory(Aggregate):
    """One referral's trajectory; its id is the referral id both parties share."""

    subject: str
    municipality: Municipality
    status: TrajectoryStatus
    quote_id: uuid.UUID
    trajectory_id: uuid.UUID
    approved_amount: Decimal
    planned_start: date
    duration_weeks: int
    invoicing: list[InvoiceTranche]
    start_date: date | None = None
    planned_end: date | None = None
    progress: list[ProgressReport] = Field(default_factory=list)
    end_date: date | None = None
    outcome: Outcome | None = None
    contract_type: ContractType | None = None
    hours_band: HoursBand | None = None
    stop_reason: StopReason | None = None
    invoices: list[InvoicedAmount] = Field(default_factory=list)
    # The commissioner the trajectory's messages are addressed to. One recorded before messages were addressed
    # (issue 18) was the founding commissioner's.
    commissioner: str = Party.WERKSAAM

    @classmethod
    def commission(cls, event: TrajectoryCommissioned, subject: str) -> Trajectory:
        return cls(
            id=event.referral_id, subject=subject, municipality=event.municipality,
            status=TrajectoryStatus.COMMISSIONED, quote_id=event.quote_id,
            trajectory_id=trajectory_id_for(event.referral_id, event.quote_id),
            approved_amount=event.approved_amount, planned_start=event.planned_start,
            duration_weeks=event.duration_weeks, invoicing=list(event.invoicing), commissioner=event.commissioner,
        )

    def retention_start(self) -> date | None:
        """The trajectory's record is closed when it ended (invoices received later move the date on)."""
        if self.status != TrajectoryStatus.ENDED or self.end_date is None:
            return None
        return max([self.end_date, *(i.invoice_date for i in self.invoices)])

    def commissioned_again(self, event: TrajectoryCommissioned) -> None:
        """The same commission once more is no news; another quote for a commissioned referral is refused."""
        if event.quote_id != self.quote_id:
            raise Refusal(Reason(code=ReasonCode.INVALID_TRANSITION, detail="referral already has an approved quote"))

    # -- step 4 ------------------------------------------------------------------------------------

    def start(self, start_date: date) -> None:
        if self.status == TrajectoryStatus.RUNNING:
            raise Refusal(ReasonCode.TRAJECTORY_ALREADY_STARTED)
        if self.status == TrajectoryStatus.ENDED:
            raise Refusal(ReasonCode.TRAJECTORY_ENDED)
        self.start_date = start_date
        self.planned_end = start_date + timedelta(weeks=self.duration_weeks)
        self.status = TrajectoryStatus.RUNNING
        self.emit(TrajectoryStarted(referral_id=self.id, trajectory_id=self.trajectory_id, quote_id=self.quote_id,
                                    start_date=start_date, planned_end=self.planned_end), subject=self.subject,
                  to=self.commissioner)

    # -- step 6 ------------------------------------------------------------------------------------

    def report_progress(self, cmd: ReportProgress) -> None:
        self._require_running()
        self._not_before_earlier_dates(cmd.reported_on, "reported_on")
        report = ProgressReport(sequence=len(self.progress) + 1, reported_on=cmd.reported_on, phase=cmd.phase,
                                status=cmd.status)
        self.progress = [*self.progress, report]
        self.emit(TrajectoryProgressed(referral_id=self.id, trajectory_id=self.trajectory_id,
                                       **report.model_dump()), subject=self.subject, to=self.commissioner)

    # -- step 7 ------------------------------------------------------------------------------------

    def end(self, cmd: EndTrajectory) -> None:
        self._require_running()
        self._not_before_earlier_dates(cmd.end_date, "end_date")
        wrong = outcome_detail_errors(cmd.outcome, cmd.contract_type, cmd.hours_band, cmd.stop_reason)
        if wrong:
            raise Refusal(*(Reason(code=ReasonCode.OUTCOME_DETAILS_INVALID, field=f, detail=f"for {cmd.outcome}")
                            for f in wrong))
        self.end_date, self.outcome = cmd.end_date, cmd.outcome
        self.contract_type, self.hours_band, self.stop_reason = cmd.contract_type, cmd.hours_band, cmd.stop_reason
        self.status = TrajectoryStatus.ENDED
        self.emit(TrajectoryEnded(referral_id=self.id, trajectory_id=self.trajectory_id, end_date=cmd.end_date,
                                  outcome=cmd.outcome, contract_type=cmd.contract_type, hours_band=cmd.hours_band,
                                  stop_reason=cmd.stop_reason), subject=self.subject, to=self.commissioner)

    # -- billing's invoices, for the report ------------------------------------------------------------

    def invoiced(self, event: InvoiceIssued) -> None:
        if event.trajectory_id != self.trajectory_id:
            raise Refusal(ReasonCode.UNKNOWN_TRAJECTORY)
        if any(i.invoice_id == event.invoice_id for i in self.invoices):
            return
        self.invoices = [*self.invoices, InvoicedAmount(invoice_id=event.invoice_id, invoice_date=event.invoice_date,
                                                        amount=event.amount_excl_vat)]

    def _require_running(self) -> None:
        if self.status == TrajectoryStatus.COMMISSIONED:
            raise Refusal(ReasonCode.TRAJECTORY_NOT_STARTED)
        if self.status == TrajectoryStatus.ENDED:
            raise Refusal(ReasonCode.TRAJECTORY_ENDED)

    def _not_before_earlier_dates(self, when: date, field: str) -> None:
        assert self.start_date is not None
        if when < self.start_date:
            raise Refusal(Reason(code=ReasonCode.DATE_BEFORE_START, field=field))
        if self.progress and when < self.progress[-1].reported_on:
            raise Refusal(Reason(code=ReasonCode.DATE_OUT_OF_ORDER, field=field, detail="before the last report"))

    def view(self) -> dict:
        """A summary without personal data beyond the pseudonym."""
        return {
            "referral_id": str(self.id),
            "subject": self.subject,
            "status": self.status.value,
            "municipality": self.municipality.value,
            "trajectory_id": str(self.trajectory_id),
            "quote_id": str(self.quote_id),
            "approved_amount": str(self.approved_amount),
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "planned_end": self.planned_end.isoformat() if self.planned_end else None,
            "progress": [p.model_dump(mode="json") for p in self.progress],
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "outcome": self.outcome.value if self.outcome else None,
            "invoiced": str(sum((i.amount for i in self.invoices), Decimal(0))),
        }

class PublishedReport(Aggregate):
    """An edition of a year's report sent to WerkSaam, kept as sent (aggregates only, no subject), with
    what a correction needs: the published figures and the exact counts they rest on (never sent)."""

    year: int
    published_on: date
    report: dict
    edition: int = 1
    figures: dict[str, Any] = Field(default_factory=dict)
    anchors: dict[str, int] = Field(default_factory=dict)
