"""Confidentiality (agreement art 8) over the real broker: the person's data of a referral reaches only staff with
a recorded confidentiality statement, and each such read is in the processing log naming who read it."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from dev.scenario import until_status
from shared.contracts.commands import GetReferral, ReadProcessingLog, RecordConfidentialityStatement
from tests.integration.test_cli import werkbrug
from tests.integration.test_flow import a_referral
from tests.staff import TEST_CLIENT

pytestmark = pytest.mark.integration


async def registered_at_offer_with_a_signed_account_manager(client, seed: str):
    """A referral registered at offer, and Heliomare's account manager am.jansen under a statement there:
    the referral (as submitted) and its id."""
    referral = a_referral(random.Random(seed))
    submitted = await client.send("intake", referral)
    assert submitted.ok, submitted.reasons
    rid = submitted.result["referral_id"]
    await until_status(client, "offer", rid, {"registered"})
    signed = await client.send("offer", RecordConfidentialityStatement(
        staff="am.jansen", signed_on=datetime.now(UTC).date(), actor="privacy.heliomare"))
    assert signed.ok, signed.reasons
    return referral, rid


async def test_only_staff_with_a_statement_see_the_person_and_their_reads_are_logged(services, client, settings):
    referral, rid = await registered_at_offer_with_a_signed_account_manager(client, "confidentiality")

    code, out, err = await werkbrug(settings, "--as", "am.jansen", "person", rid, "--service", "offer")
    assert code == 0, err
    assert referral.family_name in out and referral.bsn in out
    code, out, err = await werkbrug(settings, "--as", "am.devries", "person", rid, "--service", "offer")
    assert code == 2 and "no_confidentiality_statement" in err and referral.family_name not in out + err

    log = (await client.send("offer", ReadProcessingLog(correlation_id=uuid.UUID(rid)))).result
    reads = [r for r in log if r["message_type"] == "query:get_referral" and r["actor"] != TEST_CLIENT]  # polling
    assert [(r["actor"], r["kind"], r["status"]) for r in reads] == [
        ("am.jansen", "personal_data_read", "ok"),
        ("am.devries", "personal_data_read", "refused")]  # the refused read showed nothing, but is logged
    assert reads[0]["activity_id"] == "urn:werkbrug:activity:heliomare:case-overview:v1"
    assert reads[1]["reasons"] == ["no_confidentiality_statement"]


async def test_referral_level_views_show_municipality_need_outcome_and_amounts_only_under_a_statement(
        services, client, settings):
    """Referral-level data is personal data (art 8): `status`, `referrals` and `invoices` by a member without a
    statement give the status view (ids, states, retours) with a one-line note; with a statement, the detail."""
    from shared.contracts.commands import ListInvoices, StartTrajectory
    from tests.harness import wait_for
    from tests.integration.test_full_process import START, approved_referral

    rid, _ = await approved_referral(client, seed=815)
    assert (await client.send("trajectory", StartTrajectory(referral_id=uuid.UUID(rid), start_date=START))).ok

    async def invoiced():
        listed = (await client.send("billing", ListInvoices(detail=True))).result
        return [i for i in listed if i["referral_id"] == rid]

    [advance] = await wait_for(invoiced, within=30, what="the advance invoice")
    municipality = (await client.send("intake", GetReferral(referral_id=uuid.UUID(rid), detail=True))).result[
        "municipality"]
    assert municipality

    code, out, err = await werkbrug(settings, "--as", "ops.werksaam", "status", rid, "--json")
    assert code == 0, err
    views = json.loads(out)
    assert views["intake"]["result"]["status"] and "status view only" in err
    referral_level = {"municipality", "support_need", "approved_amount", "amount", "outcome", "start_date",
                      "trajectory", "invoiced_total"}
    results = [reply["result"] for reply in views.values()]
    assert not keys_in(results) & referral_level, keys_in(results) & referral_level
    code, out, err = await werkbrug(settings, "--as", "ops.werksaam", "referrals", "--json")
    assert code == 0 and rid in out and not keys_in(json.loads(out)) & referral_level
    code, out, err = await werkbrug(settings, "--as", "fin.nostatement", "invoices", "--json")
    assert code == 0 and "status view only at billing" in err, err
    [shown_invoice] = [i for i in json.loads(out)["result"] if i["referral_id"] == rid]
    assert shown_invoice == {"number": advance["number"], "moment": "advance", "referral_id": rid,
                             "trajectory_id": advance["trajectory_id"]}
    assert not keys_in(json.loads(out)) & {"amount_excl_vat", "vat_amount", "total", "invoice_date"}

    signed = await client.send("intake", RecordConfidentialityStatement(
        staff="ops.werksaam", signed_on=datetime.now(UTC).date(), actor="privacy.werksaam"))
    assert signed.ok, signed.reasons
    code, out, err = await werkbrug(settings, "--as", "ops.werksaam", "referrals", "--json")
    assert code == 0 and f'"municipality": "{municipality}"' in out and "status view only" not in err
    code, out, err = await werkbrug(settings, "--as", "ops.werksaam", "status", rid, "--json")
    intake = json.loads(out)["intake"]["result"]
    assert intake["municipality"] == municipality and intake["approved_amount"] and "status view only" not in err


def keys_in(value) -> set[str]:
    """Every key of every object in a JSON value, at any depth."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()
