"""Confidentiality (agreement art 8) over the real broker: the person's data of a referral reaches only staff with
a recorded confidentiality statement, and each such read is in the processing log naming who read it."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from infra.scenario import until_status
from shared.contracts.commands import ReadProcessingLog, RecordConfidentialityStatement
from tests.integration.test_cli import werkbrug
from tests.integration.test_flow import a_referral
from tests.staff import TEST_CLIENT

pytestmark = pytest.mark.integration


async def test_only_staff_with_a_statement_see_the_person_and_their_reads_are_logged(services, client, settings):
    referral = a_referral(random.Random("confidentiality"))
    submitted = await client.send("intake", referral)
    assert submitted.ok, submitted.reasons
    rid = submitted.result["referral_id"]
    await until_status(client, "offer", rid, {"registered"})
    signed = await client.send("offer", RecordConfidentialityStatement(
        staff="am.jansen", signed_on=datetime.now(UTC).date(), actor="privacy.heliomare"))
    assert signed.ok, signed.reasons

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
