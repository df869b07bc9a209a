"""Billing (art 7): invoice orders and invoices from the approved quote's schedule, gap-free numbers per
year, never more than approved, no second invoice for a duplicate, and the early-stop settlement."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError

from services.billing.bootstrap import definition as billing_definition
from services.billing.domain import Account, InvoiceCounter, early_stop_settlement
from services.trajectory.domain import trajectory_id_for
from shared.config import Settings
from shared.contracts.events import (
    ContractType,
    HoursBand,
    InvoiceBasis,
    InvoiceIssued,
    InvoiceMoment,
    InvoiceTranche,
    Outcome,
    StopReason,
    TrajectoryEnded,
    TrajectoryStarted,
    vat_of,
)
from shared.contracts.parties import Party
from shared.contracts.reasons import ReasonCode, Refusal
from shared.domain import NotYet
from shared.messaging.pipeline import Pipeline
from shared.storage.memory import MemoryStore
from tests.unit.builders import an_envelope, raw_of
from tests.unit.fakes import RecordingDeadLetters
from tests.unit.test_trajectory_domain import a_commission

SUBJECT = "psn_" + "b" * 26
START = date(2027, 2, 1)
A, F = InvoiceMoment.ADVANCE, InvoiceMoment.AFTERWARDS


def tranches(*parts: tuple[InvoiceMoment, str]) -> list[InvoiceTranche]:
    return [InvoiceTranche(moment=m, amount=Decimal(a)) for m, a in parts]


def commission_with(*parts, referral_id=None, weeks=26):
    amount = str(sum(Decimal(a) for _, a in parts))
    return a_commission(referral_id, amount, invoicing=tranches(*parts), duration_weeks=weeks)


def start_of(c) -> TrajectoryStarted:
    return TrajectoryStarted(referral_id=c.referral_id, trajectory_id=trajectory_id_for(c.referral_id, c.quote_id),
                             quote_id=c.quote_id, start_date=START, planned_end=START + timedelta(weeks=26))


def end_of(c, on: date = date(2027, 8, 2), outcome=Outcome.PAID_WORK) -> TrajectoryEnded:
    details = ({"contract_type": ContractType.FIXED_TERM, "hours_band": HoursBand.FROM_12_TO_24}
               if outcome == Outcome.PAID_WORK else
               {"stop_reason": StopReason.MOVED_AWAY} if outcome == Outcome.STOPPED_EARLY else {})
    return TrajectoryEnded(referral_id=c.referral_id, trajectory_id=trajectory_id_for(c.referral_id, c.quote_id),
                           end_date=on, outcome=outcome, **details)


def invoice_all(account: Account, counter: InvoiceCounter, rate=Decimal("0.21")) -> list:
    account.draw_up_orders()
    return [account.issue(order, counter.take(), rate) for order in account.pending_orders()]


# -- the schedule decides ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("parts", "at_start", "at_end"), [
    (((A, "4800.00"),), ["4800.00"], []),  # wholly in advance
    (((F, "4800.00"),), [], ["4800.00"]),  # wholly afterwards
    (((A, "1920.00"), (F, "2880.00")), ["1920.00"], ["2880.00"]),  # partly both
    (((A, "1000.00"), (A, "500.00"), (F, "3300.00")), ["1500.00"], ["3300.00"]),  # tranches per moment add up
])
def test_the_schedule_decides_what_is_invoiced_at_the_start_and_at_the_end(parts, at_start, at_end):
    c = commission_with(*parts)
    account, counter = Account.open(c.referral_id, SUBJECT), InvoiceCounter.for_year(2027)
    account.commissioned(c)
    account.started(start_of(c))
    assert [str(i.amount_excl_vat) for i in invoice_all(account, counter)] == at_start
    account.ended(end_of(c))
    assert [str(i.amount_excl_vat) for i in invoice_all(account, counter)] == at_end
    assert account.invoiced_total() == c.approved_amount


def test_each_invoice_is_first_a_registered_order_with_date_vat_total_and_references():
    c = commission_with((A, "1999.99"), (F, "1000.01"))
    account, counter = Account.open(c.referral_id, SUBJECT), InvoiceCounter.for_year(2027)
    account.commissioned(c)
    account.started(start_of(c))
    [order] = account.draw_up_orders()
    assert order.invoice_id is None and account.pending_orders() == [order]
    invoice = account.issue(order, counter.take(), Decimal("0.21"))
    assert account.orders[0].invoice_id == invoice.invoice_id and account.pending_orders() == []
    assert (invoice.number, invoice.invoice_date) == ("2027-000001", START)
    assert invoice.vat_amount == Decimal("420.00")  # 419.9979 rounded half up
    assert invoice.total == Decimal("2419.99")
    [out] = account.pop_events()
    assert isinstance(out.data, InvoiceIssued) and out.subject == SUBJECT
    assert out.data.quote_id == c.quote_id and out.data.trajectory_id == start_of(c).trajectory_id
    assert out.data.currency == "EUR" and out.data.basis == InvoiceBasis.SCHEDULE


@pytest.mark.parametrize(("amount", "rate", "vat"), [
    ("0.50", "0.21", "0.11"),  # 0.105 -> half up
    ("10.00", "0.09", "0.90"),
    ("4800.00", "0", "0.00"),  # a provider exempt from VAT
    ("0.02", "0.21", "0.00"),  # 0.0042
])
def test_vat_is_rounded_half_up_to_the_cent(amount, rate, vat):
    assert vat_of(Decimal(amount), Decimal(rate)) == Decimal(vat)


def test_the_vat_rate_is_a_setting_with_21_percent_as_default():
    assert Settings().vat_rate == Decimal("0.21")
    assert Settings(WERKBRUG_VAT_RATE="0").vat_rate == Decimal("0")


# -- order does not matter; contradictions do ---------------------------------------------------------------


def test_facts_arriving_in_any_order_give_the_same_invoices_once_each_follows_from_what_came_before():
    """A fact that overtook what it follows from does not follow YET; the pipeline tries it again later."""
    c = commission_with((A, "2000.00"), (F, "3000.00"))
    results = []
    for order in (("c", "s", "e"), ("e", "s", "c"), ("s", "e", "c"), ("e", "c", "s")):
        account, counter = Account.open(c.referral_id, SUBJECT), InvoiceCounter.for_year(2027)
        steps = {"c": (account.commissioned, c), "s": (account.started, start_of(c)),
                 "e": (account.ended, end_of(c))}
        waiting = list(order)
        while waiting:
            step = waiting.pop(0)
            apply, fact = steps[step]
            try:
                apply(fact)
            except NotYet:
                waiting.append(step)  # redelivered later
            invoice_all(account, counter)
        results.append(sorted((str(i.moment), str(i.amount_excl_vat)) for i in account.invoices))
    assert all(r == results[0] for r in results) and len(results[0]) == 2


def test_a_start_before_the_commission_and_an_end_before_the_start_do_not_follow_yet():
    c = commission_with((A, "2000.00"), (F, "3000.00"))
    account = Account.open(c.referral_id, SUBJECT)
    with pytest.raises(NotYet) as caught:
        account.started(start_of(c))
    assert [r.code for r in caught.value.reasons] == [ReasonCode.NO_APPROVED_QUOTE]
    with pytest.raises(NotYet) as caught:
        account.ended(end_of(c))
    assert [r.code for r in caught.value.reasons] == [ReasonCode.TRAJECTORY_NOT_STARTED]
    assert account.start is None and account.end is None and account.draw_up_orders() == []
    account.commissioned(c)
    account.started(start_of(c))
    account.ended(end_of(c))
    assert [o.moment for o in account.draw_up_orders()] == [A, F]


def test_an_end_of_another_trajectory_than_the_one_started_is_refused_at_once():
    c = commission_with((F, "2000.00"))
    account = Account.open(c.referral_id, SUBJECT)
    account.commissioned(c)
    account.started(start_of(c))
    with pytest.raises(Refusal) as caught:
        account.ended(end_of(c).model_copy(update={"trajectory_id": uuid.uuid4()}))
    assert not isinstance(caught.value, NotYet)
    assert [r.code for r in caught.value.reasons] == [ReasonCode.UNKNOWN_TRAJECTORY]
    assert account.end is None


def test_a_start_on_another_quote_and_a_second_different_end_are_refused():
    c = commission_with((A, "2000.00"))
    account = Account.open(c.referral_id, SUBJECT)
    account.commissioned(c)
    other = start_of(c).model_copy(update={"quote_id": uuid.uuid4()})
    with pytest.raises(Refusal) as caught:
        account.started(other)
    assert caught.value.reasons[0].code == ReasonCode.UNKNOWN_QUOTE
    account.started(start_of(c))
    account.ended(end_of(c))
    with pytest.raises(Refusal) as caught:
        account.ended(end_of(c, on=date(2027, 9, 1)))
    assert caught.value.reasons[0].code == ReasonCode.TRAJECTORY_ENDED


def test_an_end_before_the_start_is_refused():
    c = commission_with((F, "2000.00"))
    account = Account.open(c.referral_id, SUBJECT)
    account.commissioned(c)
    account.started(start_of(c))
    with pytest.raises(Refusal) as caught:
        account.ended(end_of(c, on=start_of(c).start_date - timedelta(days=1)))
    assert caught.value.reasons[0].code == ReasonCode.DATE_BEFORE_START


# -- invariant: never more than approved ---------------------------------------------------------------------


def test_an_invoice_order_above_the_approved_amount_is_refused():
    c = commission_with((A, "2000.00"), (F, "3000.00"))
    account = Account.open(c.referral_id, SUBJECT)
    account.commissioned(c)
    account.started(start_of(c))
    account.draw_up_orders()
    with pytest.raises(Refusal) as caught:
        account.register_order(F, InvoiceBasis.SCHEDULE, Decimal("3000.01"), date(2027, 8, 2))
    assert caught.value.reasons[0].code == ReasonCode.INVOICE_EXCEEDS_APPROVED
    assert account.ordered_total() == Decimal("2000.00")


@pytest.mark.parametrize("amount", ["-1.00", "0.00", "10.001"])
def test_a_negative_zero_or_sub_cent_invoice_order_is_refused(amount):
    c = commission_with((F, "2000.00"))
    account = Account.open(c.referral_id, SUBJECT)
    account.commissioned(c)
    with pytest.raises(Refusal) as caught:
        account.register_order(F, InvoiceBasis.SCHEDULE, Decimal(amount), date(2027, 8, 2))
    assert caught.value.reasons[0].code == ReasonCode.INVALID_VALUE


@pytest.mark.parametrize("bad", [{"amount_excl_vat": "-100.00"}, {"amount_excl_vat": "999999999.00"},
                                 {"currency": "USD"}, {"vat_amount": "84.001"}, {"total": "1.00"}])
def test_the_invoice_contract_refuses_negative_absurd_foreign_or_inexact_amounts(bad):
    good = dict(referral_id=uuid.uuid4(), trajectory_id=uuid.uuid4(), quote_id=uuid.uuid4(), invoice_id=uuid.uuid4(),
                invoice_number="2027-000001", invoice_date=START, moment=A, basis=InvoiceBasis.SCHEDULE,
                amount_excl_vat=Decimal("400.00"), vat_rate=Decimal("0.21"), vat_amount=Decimal("84.00"),
                total=Decimal("484.00"))
    InvoiceIssued(**good)
    with pytest.raises(ValidationError):
        InvoiceIssued.model_validate({**good, **bad})


# -- the early-stop rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("afterwards", "days", "weeks", "expected"), [
    ("2600.00", 91, 26, "1300.00"),  # half the planned duration ran: half the afterwards part
    ("1000.00", 1, 13, "10.99"),  # 1/91 = 10.989... rounded half up
    ("1000.00", 0, 13, "0.00"),  # stopped on the first day: the advance only
    ("1000.00", 400, 13, "1000.00"),  # ran longer than planned: capped at the afterwards part
])
def test_a_trajectory_stopped_early_is_settled_pro_rata_by_duration_capped(afterwards, days, weeks, expected):
    assert early_stop_settlement(Decimal(afterwards), START, START + timedelta(days=days), weeks) == Decimal(expected)


def test_stopped_early_the_advance_stands_and_the_afterwards_part_is_pro_rata():
    c = commission_with((A, "1000.00"), (F, "2600.00"))
    account, counter = Account.open(c.referral_id, SUBJECT), InvoiceCounter.for_year(2027)
    account.commissioned(c)
    account.started(start_of(c))
    account.ended(end_of(c, on=START + timedelta(weeks=13), outcome=Outcome.STOPPED_EARLY))
    invoices = invoice_all(account, counter)
    assert [(i.moment, i.basis, i.amount_excl_vat) for i in invoices] == [
        (A, InvoiceBasis.SCHEDULE, Decimal("1000.00")), (F, InvoiceBasis.EARLY_STOP, Decimal("1300.00"))]
    assert account.invoiced_total() <= c.approved_amount


# -- duplicates and numbering through the pipeline (the unit of work makes it one transaction) ------------------


class Billing:
    def __init__(self) -> None:
        d = billing_definition(Settings())
        self.store = MemoryStore(d.party, d.repositories)
        self.pipeline = Pipeline(d, self.store.unit_of_work, RecordingDeadLetters(),
                                 TracerProvider().get_tracer("t"), 64 * 1024)

    async def deliver(self, data, envelope=None):
        envelope = envelope or an_envelope(data, Party.HELIOMARE, subject=SUBJECT)
        return await self.pipeline.handle_event(raw_of(envelope)), envelope

    def invoices(self) -> list[InvoiceIssued]:
        return [InvoiceIssued.model_validate(e.data) for e in self.store.outbox_of("invoice.issued")]

    def counter(self, year=2027) -> int:
        counter = self.store.rows["counters"].get(InvoiceCounter.id_for(year))
        return counter.last if counter else 0


async def test_a_redelivered_event_creates_no_second_invoice_and_burns_no_number():
    billing = Billing()
    c = commission_with((A, "2000.00"), (F, "3000.00"))
    await billing.deliver(c)
    outcome, envelope = await billing.deliver(start_of(c))
    assert outcome.status == "accepted"
    again, _ = await billing.deliver(start_of(c), envelope)  # the broker delivers the same message again
    assert again.status == "duplicate"
    assert [i.invoice_number for i in billing.invoices()] == ["2027-000001"] and billing.counter() == 1


async def test_a_duplicated_event_with_a_new_id_creates_no_second_invoice_and_burns_no_number():
    billing = Billing()
    c = commission_with((A, "2000.00"), (F, "3000.00"))
    for data in (c, start_of(c), start_of(c), c, end_of(c), end_of(c)):
        outcome, _ = await billing.deliver(data)
        assert outcome.status == "accepted"
    assert [(i.invoice_number, i.moment) for i in billing.invoices()] == [("2027-000001", A), ("2027-000002", F)]
    assert billing.counter() == 2


async def test_numbers_are_gap_free_per_year_across_trajectories_and_a_refusal_uses_none():
    billing = Billing()
    first, second = commission_with((A, "1000.00"), (F, "1000.00")), commission_with((F, "800.00"))
    for data in (first, second, start_of(first), start_of(second)):
        await billing.deliver(data)
    conflicting = end_of(second, on=date(2027, 1, 1))  # before the start: refused, nothing invoiced
    assert (await billing.deliver(conflicting))[0].status == "rejected"
    for data in (end_of(first), end_of(second, on=date(2028, 1, 10))):
        await billing.deliver(data)
    numbers = [i.invoice_number for i in billing.invoices()]
    assert numbers == ["2027-000001", "2027-000002", "2028-000001"]
    assert (billing.counter(2027), billing.counter(2028)) == (2, 1)
    total = {c.referral_id: sum((i.amount_excl_vat for i in billing.invoices() if i.referral_id == c.referral_id),
                                Decimal(0)) for c in (first, second)}
    assert total == {first.referral_id: Decimal("2000.00"), second.referral_id: Decimal("800.00")}


async def test_the_invoices_of_one_referral_are_its_trajectorys_alone_and_the_read_names_only_its_person():
    from shared.contracts.commands import ListInvoices
    from tests.staff import TEST_STAFF

    d = billing_definition(Settings())
    store = MemoryStore(d.party, d.repositories)
    pipeline = Pipeline(d, store.unit_of_work, RecordingDeadLetters(), TracerProvider().get_tracer("t"), 64 * 1024,
                        staff=TEST_STAFF[Party.HELIOMARE])
    other_subject = "psn_" + "c" * 26
    first, second = commission_with((A, "1000.00"), (F, "1000.00")), commission_with((A, "800.00"))
    for data, subject in ((first, SUBJECT), (start_of(first), SUBJECT), (second, other_subject),
                          (start_of(second), other_subject), (end_of(first), SUBJECT)):  # numbers interleave
        outcome = await pipeline.handle_event(raw_of(an_envelope(data, Party.HELIOMARE, subject=subject)))
        assert outcome.status == "accepted"

    async def listed(referral_id) -> list[dict]:
        query = ListInvoices(referral_id=referral_id, actor="fin.heliomare")
        answer = await pipeline.handle_command(query.model_dump_json().encode(), user_id=Party.HELIOMARE.value)
        assert answer["ok"], answer
        return answer["result"]

    rows = await listed(first.referral_id)
    assert [(r["number"], r["moment"]) for r in rows] == [("2027-000001", "advance"), ("2027-000003", "afterwards")]
    assert {(r["referral_id"], r["trajectory_id"]) for r in rows} == {
        (str(first.referral_id), str(trajectory_id_for(first.referral_id, first.quote_id)))}
    [read] = [r for r in store.processing_log if r.message_type == "query:list_invoices"]
    assert read.subject == SUBJECT, "the processing log names the one person whose invoices were read"
    assert await listed(uuid.uuid4()) == []
    assert len(await listed(None)) == 3
