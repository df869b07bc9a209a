"""WerkSaam's side of steps 4-9 (intake): the trajectory registered from Heliomare's messages only as they
follow from what WerkSaam has seen (a message overtaking the start waits: NotYet), contradictions refused
at once, and invoices never above the approved amount."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.intake.domain import Referral, ReferralStatus
from shared.contracts.events import (
    ContractType,
    HoursBand,
    InvoiceBasis,
    InvoiceIssued,
    InvoiceMoment,
    Outcome,
    Phase,
    ProgressStatus,
    TrajectoryEnded,
    TrajectoryProgressed,
    TrajectoryStarted,
    vat_of,
)
from shared.contracts.reasons import ReasonCode, Refusal
from shared.domain import NotYet
from tests.unit.test_intake_domain import registered, with_quote

START = date(2027, 2, 1)
TRAJECTORY = uuid.uuid4()


def running(amount: str = "4800.00", end: bool = True) -> tuple[Referral, uuid.UUID]:
    r, q = approved(amount)
    r.trajectory_started(started(r, q))
    if end:
        r.trajectory_ended(ended(r, date(2027, 7, 1)))
    return r, q


def approved(amount: str = "4800.00") -> tuple[Referral, uuid.UUID]:
    referral, quote = with_quote(registered(), amount=amount)
    referral.decide_quote(quote.quote_id, approve=True, reason=None)
    referral.pop_events()
    return referral, quote.quote_id


def started(r: Referral, quote_id, on: date = START) -> TrajectoryStarted:
    return TrajectoryStarted(referral_id=r.id, trajectory_id=TRAJECTORY, quote_id=quote_id, start_date=on,
                             planned_end=on + timedelta(weeks=26))


def progressed(r: Referral, sequence: int, on: date) -> TrajectoryProgressed:
    return TrajectoryProgressed(referral_id=r.id, trajectory_id=TRAJECTORY, sequence=sequence, reported_on=on,
                                phase=Phase.TRAINING, status=ProgressStatus.ON_TRACK)


def ended(r: Referral, on: date) -> TrajectoryEnded:
    return TrajectoryEnded(referral_id=r.id, trajectory_id=TRAJECTORY, end_date=on, outcome=Outcome.PAID_WORK,
                           contract_type=ContractType.PERMANENT, hours_band=HoursBand.FROM_24_TO_32)


def invoice(r: Referral, quote_id, amount: str, number: str = "2027-000001", moment=InvoiceMoment.ADVANCE):
    a = Decimal(amount)
    vat = vat_of(a, Decimal("0.21"))
    return InvoiceIssued(referral_id=r.id, trajectory_id=TRAJECTORY, quote_id=quote_id, invoice_id=uuid.uuid4(),
                         invoice_number=number, invoice_date=START, moment=moment, basis=InvoiceBasis.SCHEDULE,
                         amount_excl_vat=a, vat_rate=Decimal("0.21"), vat_amount=vat, total=a + vat)


def codes(action) -> list[ReasonCode]:
    with pytest.raises(Refusal) as caught:
        action()
    return [r.code for r in caught.value.reasons]


def test_start_progress_and_end_are_registered_on_the_referral():
    r, q = approved()
    r.trajectory_started(started(r, q))
    assert r.status == ReferralStatus.TRAJECTORY_RUNNING
    r.trajectory_progressed(progressed(r, 1, date(2027, 3, 1)))
    r.trajectory_ended(ended(r, date(2027, 7, 1)))
    assert r.status == ReferralStatus.TRAJECTORY_ENDED
    view = r.view()["trajectory"]
    assert view["start_date"] == "2027-02-01" and view["outcome"] == "paid_work" and len(view["progress"]) == 1


def not_yet(action) -> list[ReasonCode]:
    with pytest.raises(NotYet) as caught:
        action()
    return [r.code for r in caught.value.reasons]


def test_progress_and_end_before_the_start_do_not_follow_yet_and_change_nothing():
    r, _ = approved()
    before = r.model_dump()
    assert not_yet(lambda: r.trajectory_ended(ended(r, date(2027, 7, 1)))) == [ReasonCode.TRAJECTORY_NOT_STARTED]
    assert not_yet(lambda: r.trajectory_progressed(progressed(r, 1, date(2027, 3, 1)))) == [
        ReasonCode.TRAJECTORY_NOT_STARTED]
    assert r.model_dump() == before


def test_the_end_that_waited_for_its_start_is_taken_once_the_start_arrived():
    r, q = approved()
    with pytest.raises(NotYet):
        r.trajectory_ended(ended(r, date(2027, 7, 1)))
    r.trajectory_started(started(r, q))
    r.trajectory_ended(ended(r, date(2027, 7, 1)))
    assert r.status == ReferralStatus.TRAJECTORY_ENDED and r.trajectory.trajectory_id == TRAJECTORY


def test_a_message_about_another_trajectory_than_the_one_started_is_refused_at_once():
    r, q = approved()
    r.trajectory_started(started(r, q))
    other = uuid.uuid4()
    end = ended(r, date(2027, 7, 1)).model_copy(update={"trajectory_id": other})
    progress = progressed(r, 1, date(2027, 3, 1)).model_copy(update={"trajectory_id": other})
    bill = invoice(r, q, "100.00").model_copy(update={"trajectory_id": other})
    for action in (lambda: r.trajectory_ended(end), lambda: r.trajectory_progressed(progress),
                   lambda: r.invoice_received(bill)):
        with pytest.raises(Refusal) as caught:
            action()
        assert not isinstance(caught.value, NotYet)
        assert [x.code for x in caught.value.reasons] == [ReasonCode.UNKNOWN_TRAJECTORY]
    second_start = started(r, q).model_copy(update={"trajectory_id": other})
    assert codes(lambda: r.trajectory_started(second_start)) == [ReasonCode.UNKNOWN_TRAJECTORY]
    assert r.trajectory.trajectory_id == TRAJECTORY and r.trajectory.end_date is None


def test_a_trajectory_starting_before_its_referral_is_refused():
    r, q = approved()
    assert codes(lambda: r.trajectory_started(started(r, q, on=r.submitted_at.date() - timedelta(days=1)))) == [
        ReasonCode.DATE_BEFORE_REFERRAL]
    assert r.trajectory is None


def test_an_invoice_before_the_start_or_afterwards_before_the_end_does_not_follow_yet():
    r, q = approved()
    assert not_yet(lambda: r.invoice_received(invoice(r, q, "100.00"))) == [ReasonCode.TRAJECTORY_NOT_STARTED]
    r.trajectory_started(started(r, q))
    afterwards = invoice(r, q, "100.00", moment=InvoiceMoment.AFTERWARDS)
    assert not_yet(lambda: r.invoice_received(afterwards)) == [ReasonCode.INVALID_TRANSITION]
    assert r.invoices == []


def test_no_trajectory_without_an_approved_quote():
    referral, quote = with_quote()
    assert codes(lambda: referral.trajectory_started(started(referral, quote.quote_id))) == [
        ReasonCode.NO_APPROVED_QUOTE]
    assert codes(lambda: referral.trajectory_progressed(progressed(referral, 1, START))) == [
        ReasonCode.NO_APPROVED_QUOTE]


def test_a_start_on_another_quote_is_refused():
    r, _ = approved()
    assert codes(lambda: r.trajectory_started(started(r, uuid.uuid4()))) == [ReasonCode.UNKNOWN_QUOTE]


def test_an_end_before_the_start_is_refused():
    r, q = approved()
    r.trajectory_started(started(r, q))
    assert codes(lambda: r.trajectory_ended(ended(r, START - timedelta(days=1)))) == [ReasonCode.DATE_BEFORE_START]


def test_progress_after_the_end_a_second_end_and_a_second_start_are_refused():
    r, q = approved()
    r.trajectory_started(started(r, q))
    r.trajectory_ended(ended(r, date(2027, 7, 1)))
    assert codes(lambda: r.trajectory_progressed(progressed(r, 1, date(2027, 7, 2)))) == [ReasonCode.TRAJECTORY_ENDED]
    assert codes(lambda: r.trajectory_ended(ended(r, date(2027, 7, 3)))) == [ReasonCode.TRAJECTORY_ENDED]
    assert codes(lambda: r.trajectory_started(started(r, q, on=START + timedelta(days=1)))) == [
        ReasonCode.TRAJECTORY_ALREADY_STARTED]


def test_the_same_message_content_again_changes_nothing():
    r, q = approved()
    for _ in range(2):
        r.trajectory_started(started(r, q))
        r.trajectory_progressed(progressed(r, 1, date(2027, 3, 1)))
        r.trajectory_ended(ended(r, date(2027, 7, 1)))
    assert len(r.trajectory.progress) == 1


def test_invoices_are_accepted_up_to_the_approved_amount_and_never_beyond():
    r, q = running("4800.00")
    r.invoice_received(invoice(r, q, "1920.00"))
    r.invoice_received(invoice(r, q, "2880.00", "2027-000002", InvoiceMoment.AFTERWARDS))
    assert r.invoiced_total() == Decimal("4800.00")
    assert codes(lambda: r.invoice_received(invoice(r, q, "0.01", "2027-000003"))) == [
        ReasonCode.INVOICE_EXCEEDS_APPROVED]
    assert r.invoiced_total() == Decimal("4800.00")


def test_one_invoice_above_the_approved_amount_is_refused():
    r, q = running("4800.00")
    assert codes(lambda: r.invoice_received(invoice(r, q, "4800.01"))) == [ReasonCode.INVOICE_EXCEEDS_APPROVED]
    assert r.invoices == []


def test_an_invoice_number_used_twice_for_different_invoices_is_refused_and_the_same_invoice_twice_is_kept_once():
    r, q = running()
    first = invoice(r, q, "1000.00")
    r.invoice_received(first)
    r.invoice_received(first)
    assert len(r.invoices) == 1
    assert codes(lambda: r.invoice_received(invoice(r, q, "500.00"))) == [ReasonCode.DUPLICATE_INVOICE]


def test_an_invoice_for_another_quote_or_without_approval_is_refused():
    r, _ = running()
    assert codes(lambda: r.invoice_received(invoice(r, uuid.uuid4(), "100.00"))) == [ReasonCode.UNKNOWN_QUOTE]
    referral, quote = with_quote()
    assert codes(lambda: referral.invoice_received(invoice(referral, quote.quote_id, "100.00"))) == [
        ReasonCode.NO_APPROVED_QUOTE]
