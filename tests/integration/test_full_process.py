"""The whole of Bijlage 2 over the real broker: referral, quote (rejected, then a new one), approval,
trajectory start, progress and end, invoices in advance and/or afterwards, a trajectory stopped early,
and the yearly report; with the invariants of art 7 asserted, and bad input refused with reason codes
while nothing accepted is lost."""

from __future__ import annotations

import json
import logging
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from dev.scenario import (
    REPORT_YEAR,
    Case,
    TrajectoryPlan,
    expected_invoices,
    play,
    play_all,
    synthetic_cases,
    until_status,
)
from services.billing.domain import early_stop_settlement
from shared.contracts.commands import (
    EndTrajectory,
    GetReferral,
    GetReport,
    ListInvoices,
    PublishReport,
    ReportProgress,
    StartTrajectory,
)
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    InvoiceBasis,
    InvoiceIssued,
    InvoiceMoment,
    Outcome,
    Phase,
    ProgressStatus,
    QuoteKind,
    QuoteSent,
    Retour,
    TrajectoryEnded,
    TrajectoryProgressed,
    vat_of,
)
from shared.contracts.parties import Party
from shared.logs import hold_payload_loggers
from tests.harness import wait_for
from tests.integration.test_bad_input import Spy, publish, recorded_reasons, spying_on

pytestmark = pytest.mark.integration

YEAR = REPORT_YEAR  # next year: every start follows its referral, made today
START = date(YEAR, 3, 1)
BRANCHES = [  # (quote plan, schedule, ending): every branch of Bijlage 2
    ("approve", "advance_only", "paid_work"),
    ("approve", "afterwards_only", "education"),
    ("approve", "both", "other_provision"),
    ("reject_then_approve", "both", "paid_work"),
    ("approve", "both", "stopped_early"),
    ("approve", "afterwards_only", "stopped_early"),
    ("decline", "both", "paid_work"),
]


async def view(client, service: str, referral_id) -> dict:
    return (await client.send(service, GetReferral(referral_id=uuid.UUID(str(referral_id)),
                                                   detail=True))).result or {}


def cases_for(branches, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for i, (plan, schedule, ending) in enumerate(branches):
        [case] = synthetic_cases(rng, 1)
        case.plan = plan
        case.trajectory = TrajectoryPlan(schedule=schedule, ending=ending, start=START + timedelta(weeks=i),
                                         weeks_run=7 if ending == "stopped_early" else 14)
        cases.append(case)
    return cases


async def test_every_branch_of_the_process_runs_to_its_end_and_the_last_invoice(services, client, span_exporter,
                                                                               caplog):
    caplog.set_level(logging.DEBUG)
    hold_payload_loggers()
    cases = await play_all(client, cases_for(BRANCHES, seed=3), seed=3, concurrency=7)

    for case in cases:
        rid, plan = case.referral_id, case.trajectory
        intake, billing = await view(client, "intake", rid), await view(client, "billing", rid)
        if case.plan == "decline":
            assert case.outcome == "declined" and billing == {}
            continue
        assert case.outcome == "trajectory_ended", (case.plan, plan)
        approved = Decimal(intake["approved_amount"])
        invoices = billing["invoices"]
        assert len(invoices) == expected_invoices(plan)
        amounts = {i["moment"]: Decimal(i["amount_excl_vat"]) for i in invoices}
        invoiced = sum(amounts.values(), Decimal(0))
        # art 7.2: never more than approved; WerkSaam's books agree with Heliomare's
        assert invoiced <= approved
        assert Decimal(intake["invoiced_total"]) == invoiced == Decimal(billing["invoiced_total"])
        assert sorted(i["number"] for i in intake["invoices"]) == sorted(i["number"] for i in invoices)
        for i in invoices:
            assert Decimal(i["vat_amount"]) == vat_of(Decimal(i["amount_excl_vat"]), Decimal(i["vat_rate"]))
            assert Decimal(i["total"]) == Decimal(i["amount_excl_vat"]) + Decimal(i["vat_amount"])
        if plan.ending != "stopped_early":
            assert invoiced == approved  # a trajectory that ran its course is paid in full
        else:  # the early-stop rule: the advance stands, the afterwards part pro rata by duration
            advance = approved if plan.schedule == "advance_only" else (
                Decimal(0) if plan.schedule == "afterwards_only" else (approved * Decimal("0.4")).quantize(
                    Decimal("0.01")))
            quote = next(q for q in intake["quotes"] if q["decision"] == "approved")
            expected = advance + early_stop_settlement(approved - advance, plan.start,
                                                       plan.start + timedelta(weeks=plan.weeks_run),
                                                       quote["duration_weeks"])
            assert invoiced == expected < approved
            assert {i["basis"] for i in invoices if i["moment"] == "afterwards"} <= {"early_stop"}
        trajectory = intake["trajectory"]
        assert trajectory["outcome"] == plan.ending and trajectory["start_date"] == plan.start.isoformat()
        assert len(trajectory["progress"]) == 2
        if case.plan == "reject_then_approve":
            assert [q["decision"] for q in intake["quotes"]] == ["rejected", "approved"]

        async def answered(service, rid=rid):
            deliveries = (await view(client, service, rid))["deliveries"]
            return deliveries if all(d["retour"] for d in deliveries) else None

        for service in ("trajectory", "billing"):
            sent = await wait_for(lambda s=service: answered(s), within=60, what=f"retours for {service}")
            assert {d["retour"]["status"] for d in sent} == {"accepted"}
            assert {d["retour"]["from"] for d in sent} == {"werksaam"}

    # Invoice numbers are unique and gap-free in the year.
    numbers = [i["number"] for i in (await client.send("billing", ListInvoices(year=YEAR))).result]
    assert numbers == [f"{YEAR}-{n:06d}" for n in range(1, len(numbers) + 1)]

    # Trajectory and billing spans join the referral's trace, and nothing exported or logged names the person.
    for runtime in services.runtimes.values():
        runtime.tracer_provider.force_flush()
    spans = span_exporter.get_finished_spans()
    names = {s.name for s in spans if s.attributes.get("werkbrug.correlation_id") == cases[0].referral_id}
    assert {"trajectory command start_trajectory", "billing handle trajectory.started",
            "intake handle invoice.issued", "intake handle trajectory.ended"} <= names
    text = "\n".join(s.to_json() for s in spans) + "\n".join(r.getMessage() for r in caplog.records)
    leaks = [v for c in cases for v in (c.command.bsn, c.command.family_name, c.command.postal_code,
                                         c.command.date_of_birth.isoformat()) if v in text]
    assert not leaks, "personal data in spans or logs"


async def test_the_yearly_report_reaches_werksaam_without_personal_data(services, client):
    published = await client.send("trajectory", PublishReport(year=YEAR))
    assert published.ok, published.reasons

    async def received():
        answer = await client.send("intake", GetReport(year=YEAR))
        return answer.result if answer.ok and answer.result["report_id"] == published.result["report_id"] else None

    report = await wait_for(received, what="WerkSaam receives the report")
    assert report == published.result
    text = json.dumps(report)
    assert "psn_" not in text and "referral_id" not in text
    for table in report["tables"]:  # counts: integers, each rounded to a multiple of 5
        for row in table["rows"]:
            assert all(isinstance(v, int) and v % report["rounding_base"] == 0 for v in row["values"])
    for row in report["invoiced_amount"]["rows"]:  # money: decimal strings, rounded to EUR 5,000
        assert all(v is None or Decimal(v) % report["amount_step"] == 0 for v in row["values"])


# -- bad input ----------------------------------------------------------------------------------------------------


async def approved_case(client, seed: int) -> Case:
    """A synthetic referral taken to an approved quote (and its commission at trajectory)."""
    [case] = synthetic_cases(random.Random(seed), 1)
    case.trajectory = None
    case.command = case.command.model_copy(update={"requested_start": START})
    await play(client, case, random.Random(seed))
    assert case.outcome == "quote_approved"
    await until_status(client, "trajectory", case.referral_id, {"commissioned"})
    return case


async def approved_referral(client, seed: int, schedule: str = "both") -> tuple[str, str]:
    """A referral taken to an approved quote (and its commission at trajectory); its id and subject."""
    case = await approved_case(client, seed)
    return case.referral_id, (await view(client, "intake", case.referral_id))["subject"]


async def test_out_of_order_commands_are_refused_with_reason_codes(services, client):
    rid, _ = await approved_referral(client, seed=11)
    r = uuid.UUID(rid)
    unknown = await client.send("trajectory", StartTrajectory(referral_id=uuid.uuid4(), start_date=START))
    assert [x.code.value for x in unknown.reasons] == ["no_approved_quote"]
    early = await client.send("trajectory", ReportProgress(referral_id=r, reported_on=START, phase=Phase.TRAINING,
                                                           status=ProgressStatus.ON_TRACK))
    assert [x.code.value for x in early.reasons] == ["trajectory_not_started"]
    assert (await client.send("trajectory", StartTrajectory(referral_id=r, start_date=START))).ok
    again = await client.send("trajectory", StartTrajectory(referral_id=r, start_date=START))
    assert [x.code.value for x in again.reasons] == ["trajectory_already_started"]
    before = await client.send("trajectory", EndTrajectory(referral_id=r, end_date=START - timedelta(days=1),
                                                           outcome=Outcome.EDUCATION))
    assert [x.code.value for x in before.reasons] == ["date_before_start"]
    wrong = await client.send("trajectory", EndTrajectory(referral_id=r, end_date=START, outcome=Outcome.PAID_WORK))
    assert {x.code.value for x in wrong.reasons} == {"outcome_details_invalid"}
    assert (await client.send("trajectory", EndTrajectory(referral_id=r, end_date=START + timedelta(weeks=3),
                                                          outcome=Outcome.EDUCATION))).ok
    second = await client.send("trajectory", EndTrajectory(referral_id=r, end_date=START + timedelta(weeks=4),
                                                           outcome=Outcome.EDUCATION))
    assert [x.code.value for x in second.reasons] == ["trajectory_ended"]
    await until_status(client, "intake", rid, {"trajectory_ended"})
    after = await client.send("trajectory", ReportProgress(referral_id=r, reported_on=START + timedelta(weeks=5),
                                                           phase=Phase.AFTERCARE, status=ProgressStatus.ON_TRACK))
    assert [x.code.value for x in after.reasons] == ["trajectory_ended"]


@pytest.fixture
async def werksaam_spies(services, amqp, settings):
    async with spying_on(amqp, settings, "intake", "werksaam") as both:
        yield both


def heliomare(data, subject: str, referral_id: str) -> Envelope:
    """A message as a faulty or hostile Heliomare system might send it."""
    return Envelope.wrap(data, source=Party.HELIOMARE, recipient=Party.WERKSAAM,
                         subject=subject, correlation_id=uuid.UUID(referral_id))


def tampered(envelope: Envelope, **data) -> bytes:
    document = json.loads(envelope.model_dump_json())
    document["data"].update(data)
    return json.dumps(document).encode()


async def send(amqp, settings, envelope: Envelope, body: bytes | None = None) -> str:
    await publish(amqp, settings, body or envelope.model_dump_json().encode(), envelope.routing_key, str(envelope.id),
                  str(envelope.correlation_id))
    return str(envelope.id)


async def retour_for(retours: Spy, seen: list, message_id: str) -> Retour:
    async def found():
        for m in await retours.messages():
            seen.append(Retour.model_validate(json.loads(m.body)["data"]))
        return next((r for r in seen if str(r.about_event_id) == message_id), None)

    return await wait_for(found, what=f"the retour to {message_id}")


async def test_bad_trajectory_and_invoice_messages_are_refused_with_reasons_and_nothing_accepted_is_lost(
        services, client, amqp, settings, werksaam_spies):
    parking, retours = werksaam_spies
    seen: list[Retour] = []
    rid, subject = await approved_referral(client, seed=12)
    r = uuid.UUID(rid)
    assert (await client.send("trajectory", StartTrajectory(referral_id=r, start_date=START))).ok
    progress = ReportProgress(referral_id=r, reported_on=START + timedelta(weeks=1), phase=Phase.ORIENTATION,
                              status=ProgressStatus.ON_TRACK)
    assert (await client.send("trajectory", progress)).ok

    async def settled():
        v = await view(client, "intake", rid)
        return v if v.get("trajectory") and v["trajectory"]["progress"] and v["invoices"] else None

    before = await wait_for(settled, what="start, progress and the advance invoice at WerkSaam")
    trajectory = before["trajectory"]
    quote = next(q for q in before["quotes"] if q["decision"] == "approved")
    tid, qid = uuid.UUID(trajectory["trajectory_id"]), uuid.UUID(quote["quote_id"])
    approved = Decimal(before["approved_amount"])

    # An end before the start: answered with a rejection retour that says why.
    end = TrajectoryEnded(referral_id=r, trajectory_id=tid, end_date=START - timedelta(days=3),
                          outcome=Outcome.EDUCATION)
    retour = await retour_for(retours, seen, await send(amqp, settings, heliomare(end, subject, rid)))
    assert retour.status == "rejected" and [x.code.value for x in retour.reasons] == ["date_before_start"]

    # An invoice above the approved amount: refused by WerkSaam's own check.
    def an_invoice(amount: Decimal, number: str = f"{YEAR}-999001") -> InvoiceIssued:
        vat = vat_of(amount, Decimal("0.21"))
        return InvoiceIssued(referral_id=r, trajectory_id=tid, quote_id=qid, invoice_id=uuid.uuid4(),
                             invoice_number=number, invoice_date=START, moment=InvoiceMoment.AFTERWARDS,
                             basis=InvoiceBasis.SCHEDULE, amount_excl_vat=amount, vat_rate=Decimal("0.21"),
                             vat_amount=vat, total=amount + vat)

    too_much = heliomare(an_invoice(approved), subject, rid)  # the advance is invoiced already
    retour = await retour_for(retours, seen, await send(amqp, settings, too_much))
    assert retour.status == "rejected" and [x.code.value for x in retour.reasons] == ["invoice_exceeds_approved"]

    # A duplicate invoice number for another invoice.
    advance_number = before["invoices"][0]["number"]
    dup = heliomare(an_invoice(Decimal("1.00"), advance_number), subject, rid)
    retour = await retour_for(retours, seen, await send(amqp, settings, dup))
    assert [x.code.value for x in retour.reasons] == ["duplicate_invoice"]

    # Contract violations: dead-lettered with the reason, and answered.
    base = heliomare(an_invoice(Decimal("10.00")), subject, rid)
    bad_quote = heliomare(QuoteSent(referral_id=r, quote_id=uuid.uuid4(), sequence=3, kind=QuoteKind.QUOTE,
                                    amount=Decimal("100.00"), planned_start=START, duration_weeks=13,
                                    invoicing=[{"moment": "advance", "amount": "100.00"}]), subject, rid)
    contract_cases = [
        ("negative amount", base, {"amount_excl_vat": "-10.00", "vat_amount": "-2.10", "total": "-12.10"}),
        ("absurd amount", base, {"amount_excl_vat": "99999999.00"}),
        ("wrong currency", base, {"currency": "USD"}),
        ("wrong precision", bad_quote, {"amount": "100.001"}),
        ("currency on a quote", bad_quote, {"currency": "USD"}),
    ]
    for label, envelope, change in contract_cases:
        forged = envelope.model_copy(update={"id": uuid.uuid4()})
        message_id = await send(amqp, settings, forged, tampered(forged, **change))

        async def parked(mid=message_id):
            return [m for m in await parking.messages() if m.message_id == mid]

        dead = (await wait_for(parked, what=f"{label} in intake's parking queue"))[0]
        codes = {r["code"] for r in await recorded_reasons(client, "intake", dead)}
        assert codes & {"invalid_value", "unknown_field"}, (label, codes)
        retour = await retour_for(retours, seen, message_id)
        assert retour.status == "rejected", label

    # A progress report for a referral WerkSaam does not know.
    stray = TrajectoryProgressed(referral_id=uuid.uuid4(), trajectory_id=tid, sequence=1, reported_on=START,
                                 phase=Phase.TRAINING, status=ProgressStatus.ON_TRACK)
    retour = await retour_for(retours, seen, await send(amqp, settings, heliomare(stray, subject, rid)))
    assert [x.code.value for x in retour.reasons] == ["unknown_referral"]

    # Duplicates: the same message twice, and the same report under a new id, have one effect.
    again = TrajectoryProgressed(referral_id=r, trajectory_id=tid, sequence=1,
                                 reported_on=START + timedelta(weeks=1), phase=Phase.ORIENTATION,
                                 status=ProgressStatus.ON_TRACK)
    twice = heliomare(again, subject, rid)
    await send(amqp, settings, twice)
    await send(amqp, settings, twice)
    retour = await retour_for(retours, seen, await send(amqp, settings, heliomare(again, subject, rid)))
    assert retour.status == "accepted"

    # Nothing that was accepted is lost, nothing refused was applied.
    after = await view(client, "intake", rid)
    for key in ("status", "trajectory", "invoices", "invoiced_total", "approved_amount"):
        assert after[key] == before[key], key
    billing = await view(client, "billing", rid)
    assert Decimal(billing["invoiced_total"]) == Decimal(after["invoiced_total"]) <= approved
