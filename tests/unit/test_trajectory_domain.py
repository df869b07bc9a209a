"""Trajectory (Heliomare): start, progress and end of an approved quote's trajectory, with order guards."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.trajectory.domain import Trajectory, TrajectoryStatus, trajectory_id_for
from shared.contracts.commands import EndTrajectory, ReportProgress
from shared.contracts.events import (
    ContractType,
    HoursBand,
    Outcome,
    Phase,
    ProgressStatus,
    StopReason,
    TrajectoryCommissioned,
    TrajectoryEnded,
    TrajectoryProgressed,
    TrajectoryStarted,
)
from shared.contracts.parties import Municipality
from shared.contracts.reasons import ReasonCode, Refusal
from tests.unit.builders import a_schedule

SUBJECT = "psn_" + "a" * 26
START = date(2027, 2, 1)


def a_commission(referral_id: uuid.UUID | None = None, amount: str = "4800.00", **overrides) -> TrajectoryCommissioned:
    fields = dict(referral_id=referral_id or uuid.uuid4(), quote_id=uuid.uuid4(), approved_amount=Decimal(amount),
                  planned_start=START, duration_weeks=26, invoicing=a_schedule(amount),
                  municipality=Municipality.HOORN, commissioner="werksaam")
    fields.update(overrides)
    return TrajectoryCommissioned(**fields)


def commissioned() -> Trajectory:
    return Trajectory.commission(a_commission(), SUBJECT)


def started(on: date = START) -> Trajectory:
    t = commissioned()
    t.start(on)
    t.pop_events()
    return t


def progress(t: Trajectory, on: date, phase=Phase.ORIENTATION) -> ReportProgress:
    return ReportProgress(referral_id=t.id, reported_on=on, phase=phase, status=ProgressStatus.ON_TRACK)


def end(t: Trajectory, on: date, outcome=Outcome.PAID_WORK, **details) -> EndTrajectory:
    if outcome == Outcome.PAID_WORK and not details:
        details = {"contract_type": ContractType.PERMANENT, "hours_band": HoursBand.FROM_32}
    return EndTrajectory(referral_id=t.id, end_date=on, outcome=outcome, **details)


def refused(action) -> list[ReasonCode]:
    with pytest.raises(Refusal) as caught:
        action()
    return [r.code for r in caught.value.reasons]


def test_a_commission_makes_a_trajectory_waiting_for_its_start_with_a_deterministic_id():
    event = a_commission()
    t = Trajectory.commission(event, SUBJECT)
    assert t.status == TrajectoryStatus.COMMISSIONED and t.id == event.referral_id
    assert t.trajectory_id == trajectory_id_for(event.referral_id, event.quote_id)
    assert t.pop_events() == []


def test_the_same_commission_again_changes_nothing_and_another_quote_is_refused():
    event = a_commission()
    t = Trajectory.commission(event, SUBJECT)
    t.commissioned_again(event)
    assert refused(lambda: t.commissioned_again(a_commission(event.referral_id))) == [ReasonCode.INVALID_TRANSITION]


def test_starting_sends_the_start_with_the_planned_end_to_werksaam():
    t = commissioned()
    t.start(START)
    [out] = t.pop_events()
    assert isinstance(out.data, TrajectoryStarted) and out.subject == SUBJECT
    assert out.data.start_date == START and out.data.planned_end == date(2027, 8, 2)
    assert out.data.quote_id == t.quote_id and out.data.trajectory_id == t.trajectory_id
    assert t.status == TrajectoryStatus.RUNNING


def test_a_second_start_is_refused():
    t = started()
    assert refused(lambda: t.start(START)) == [ReasonCode.TRAJECTORY_ALREADY_STARTED]


def test_progress_before_the_start_is_refused():
    t = commissioned()
    assert refused(lambda: t.report_progress(progress(t, START))) == [ReasonCode.TRAJECTORY_NOT_STARTED]


def test_progress_dated_before_the_start_or_before_the_last_report_is_refused():
    t = started()
    assert refused(lambda: t.report_progress(progress(t, date(2027, 1, 31)))) == [ReasonCode.DATE_BEFORE_START]
    t.report_progress(progress(t, date(2027, 3, 1)))
    assert refused(lambda: t.report_progress(progress(t, date(2027, 2, 20)))) == [ReasonCode.DATE_OUT_OF_ORDER]


def test_progress_reports_are_numbered_and_carry_only_date_phase_and_status():
    t = started()
    t.report_progress(progress(t, date(2027, 3, 1)))
    t.report_progress(progress(t, date(2027, 4, 1), Phase.JOB_SEARCH))
    events = [o.data for o in t.pop_events()]
    assert [e.sequence for e in events] == [1, 2]
    assert set(TrajectoryProgressed.model_fields) == {"referral_id", "trajectory_id", "sequence", "reported_on",
                                                      "phase", "status"}


def test_ending_sends_the_outcome_and_a_second_end_is_refused():
    t = started()
    t.end(end(t, date(2027, 7, 1)))
    [out] = t.pop_events()
    assert isinstance(out.data, TrajectoryEnded) and out.data.outcome == Outcome.PAID_WORK
    assert t.status == TrajectoryStatus.ENDED
    assert refused(lambda: t.end(end(t, date(2027, 7, 2)))) == [ReasonCode.TRAJECTORY_ENDED]


def test_an_end_before_the_start_is_refused():
    t = started()
    assert refused(lambda: t.end(end(t, date(2027, 1, 15)))) == [ReasonCode.DATE_BEFORE_START]


def test_no_end_before_the_start_and_no_progress_after_the_end():
    t = commissioned()
    assert refused(lambda: t.end(end(t, START))) == [ReasonCode.TRAJECTORY_NOT_STARTED]
    t.start(START)
    t.end(end(t, date(2027, 5, 1), Outcome.EDUCATION))
    assert refused(lambda: t.report_progress(progress(t, date(2027, 5, 2)))) == [ReasonCode.TRAJECTORY_ENDED]


@pytest.mark.parametrize(("outcome", "details", "wrong"), [
    (Outcome.PAID_WORK, {}, ["contract_type", "hours_band"]),
    (Outcome.PAID_WORK, {"contract_type": ContractType.PERMANENT}, ["hours_band"]),
    (Outcome.STOPPED_EARLY, {}, ["stop_reason"]),
    (Outcome.EDUCATION, {"stop_reason": StopReason.OTHER}, ["stop_reason"]),
    (Outcome.OTHER_PROVISION, {"hours_band": HoursBand.UNDER_12}, ["hours_band"]),
])
def test_outcome_details_must_fit_the_outcome(outcome, details, wrong):
    t = started()
    cmd = EndTrajectory(referral_id=t.id, end_date=date(2027, 6, 1), outcome=outcome, **details)
    with pytest.raises(Refusal) as caught:
        t.end(cmd)
    assert {r.code for r in caught.value.reasons} == {ReasonCode.OUTCOME_DETAILS_INVALID}
    assert [r.field for r in caught.value.reasons] == wrong
    with pytest.raises(ValidationError):  # and the contract refuses the same on the wire
        TrajectoryEnded(referral_id=t.id, trajectory_id=t.trajectory_id, end_date=date(2027, 6, 1),
                        outcome=outcome, **details)


def test_the_end_carries_codes_only_no_free_text():
    for name, info in TrajectoryEnded.model_fields.items():
        assert info.annotation is not str, name
