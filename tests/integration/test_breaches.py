"""Personal-data breaches over the real broker (agreement art 12, GDPR art 33-34).

Heliomare reports a breach of its services in a window in which a few referrals ran: the affected subjects
are found from the processing logs, WerkSaam's breach desk receives the report within the 24 hours, and its
72-hour clock for the Autoriteit Persoonsgegevens runs, shows overdue when not met, and is met once recorded.
WerkSaam's reports reach Heliomare the same way."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from dev.scenario import play_all
from shared.contracts.commands import ListBreaches, ReadProcessingLog, RecordAuthorityNotification, ReportBreach
from shared.contracts.events import BreachCause, BreachDataCategory, BreachSubjectCategory
from shared.privacy.pseudonym import Pseudonymiser
from tests.harness import wait_for
from tests.integration.test_full_process import cases_for

pytestmark = pytest.mark.integration

HELIOMARE_SERVICES = ["offer", "trajectory", "billing"]


async def subjects_in_window(client, services: list[str], since: datetime, until: datetime) -> list[str]:
    """What `werkbrug breach report` does: the distinct subjects each affected service processed in the window."""
    found: set[str] = set()
    for service in services:
        reply = await client.send(service, ReadProcessingLog(distinct_subjects=True, since=since, until=until))
        assert reply.ok, reply.reasons
        found |= {r["subject"] for r in reply.result}
    return sorted(found)


async def distinct_subjects_in_the_databases(mongodb_urls, settings, services, since, until) -> set[str]:
    """An independent count, straight from each service's processing_log collection."""
    found: set[str] = set()
    for service in services:
        client = AsyncMongoClient(mongodb_urls[service], tz_aware=True)
        try:
            db = client[settings.database_name(service)]
            found |= {d["subject"] async for d in db.processing_log.find({"time": {"$gte": since, "$lt": until}})
                      if d["subject"] is not None}  # (a refused attempt about no known referral concerns nobody)
        finally:
            await client.close()
    return found


async def test_a_heliomare_breach_reaches_werksaam_with_its_subjects_and_the_24_and_72_hour_clocks(
        services, client, settings, mongodb_urls):
    since = datetime.now(UTC)
    cases = await play_all(client, cases_for([("decline", "both", "paid_work")] * 3, seed=61), seed=61)
    until = datetime.now(UTC)
    pseudonymise = Pseudonymiser(settings.pseudonym_key.get_secret_value())
    referred = {pseudonymise(c.command.bsn) for c in cases if c.outcome == "declined"}
    assert len(referred) == 3

    affected = await subjects_in_window(client, HELIOMARE_SERVICES, since, until)
    assert referred <= set(affected)
    assert set(affected) == await distinct_subjects_in_the_databases(mongodb_urls, settings, HELIOMARE_SERVICES,
                                                                      since, until)

    detected = datetime.now(UTC) - timedelta(hours=1)
    reported = await client.send("offer", ReportBreach(
        detected_at=detected, presumed_cause=BreachCause.MISDIRECTED_MESSAGE,
        data_categories=[BreachDataCategory.IDENTIFICATION, BreachDataCategory.CONTACT],
        subject_categories=[BreachSubjectCategory.JOBSEEKERS], window_since=since, window_until=until,
        services=HELIOMARE_SERVICES, affected_subjects=affected))
    assert reported.ok, reported.reasons
    breach_id = reported.result["breach_id"]

    async def at_werksaam():
        breaches = (await client.send("subject_rights", ListBreaches())).result
        return next((b for b in breaches if b["breach_id"] == breach_id), None)

    breach = await wait_for(at_werksaam, what="WerkSaam's breach desk received Heliomare's report")
    print(f"\nbreach {breach_id}: {breach['subject_count']} affected subjects; clocks {breach['clocks']}")
    assert breach["reported_by"] == "heliomare" and breach["own"] is False
    assert breach["subject_count"] == len(affected) == breach["subjects_named"]
    assert breach["clocks"]["inform_parties"]["state"] == "met"  # within 24 hours of detection
    authority = breach["clocks"]["notify_authority"]
    assert authority["state"] == "running" and 71 < authority["hours_left"] <= 72

    later = datetime.fromisoformat(authority["due"]) + timedelta(minutes=1)
    overdue = (await client.send("subject_rights", ListBreaches(overdue=True, now=later))).result
    assert breach_id in {b["breach_id"] for b in overdue}
    assert next(b for b in overdue if b["breach_id"] == breach_id)["clocks"]["notify_authority"]["state"] == "overdue"

    noted = await client.send("subject_rights", RecordAuthorityNotification(
        breach_id=uuid.UUID(breach_id), at=datetime.now(UTC), reference="AP-2027-000123"))
    assert noted.ok, noted.reasons
    assert noted.result["clocks"]["notify_authority"]["state"] == "met"
    overdue = (await client.send("subject_rights", ListBreaches(overdue=True, now=later))).result
    assert breach_id not in {b["breach_id"] for b in overdue}

    async def acknowledged():
        own = next(b for b in (await client.send("offer", ListBreaches())).result if b["breach_id"] == breach_id)
        return own["deliveries"] if own["deliveries"] and own["deliveries"][0]["status"] == "accepted" else None

    [delivery] = await wait_for(acknowledged, what="WerkSaam's retour on the report")
    assert delivery["to"] == "werksaam"

    # The pseudonyms sent and received are processing of those subjects' data: logged at both parties.
    for service in ("offer", "subject_rights"):
        log = await client.send(service, ReadProcessingLog(correlation_id=uuid.UUID(breach_id)))
        assert {r["subject"] for r in log.result} == set(affected), service


async def test_a_werksaam_breach_reaches_heliomares_breach_desk(services, client):
    now = datetime.now(UTC)
    reported = await client.send("subject_rights", ReportBreach(
        detected_at=now - timedelta(hours=30), presumed_cause=BreachCause.LOST_OR_STOLEN_DEVICE,
        data_categories=[BreachDataCategory.PSEUDONYM], subject_categories=[BreachSubjectCategory.JOBSEEKERS],
        window_since=now - timedelta(days=3), window_until=now - timedelta(hours=30), services=["intake"],
        subject_count=12))
    assert reported.ok, reported.reasons
    assert reported.result["clocks"]["inform_parties"]["state"] == "late"  # reported 30 hours after detection

    async def at_heliomare():
        breaches = (await client.send("offer", ListBreaches())).result
        return next((b for b in breaches if b["breach_id"] == reported.result["breach_id"]), None)

    breach = await wait_for(at_heliomare, what="Heliomare's breach desk received WerkSaam's report")
    assert breach["reported_by"] == "werksaam" and breach["subject_count"] == 12
    assert breach["clocks"]["inform_parties"]["state"] == "late"


async def test_the_command_line_reports_a_breach_lists_its_clocks_and_records_what_werksaam_did(services, client,
                                                                                                 settings):
    from tests.integration.test_cli import werkbrug

    now = datetime.now(UTC)
    window = ["--since", (now - timedelta(hours=1)).isoformat(), "--until", now.isoformat()]
    code, out, err = await werkbrug(settings, "breach", "report", "--party", "heliomare", "--detected-at",
                                    now.isoformat(), "--cause", "unauthorised_access", "--data", "identification",
                                    "--data", "contact", *window, "--service", "offer", "--json")
    assert code == 0, err
    reported = json.loads(out)["result"]
    assert reported["services"] == ["offer"] and reported["subjects_named"] == reported["subject_count"]
    breach_id = reported["breach_id"]

    async def listed():
        return breach_id in {b["breach_id"] for b in (await client.send("subject_rights", ListBreaches())).result}

    await wait_for(listed, what="the report at WerkSaam's desk")
    code, out, _ = await werkbrug(settings, "breaches")
    assert code == 0 and breach_id in out and "running" in out
    code, out, _ = await werkbrug(settings, "breach", "notify-ap", breach_id, "--at", now.isoformat(),
                                  "--reference", "AP-2027-42")
    assert code == 0 and "met" in out
    code, out, _ = await werkbrug(settings, "breach", "decide-subjects", breach_id, "--no-inform", "--reason",
                                  "data_unintelligible")
    assert code == 0 and "data_unintelligible" in out
    code, _, err = await werkbrug(settings, "breach", "letter", breach_id, "--html", "/nonexistent/letter.html")
    assert code == 2 and "decided not to inform" in err, "no letter to the persons the desk decided not to inform"
    code, _, err = await werkbrug(settings, "breach", "report", "--party", "heliomare", "--detected-at",
                                  now.isoformat(), "--cause", "malware", "--data", "contact", *window,
                                  "--service", "intake")
    assert code == 2 and "not a service of heliomare" in err
