"""Referral → quote → approval between WerkSaam (intake) and Heliomare (offer) over the real broker."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from dev.scenario import REPORT_YEAR
from shared.contracts.commands import (
    DecideQuote,
    DecideReferral,
    GetReferral,
    SendQuote,
    SubmitReferral,
)
from shared.contracts.events import InvoiceMoment, InvoiceTranche, QuoteRejectReason, SupportNeed
from shared.privacy.bsn import synthetic_bsn
from tests.harness import wait_for

pytestmark = pytest.mark.integration


def a_referral(rng: random.Random, **overrides) -> SubmitReferral:
    fields = dict(
        bsn=synthetic_bsn(rng), given_name="Fenna", family_name="de Boer", date_of_birth=date(1991, 4, 12),
        municipality="Hoorn", postal_code="1621 AB", phone="+31 6 12345678", email="fenna@example.nl",
        labour_disability=True, participatiewet_entitlement=True, support_need=SupportNeed.JOB_COACHING,
    )
    fields.update(overrides)
    return SubmitReferral(**fields)


def a_quote(referral_id, amount="4800.00") -> SendQuote:
    half = (Decimal(amount) / 2).quantize(Decimal("0.01"))
    return SendQuote(
        referral_id=referral_id, amount=Decimal(amount), planned_start=date(REPORT_YEAR, 1, 4), duration_weeks=26,
        invoicing=[InvoiceTranche(moment=InvoiceMoment.ADVANCE, amount=half),
                   InvoiceTranche(moment=InvoiceMoment.AFTERWARDS, amount=Decimal(amount) - half)],
    )


async def status_at(client, service: str, referral_id) -> str | None:
    result = await client.send(service, GetReferral(referral_id=referral_id))
    return result.result["status"] if result.ok else None


async def test_referral_travels_to_approval_and_every_crossing_is_answered(services, client):
    rng = random.Random(1)
    submitted = await client.send("intake", a_referral(rng))
    assert submitted.ok, submitted.reasons
    rid = submitted.result["referral_id"]

    assert await wait_for(lambda: status_at(client, "offer", rid), what="offer registers the referral") == "registered"
    accepted = await client.send("offer", DecideReferral(referral_id=rid, accept=True))
    assert accepted.ok, accepted.reasons
    quoted = await client.send("offer", a_quote(rid))
    assert quoted.ok, quoted.reasons
    quote_id = quoted.result["quotes"][0]["quote_id"]

    async def intake_has_quote():
        return await status_at(client, "intake", rid) == "quote_received"

    await wait_for(intake_has_quote, what="intake receives the quote")
    rejected = await client.send("intake", DecideQuote(referral_id=rid, quote_id=quote_id, approve=False,
                                                       reject_reason=QuoteRejectReason.AMOUNT_TOO_HIGH))
    assert rejected.ok, rejected.reasons

    async def offer_sees_rejection():
        return await status_at(client, "offer", rid) == "quote_rejected"

    await wait_for(offer_sees_rejection, what="offer learns of the rejection")
    second = await client.send("offer", a_quote(rid, amount="4200.00"))
    assert second.ok, second.reasons
    second_id = second.result["quotes"][1]["quote_id"]
    await wait_for(intake_has_quote, what="intake receives the second quote")
    approved = await client.send("intake", DecideQuote(referral_id=rid, quote_id=second_id, approve=True))
    assert approved.ok and approved.result["status"] == "quote_approved"

    async def offer_approved():
        return await status_at(client, "offer", rid) == "quote_approved"

    await wait_for(offer_approved, what="offer learns of the approval")

    async def all_answered(service):
        view = (await client.send(service, GetReferral(referral_id=rid))).result
        # Only what crosses to the other party is answered; the commission stays within Heliomare.
        deliveries = [d for d in view["deliveries"] if d["expects_retour"]]
        return deliveries if deliveries and all(d["retour"] for d in deliveries) else None

    intake_sent = await wait_for(lambda: all_answered("intake"), what="retours for everything intake sent")
    offer_sent = await wait_for(lambda: all_answered("offer"), what="retours for everything offer sent")
    assert [d["type"] for d in intake_sent] == ["referral.registered", "quote.rejected", "quote.approved"]
    assert [d["type"] for d in offer_sent] == ["referral.accepted", "quote.sent", "quote.sent"]
    assert {d["retour"]["status"] for d in intake_sent + offer_sent} == {"accepted"}
    assert {d["retour"]["from"] for d in intake_sent} == {"heliomare"}
