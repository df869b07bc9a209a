"""The synthetic scenario of the demo (and of the end-to-end tests).

Synthetic people only: names from a short list, BSNs generated to pass the 11-test (not real
people's), addresses as postal codes in the right region. A share of the referrals is wrong on
purpose, each in one of the ways intake must refuse.

The people on both sides are played by code: a WerkSaam caseworker submits and decides on quotes,
a Heliomare account manager accepts or declines and quotes, and Heliomare's staff start, report on and
end the trajectory (when the case has a trajectory plan: `with_trajectories`).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from shared.client import CommandClient
from shared.contracts.commands import (
    DecideQuote,
    DecideReferral,
    EndTrajectory,
    GetReferral,
    ReportProgress,
    SendQuote,
    StartTrajectory,
    SubmitReferral,
)
from shared.contracts.events import (
    ContractType,
    DeclineReason,
    HoursBand,
    InvoiceMoment,
    InvoiceTranche,
    Outcome,
    Phase,
    ProgressStatus,
    QuoteRejectReason,
    StopReason,
    SupportNeed,
)
from shared.contracts.parties import Municipality
from shared.privacy.bsn import synthetic_bsn

GIVEN = ["Fenna", "Daan", "Sanne", "Bram", "Noor", "Jesse", "Lotte", "Ruben", "Iris", "Thijs", "Eva", "Milan"]
FAMILY = ["de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "Bos", "Kok"]
POSTAL_PREFIX = {  # a real postal-code area in each municipality
    Municipality.DRECHTERLAND: "1606", Municipality.ENKHUIZEN: "1601", Municipality.HOORN: "1621",
    Municipality.KOGGENLAND: "1646", Municipality.MEDEMBLIK: "1671", Municipality.OPMEER: "1718",
    Municipality.STEDE_BROEC: "1611",
}
FLAWS = ("bsn", "outside_region", "no_disability", "no_entitlement")
SCHEDULES = ("both", "advance_only", "afterwards_only")  # the invoicing branches of Bijlage 2 steps 5 and 8
ENDINGS = ("paid_work", "paid_work", "education", "stopped_early", "paid_work", "other_provision", "running")
# The year the synthetic trajectories run in: the next calendar year, so that every quote and start follows
# its referral (made today), as intake and offer require (date_before_referral), whatever the date of the run.
REPORT_YEAR = date.today().year + 1


@dataclass
class TrajectoryPlan:
    """What Heliomare's staff will do once the quote is approved, and how it is invoiced."""

    schedule: str = "both"  # both | advance_only | afterwards_only
    ending: str = "paid_work"  # an Outcome value, or "running" (not ended)
    start: date = date(REPORT_YEAR, 2, 1)
    weeks_run: int = 26


@dataclass
class Case:
    """One person in the scenario and what is planned to happen to their referral."""

    command: SubmitReferral
    flaw: str | None = None  # the intake check it should fail, if any
    plan: str = "approve"  # approve | reject_then_approve | decline
    trajectory: TrajectoryPlan | None = None  # None: stop at the quote decision
    referral_id: str | None = None
    outcome: str | None = None
    reasons: list[str] = field(default_factory=list)


def synthetic_cases(rng: random.Random, count: int) -> list[Case]:
    cases = []
    for i in range(count):
        municipality = rng.choice(list(Municipality))
        flaw = FLAWS[(i // 4) % len(FLAWS)] if i % 4 == 3 else None  # one in four is refused, each flaw in turn
        bsn = synthetic_bsn(rng)
        if flaw == "bsn":
            bsn = bsn[:8] + str((int(bsn[8]) + 1) % 10)  # one digit off: fails the 11-test
        command = SubmitReferral(
            bsn=bsn,
            given_name=rng.choice(GIVEN),
            family_name=rng.choice(FAMILY),
            date_of_birth=date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 45)),
            municipality="Amsterdam" if flaw == "outside_region" else municipality.value.replace("-", " ").title(),
            postal_code=f"{POSTAL_PREFIX[municipality]} {rng.choice('ABCDEFGHJKLMNPRSTVWXZ')}{rng.choice('ABCDEFGH')}",
            phone=f"06 {rng.randrange(10_000_000, 99_999_999)}",
            email=None,
            labour_disability=flaw != "no_disability",
            participatiewet_entitlement=flaw != "no_entitlement",
            support_need=rng.choice(list(SupportNeed)),
            requested_start=date(REPORT_YEAR, 1, 4) + timedelta(weeks=rng.randrange(0, 12)),
        )
        plan = "decline" if i % 10 == 5 else ("reject_then_approve" if i % 3 == 1 else "approve")
        cases.append(Case(command, flaw, plan))
    return cases


def with_trajectories(cases: list[Case], rng: random.Random) -> list[Case]:
    """Give every case that may reach approval a trajectory plan, covering each invoicing schedule and
    each ending, with starts and ends spread over the quarters of the report year."""
    n = 0
    for case in cases:
        if case.flaw or case.plan == "decline":
            continue
        ending = ENDINGS[n % len(ENDINGS)]
        start = date(REPORT_YEAR, 1, 11) + timedelta(weeks=(n * 3) % 22)
        weeks = 6 if ending == "stopped_early" else rng.choice([13, 16, 20])
        case.trajectory = TrajectoryPlan(schedule=SCHEDULES[n % len(SCHEDULES)], ending=ending, start=start,
                                         weeks_run=weeks)
        n += 1
    return cases


def schedule_of(amount: Decimal, kind: str) -> list[InvoiceTranche]:
    if kind == "advance_only":
        return [InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=amount)]
    if kind == "afterwards_only":
        return [InvoiceTranche(moment=InvoiceMoment.AFTERWARDS, amount=amount)]
    advance = (amount * Decimal("0.4")).quantize(Decimal("0.01"))
    return [InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=advance),
            InvoiceTranche(moment=InvoiceMoment.AFTERWARDS, amount=amount - advance)]


def quote_for(referral_id: str, rng: random.Random, amount: Decimal | None = None,
              schedule: str = "both", duration_weeks: int | None = None) -> SendQuote:
    amount = amount or Decimal(rng.randrange(2400, 9600, 50))
    return SendQuote(
        referral_id=uuid.UUID(referral_id), amount=amount, planned_start=date(REPORT_YEAR, 2, 1),
        duration_weeks=duration_weeks or rng.choice([13, 26, 39, 52]), invoicing=schedule_of(amount, schedule),
    )


def end_command(referral_id: str, plan: TrajectoryPlan) -> EndTrajectory:
    outcome = Outcome(plan.ending)
    details: dict = {}
    if outcome == Outcome.PAID_WORK:
        details = {"contract_type": ContractType.FIXED_TERM, "hours_band": HoursBand.FROM_24_TO_32}
    elif outcome == Outcome.STOPPED_EARLY:
        details = {"stop_reason": StopReason.PERSON_WITHDREW}
    return EndTrajectory(referral_id=uuid.UUID(referral_id), end_date=plan.start + timedelta(weeks=plan.weeks_run),
                         outcome=outcome, **details)


def expected_invoices(plan: TrajectoryPlan) -> int:
    """How many invoices billing makes for the plan: the advance at the start, the afterwards part at
    the end (pro rata when stopped early, which is more than nothing here)."""
    ended = plan.ending != "running"
    return (plan.schedule != "afterwards_only") + (ended and plan.schedule != "advance_only")


async def status(client: CommandClient, service: str, referral_id: str) -> str | None:
    result = await client.send(service, GetReferral(referral_id=uuid.UUID(referral_id)))
    return result.result["status"] if result.ok else None


async def until_status(client: CommandClient, service: str, referral_id: str, wanted: set[str],
                       within: float = 60.0) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        current = await status(client, service, referral_id)
        if current in wanted:
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{service} did not reach {sorted(wanted)} for {referral_id} (is {current})")
        await asyncio.sleep(0.1)


async def play(client: CommandClient, case: Case, rng: random.Random) -> Case:
    """Take one referral as far as the plan says: refused, declined, or approved (maybe after a rejection)."""
    submitted = await client.send("intake", case.command)
    case.referral_id = (submitted.result or {}).get("referral_id")
    if not submitted.ok:
        case.outcome, case.reasons = "refused", [r.code.value for r in submitted.reasons]
        return case
    rid = case.referral_id
    assert rid is not None
    schedule = case.trajectory.schedule if case.trajectory else "both"
    await until_status(client, "offer", rid, {"registered"})
    if case.plan == "decline":
        await client.send("offer", DecideReferral(referral_id=uuid.UUID(rid), accept=False,
                                                  decline_reason=DeclineReason.NO_CAPACITY))
        case.outcome = await until_status(client, "intake", rid, {"declined"})
        return case
    await client.send("offer", DecideReferral(referral_id=uuid.UUID(rid), accept=True))
    quote = quote_for(rid, rng, schedule=schedule)
    for attempt in (1, 2):
        sent = await client.send("offer", quote)
        quote_id = uuid.UUID(sent.result["quotes"][-1]["quote_id"])
        await until_status(client, "intake", rid, {"quote_received"})
        if case.plan == "reject_then_approve" and attempt == 1:
            await client.send("intake", DecideQuote(referral_id=uuid.UUID(rid), quote_id=quote_id, approve=False,
                                                    reject_reason=QuoteRejectReason.AMOUNT_TOO_HIGH))
            await until_status(client, "offer", rid, {"quote_rejected"})
            quote = quote_for(rid, rng, amount=(quote.amount * Decimal("0.85")).quantize(Decimal("1")),
                              schedule=schedule)
            continue
        await client.send("intake", DecideQuote(referral_id=uuid.UUID(rid), quote_id=quote_id, approve=True))
        await until_status(client, "offer", rid, {"quote_approved"})
        break
    if case.trajectory is not None:
        await play_trajectory(client, case, rng)
    case.outcome = await status(client, "intake", rid)
    return case


async def play_trajectory(client: CommandClient, case: Case, rng: random.Random) -> None:
    """Heliomare's staff start the trajectory, report progress and end it; then wait until WerkSaam has
    registered it all and billing's invoices arrived there."""
    rid, plan = case.referral_id, case.trajectory
    assert rid is not None and plan is not None
    await until_status(client, "trajectory", rid, {"commissioned"})
    started = await client.send("trajectory", StartTrajectory(referral_id=uuid.UUID(rid), start_date=plan.start))
    assert started.ok, started.reasons
    for week, phase in ((2, Phase.ORIENTATION), (5, Phase.JOB_SEARCH)):
        if week < plan.weeks_run:
            progressed = await client.send("trajectory", ReportProgress(
                referral_id=uuid.UUID(rid), reported_on=plan.start + timedelta(weeks=week), phase=phase,
                status=rng.choice([ProgressStatus.ON_TRACK, ProgressStatus.ON_TRACK, ProgressStatus.DELAYED])))
            assert progressed.ok, progressed.reasons
    wanted = "trajectory_running"
    if plan.ending != "running":
        ended = await client.send("trajectory", end_command(rid, plan))
        assert ended.ok, ended.reasons
        wanted = "trajectory_ended"
    await until_status(client, "intake", rid, {wanted})
    count = expected_invoices(plan)

    async def invoices_arrived() -> bool:
        view = (await client.send("intake", GetReferral(referral_id=uuid.UUID(rid)))).result or {}
        return len(view.get("invoices", [])) >= count

    deadline = asyncio.get_running_loop().time() + 60
    while not await invoices_arrived():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"intake did not receive {count} invoices for {rid}")
        await asyncio.sleep(0.1)


async def play_all(client: CommandClient, cases: list[Case], seed: int, concurrency: int = 6,
                   progress=None) -> list[Case]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, case: Case) -> Case:
        async with gate:
            result = await play(client, case, random.Random(seed * 1000 + i))
        if progress:
            progress()
        return result

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(cases))))
