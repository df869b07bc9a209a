"""The synthetic scenario of the demo (and of the end-to-end tests).

Synthetic people only: names from a short list, BSNs generated to pass the 11-test (not real
people's), addresses as postal codes in the right region. A share of the referrals is wrong on
purpose, each in one of the ways intake must refuse.

The people on both sides are played by code: a WerkSaam caseworker submits and decides on quotes,
a Heliomare account manager accepts or declines and quotes.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from shared.client import CommandClient
from shared.contracts.commands import DecideQuote, DecideReferral, GetReferral, SendQuote, SubmitReferral
from shared.contracts.events import (
    DeclineReason,
    InvoiceMoment,
    InvoiceTranche,
    QuoteRejectReason,
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


@dataclass
class Case:
    """One person in the scenario and what is planned to happen to their referral."""

    command: SubmitReferral
    flaw: str | None = None  # the intake check it should fail, if any
    plan: str = "approve"  # approve | reject_then_approve | decline
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
            requested_start=date(2027, 1, 4) + timedelta(weeks=rng.randrange(0, 12)),
        )
        plan = "decline" if i % 10 == 5 else ("reject_then_approve" if i % 3 == 1 else "approve")
        cases.append(Case(command, flaw, plan))
    return cases


def quote_for(referral_id: str, rng: random.Random, amount: Decimal | None = None) -> SendQuote:
    amount = amount or Decimal(rng.randrange(2400, 9600, 50))
    advance = (amount * Decimal("0.4")).quantize(Decimal("0.01"))
    return SendQuote(
        referral_id=uuid.UUID(referral_id), amount=amount, planned_start=date(2027, 2, 1),
        duration_weeks=rng.choice([13, 26, 39, 52]),
        invoicing=[InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=advance),
                   InvoiceTranche(moment=InvoiceMoment.AFTERWARDS, amount=amount - advance)],
    )


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
    await until_status(client, "offer", rid, {"registered"})
    if case.plan == "decline":
        await client.send("offer", DecideReferral(referral_id=uuid.UUID(rid), accept=False,
                                                  decline_reason=DeclineReason.NO_CAPACITY))
        case.outcome = await until_status(client, "intake", rid, {"declined"})
        return case
    await client.send("offer", DecideReferral(referral_id=uuid.UUID(rid), accept=True))
    quote = quote_for(rid, rng)
    for attempt in (1, 2):
        sent = await client.send("offer", quote)
        quote_id = uuid.UUID(sent.result["quotes"][-1]["quote_id"])
        await until_status(client, "intake", rid, {"quote_received"})
        if case.plan == "reject_then_approve" and attempt == 1:
            await client.send("intake", DecideQuote(referral_id=uuid.UUID(rid), quote_id=quote_id, approve=False,
                                                    reject_reason=QuoteRejectReason.AMOUNT_TOO_HIGH))
            await until_status(client, "offer", rid, {"quote_rejected"})
            quote = quote_for(rid, rng, amount=(quote.amount * Decimal("0.85")).quantize(Decimal("1")))
            continue
        await client.send("intake", DecideQuote(referral_id=uuid.UUID(rid), quote_id=quote_id, approve=True))
        await until_status(client, "offer", rid, {"quote_approved"})
        break
    case.outcome = await status(client, "intake", rid)
    return case


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
