"""The `werkbrug` command line, as people use it: a separate process against the running services."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cli.file_inputs import PLUMBING
from dev.scenario import REPORT_YEAR, play_all, until_status
from shared.contracts.commands import (
    GetSubjectRequest,
    IdentityCheck,
    ListReferrals,
    RecordConfidentialityStatement,
    SubmitSubjectRequest,
)
from shared.contracts.events import Right
from shared.privacy.bsn import synthetic_bsn
from tests.harness import wait_for
from tests.integration.test_flow import a_referral
from tests.integration.test_full_process import cases_for
from tests.integration.test_subject_rights import HOLDERS, _restart, a_person_through_the_whole_process
from tests.staff import TEST_CLIENT

pytestmark = pytest.mark.integration
OPERATOR = "test.operator"


@pytest.fixture
async def operator_signed_at_the_privacy_desk(services, client):
    """The subject-request answers hold personal data: shown only to staff with a statement (art 8)."""
    signed = await client.send("subject_rights", RecordConfidentialityStatement(
        staff=OPERATOR, signed_on=datetime.now(UTC).date(), actor="privacy.werksaam"))
    assert signed.ok, signed.reasons


async def werkbrug(settings, *args: str) -> tuple[int, str, str]:
    env = {"WERKBRUG_ACTOR": OPERATOR, **os.environ, "WERKBRUG_NAMESPACE": settings.namespace,
           "AMQP_URL": settings.amqp_url, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out.decode(), err.decode()


async def test_a_referral_from_file_to_approved_quote_through_the_command_line(services, client, settings, tmp_path):
    person = tmp_path / "person.json"
    referral = a_referral(random.Random("cli"))
    person.write_text(referral.model_dump_json(exclude=PLUMBING))

    code, out, _ = await werkbrug(settings, "refer", str(person), "--json")
    assert code == 0, out
    rid = json.loads(out)["result"]["referral_id"]
    await until_status(client, "offer", rid, {"registered"})
    assert (await werkbrug(settings, "accept", rid))[0] == 0
    code, out, err = await werkbrug(settings, "quote", rid, "--amount", "4800.00", "--start", f"{REPORT_YEAR}-01-04",
                                    "--weeks", "26", "--advance", "1920.00", "--json")
    assert code == 0, err
    quote_id = json.loads(out)["result"]["quotes"][-1]["quote_id"]
    await until_status(client, "intake", rid, {"quote_received"})
    assert (await werkbrug(settings, "approve", rid, quote_id))[0] == 0
    await until_status(client, "offer", rid, {"quote_approved"})

    code, out, _ = await werkbrug(settings, "status", rid)
    assert code == 0 and "quote_approved" in out and "referral.registered" in out and "accepted" in out
    code, out, _ = await werkbrug(settings, "trace", rid, "--svg", str(tmp_path / "flow.svg"))
    assert code == 0 and "submit_referral" in out and "on_quote_approved" in out
    assert (tmp_path / "flow.svg").read_text().startswith("<svg")
    code, out, _ = await werkbrug(settings, "log", "--referral", rid, "--json")
    records = json.loads(out)
    assert code == 0 and {r["party"] for r in records} == {"werksaam", "heliomare"}
    assert referral.bsn not in out and referral.family_name not in out
    code, out, _ = await werkbrug(settings, "referrals", "--status", "quote_approved", "--json")
    assert code == 0 and rid in out
    code, out, _ = await werkbrug(settings, "health")
    assert code == 0 and "intake" in out and "offer" in out


async def test_the_command_line_refuses_clearly_with_exit_codes(services, settings, tmp_path):
    person = tmp_path / "person.json"
    bad = a_referral(random.Random("cli-bad"), bsn="123456789", municipality="Amsterdam")
    person.write_text(bad.model_dump_json(exclude=PLUMBING))
    code, _, err = await werkbrug(settings, "refer", str(person))
    assert code == 2 and "bsn_invalid" in err and "not_resident_west_friesland" in err
    assert "123456789" not in err

    person.write_text('{"bsn": "123456782", "shoe_size": 44}')
    code, _, err = await werkbrug(settings, "refer", str(person))
    assert code == 2 and "unknown_field" in err

    assert (await werkbrug(settings, "status", str(uuid.uuid4())))[0] == 1
    assert (await werkbrug(settings, "status", "not-an-id"))[0] == 2
    assert (await werkbrug(settings, "log"))[0] == 2, "an unfiltered read of the log is refused"
    code, _, err = await werkbrug(settings, "approve", str(uuid.uuid4()), str(uuid.uuid4()))
    assert code == 2 and "unknown_referral" in err


async def test_finance_lists_invoices_and_the_report_is_shown_from_the_command_line(services, client, settings,
                                                                                   tmp_path):
    from dev.scenario import play_all, synthetic_cases, with_trajectories

    rng = random.Random("cli-money")
    cases = with_trajectories(synthetic_cases(rng, 3), rng)
    cases = await play_all(client, cases, seed=3)
    assert any(c.trajectory for c in cases)

    async def invoiced():
        code, out, _ = await werkbrug(settings, "invoices", "--year", str(REPORT_YEAR), "--json")
        rows = json.loads(out).get("result") or [] if code == 0 else []
        return rows if any(r["referral_id"] in {c.referral_id for c in cases} for r in rows) else None

    rows = await wait_for(invoiced, within=30, what="invoices for the scenario's trajectories")
    assert all(r["number"].startswith(f"{REPORT_YEAR}-") for r in rows)
    code, out, err = await werkbrug(settings, "--as", TEST_CLIENT, "invoices", "--year", str(REPORT_YEAR))
    assert code == 0 and "total" in out and "status view only" not in err, "with a statement: amounts and totals"

    code, out, err = await werkbrug(settings, "report", str(REPORT_YEAR), "--source", "trajectory",
                                    "--svg", str(tmp_path / "report.svg"))
    assert code == 0, err
    assert "Yearly report" in out and (tmp_path / "report.svg").read_text().startswith("<svg")
    assert all(c.command.family_name not in out for c in cases)


# -- the privacy officer: data-subject requests -------------------------------------------------------------


async def _completed(client, request_id: str) -> dict:
    async def done():
        query = GetSubjectRequest(request_id=uuid.UUID(request_id), actor=OPERATOR)
        found = (await client.send("subject_rights", query)).result
        return found if found["status"] == "completed" else None

    return await wait_for(done, within=60, what=f"request {request_id} answered by every service")


def _bsn_file(tmp_path, bsn: str):
    path = tmp_path / "bsn.txt"
    path.write_text(bsn + "\n")
    return str(path)


SUBMIT = ("subject-request", "submit", "--identity-method", "id_document_at_desk", "--verified-by", "desk.hoorn")


async def test_a_privacy_officer_takes_access_and_erasure_requests_and_reads_their_answers_from_the_command_line(
        services, client, settings, tmp_path, operator_signed_at_the_privacy_desk):
    case = await a_person_through_the_whole_process(client, seed=61)
    person = case.command
    bsn_file = _bsn_file(tmp_path, person.bsn)

    code, out, err = await werkbrug(settings, *SUBMIT, "--right", "access", bsn_file, "--json")
    assert code == 0, err
    submitted = json.loads(out)["result"]
    access_id = submitted["request_id"]
    assert submitted["status"] == "open" and submitted["due"]
    await _completed(client, access_id)

    code, out, err = await werkbrug(settings, "subject-request", "show", access_id)
    assert code == 0, err
    assert all(service in out for service in HOLDERS) and "closed" in out and "done" in out
    assert person.family_name not in out and person.bsn not in out, "the table shows pseudonyms and states only"

    document = tmp_path / "access.html"
    code, out, err = await werkbrug(settings, "subject-request", "show", access_id, "--json", "--html", str(document))
    assert code == 0, err
    package = json.loads(out)["result"]
    assert set(package["answers"]) == HOLDERS
    assert all(a["records"] and a["information"] for a in package["answers"].values())
    html = document.read_text()
    assert html.startswith("<!doctype html>") and "welke gegevens hebben wij over u" in html
    assert person.family_name in html and access_id not in html, "the person's letter: their data, no ids"
    english, pdf = tmp_path / "access-en.html", tmp_path / "access-en.pdf"
    code, _, err = await werkbrug(settings, "subject-request", "letter", access_id, "--lang", "en", "--html",
                                  str(english), "--pdf", str(pdf))
    assert code == 0, err
    assert "which data do we hold about you" in english.read_text() and pdf.read_bytes().startswith(b"%PDF")
    assert oct(pdf.stat().st_mode & 0o777) == "0o600", "it holds the person's data"

    code, out, err = await werkbrug(settings, *SUBMIT, "--right", "erasure", bsn_file)
    assert code == 0, err
    erasure_id = re.search(r"request ([0-9a-f-]{36}): open", out).group(1)
    assert "due" in out
    await _completed(client, erasure_id)
    code, out, err = await werkbrug(settings, "subject-request", "show", erasure_id)
    assert code == 0, err
    assert "erasure verified: yes" in out and "17(3)(b)" in out and "withheld" in out
    code, _, err = await werkbrug(settings, "subject-request", "show", erasure_id, "--html", str(document))
    assert code == 0, err
    letter = document.read_text()
    assert "Uw gegevens zijn gewist" in letter and "Archiefwet" in letter and erasure_id not in letter


async def test_a_subject_request_that_cannot_be_taken_is_refused_at_the_command_line_with_its_reasons(
        services, settings, tmp_path, operator_signed_at_the_privacy_desk):
    bsn = synthetic_bsn(random.Random("cli-refused"))
    code, _, err = await werkbrug(settings, "subject-request", "submit", "--right", "access",
                                  "--identity-method", "not_verified", "--verified-by", "desk.hoorn",
                                  _bsn_file(tmp_path, bsn))
    assert code == 2 and "identity_not_verified" in err and "recorded" in err
    assert bsn not in err

    typo = bsn[:-1] + str((int(bsn[-1]) + 1) % 10)  # one digit off: fails the 11-test
    code, _, err = await werkbrug(settings, *SUBMIT, "--right", "access", _bsn_file(tmp_path, typo))
    assert code == 2 and "bsn_invalid" in err and typo not in err

    assert (await werkbrug(settings, "subject-request", "show", str(uuid.uuid4())))[0] == 1


async def test_an_open_request_near_its_deadline_is_listed_at_risk_escalated_and_extended_from_the_command_line(
        services, client, settings, mongodb_urls, span_exporter, tmp_path, operator_signed_at_the_privacy_desk):
    bsn_file = _bsn_file(tmp_path, synthetic_bsn(random.Random("cli-at-risk")))
    received = datetime.now(UTC) - timedelta(days=25)  # due in 3 to 6 days: within the escalation window
    await services["billing"].stop(keep_tracing=True)  # billing does not answer
    try:
        code, out, err = await werkbrug(settings, *SUBMIT, "--right", "access", "--received-at",
                                        received.isoformat(), bsn_file, "--json")
        assert code == 0, err
        request_id = json.loads(out)["result"]["request_id"]

        code, out, err = await werkbrug(settings, "subject-requests", "--at-risk")
        assert code == 0, err
        [row] = [line for line in out.splitlines() if request_id in line]
        assert "at_risk" in row and "open" in row
        code, out, _ = await werkbrug(settings, "subject-requests", "--status", "completed", "--json")
        assert code == 0 and request_id not in out

        code, out, err = await werkbrug(settings, "subject-request", "chase")
        assert code == 0 and f"request {request_id}: escalated" in out, err
        code, out, _ = await werkbrug(settings, "subject-request", "show", request_id)
        assert "escalated" in out and "billing" in out and "at_risk" in out

        notice = tmp_path / "extension.html"
        code, _, err = await werkbrug(settings, "subject-request", "letter", request_id, "--html", str(notice))
        assert code == 1 and "open" in err and not notice.exists(), "no letter while the answers are not all in"
        code, out, err = await werkbrug(settings, "subject-request", "extend", request_id, "--reason",
                                        "complex_request", "--told-at", datetime.now(UTC).isoformat(), "--json")
        assert code == 0, err
        extended = json.loads(out)["result"]
        assert extended["extended"] and extended["due"] > extended["original_due"]
        code, _, err = await werkbrug(settings, "subject-request", "letter", request_id, "--html", str(notice))
        assert code == 0, err
        assert "wij hebben meer tijd nodig" in notice.read_text() and "Uw vraag is ingewikkeld" in notice.read_text()
        code, _, err = await werkbrug(settings, "subject-request", "extend", request_id, "--reason",
                                      "complex_request", "--told-at", datetime.now(UTC).isoformat())
        assert code == 2 and "invalid_transition" in err, "extended once only"
    finally:
        services.runtimes["billing"] = await _restart(services["billing"], settings, mongodb_urls, span_exporter)
    await _completed(client, request_id)  # nothing left open for the other tests' chase rounds


async def test_an_overdue_request_reads_days_overdue_and_an_extension_told_in_time_counts_when_recorded_late(
        services, client, settings, mongodb_urls, span_exporter, tmp_path, operator_signed_at_the_privacy_desk):
    bsn_file = _bsn_file(tmp_path, synthetic_bsn(random.Random("cli-overdue")))
    code, _, err = await werkbrug(settings, *SUBMIT, "--right", "access", "--received-at",
                                  (datetime.now(UTC) + timedelta(days=2)).isoformat(), bsn_file)
    assert code == 2 and "received_at" in err and "in the future" in err, "a deadline cannot start tomorrow"

    received = datetime.now(UTC) - timedelta(days=40)  # its first month is over
    await services["billing"].stop(keep_tracing=True)  # billing does not answer: the request stays open
    try:
        code, out, err = await werkbrug(settings, *SUBMIT, "--right", "access", "--received-at",
                                        received.isoformat(), bsn_file, "--json")
        assert code == 0, err
        request_id = json.loads(out)["result"]["request_id"]
        code, out, err = await werkbrug(settings, "subject-request", "chase")  # (or the service's own round)
        assert code == 0, err
        code, out, err = await werkbrug(settings, "subject-request", "show", request_id, "--json")
        escalation = json.loads(out)["result"]["escalation"]
        assert re.match(r"\d+ days overdue; waiting for billing", escalation), escalation

        told = (received + timedelta(days=20)).astimezone(ZoneInfo("Europe/Amsterdam")).replace(tzinfo=None)
        code, out, err = await werkbrug(settings, "subject-request", "extend", request_id, "--reason",
                                        "complex_request", "--told-at", told.isoformat(timespec="minutes"), "--json")
        assert code == 0, err  # told within the first month; recorded only now
        extended = json.loads(out)["result"]
        assert extended["extended"] and extended["due"] > extended["original_due"]
    finally:
        services.runtimes["billing"] = await _restart(services["billing"], settings, mongodb_urls, span_exporter)
    await _completed(client, request_id)


async def test_breaches_show_what_the_register_needs_and_a_time_without_offset_is_dutch_time_as_everywhere(
        services, client, settings, tmp_path):
    code, out, err = await werkbrug(settings, "breach", "report", "--party", "heliomare", "--detected-at",
                                    "2026-07-01T09:30", "--cause", "misdirected_message", "--data",
                                    "contact", "--data", "identification", "--since", "2026-06-30T08:00",
                                    "--until", "2026-07-01T09:00", "--count", "3", "--json")
    assert code == 0, err
    reported = json.loads(out)["result"]
    assert reported["detected_at"] == "2026-07-01T07:30:00+00:00"  # 09:30 summer time in the Netherlands
    assert reported["window"]["since"] == "2026-06-30T06:00:00+00:00"

    code, out, err = await werkbrug(settings, "breaches", "--party", "heliomare")
    assert code == 0, err
    assert "misdirected_message" in out and "contact" in out and "identification" in out
    assert "3 (jobseekers)" in out
    assert "2026-07-01 09:30" in out  # shown in Dutch time, as typed

    letter = tmp_path / "breach.html"
    code, _, err = await werkbrug(settings, "breach", "letter", reported["breach_id"], "--party", "heliomare",
                                  "--html", str(letter))
    assert code == 2 and "not recorded yet" in err and not letter.exists()
    code, _, err = await werkbrug(settings, "breach", "decide-subjects", reported["breach_id"], "--party",
                                  "heliomare", "--inform", "--reason", "high_risk")
    assert code == 0, err
    code, _, err = await werkbrug(settings, "breach", "letter", reported["breach_id"], "--party", "heliomare",
                                  "--measure", "recipient_asked_to_delete", "--html", str(letter))
    assert code == 0, err
    text = letter.read_text()
    assert "Er is een datalek geweest" in text and "30 juni 2026 om 08:00" in text  # Dutch time, in words
    assert "Wij hebben de ontvanger gevraagd de gegevens te wissen" in text and reported["breach_id"] not in text


async def test_a_restricted_person_is_left_out_of_lists_refused_in_views_and_read_only_by_the_officer_handling_it(
        services, client, settings, tmp_path, operator_signed_at_the_privacy_desk):
    today = datetime.now(UTC).date()
    for service, staff in (("intake", OPERATOR), ("offer", OPERATOR), ("subject_rights", "desk.enkhuizen")):
        signed = await client.send(service, RecordConfidentialityStatement(staff=staff, signed_on=today,
                                                                           actor="privacy.officer"))
        assert signed.ok, signed.reasons
    restricted, other = await play_all(client, cases_for([("approve", "both", "running")] * 2, seed=763), seed=763)
    code, out, err = await werkbrug(settings, *SUBMIT, "--right", "restriction",
                                    _bsn_file(tmp_path, restricted.command.bsn), "--json")
    assert code == 0, err
    request_id = json.loads(out)["result"]["request_id"]
    await _completed(client, request_id)

    for service in ("intake", "offer"):  # the person's data, even for staff with a statement: refused
        code, out, err = await werkbrug(settings, "person", restricted.referral_id, "--service", service)
        assert code == 2 and "subject_restricted" in err, (service, out)
        assert restricted.command.family_name not in out + err
    code, out, err = await werkbrug(settings, "person", other.referral_id)
    assert code == 0 and other.command.family_name in out, err  # everyone else as before
    for service in ("intake", "offer", "trajectory", "billing"):  # left out of the lists, which still answer
        listed = await client.send(service, ListReferrals(limit=1000))
        assert listed.ok, listed.reasons
        ids = {r["referral_id"] for r in listed.result}
        assert other.referral_id in ids and restricted.referral_id not in ids, service
    code, out, err = await werkbrug(settings, "invoices", "--json")
    assert code == 0 and restricted.referral_id not in out and other.referral_id in out, err

    # Its data is read only by the privacy officer handling the request (the one who took it).
    reply = await client.send("subject_rights", GetSubjectRequest(request_id=uuid.UUID(request_id), actor=OPERATOR))
    assert reply.ok, reply.reasons
    code, out, err = await werkbrug(settings, "--as", "desk.enkhuizen", "subject-request", "show", request_id)
    assert code == 2 and "subject_restricted" in err, out

    # Lifted again (after telling the person), so the other tests of the run see every invoice number.
    lift = await client.send("subject_rights", SubmitSubjectRequest(
        bsn=restricted.command.bsn, right=Right.LIFT_RESTRICTION, person_told_at=datetime.now(UTC), actor=OPERATOR,
        identity=IdentityCheck(method="id_document_at_desk", verified_by="desk.hoorn", verified_at=datetime.now(UTC))))
    assert lift.ok, lift.reasons
    await _completed(client, lift.result["request_id"])
