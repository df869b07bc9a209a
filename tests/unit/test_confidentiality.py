"""Confidentiality (agreement art 8): personal data only for staff with a confidentiality statement in force,
checked once by the messaging core for every query that reveals it, and every command's processing-log records
name the actor."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.offer.bootstrap import definition as offer_definition
from shared.contracts.commands import (
    GetReferral,
    GetSubjectRequest,
    ListConfidentialityStatements,
    ListInvoices,
    ListReferrals,
    RecordConfidentialityStatement,
    status_view,
)
from shared.unit_of_work import ConfidentialityStatement
from tests.unit.test_pipeline import Service, registered_case

TODAY = datetime.now(UTC).date()


@pytest.fixture
def offer() -> Service:
    return Service(offer_definition())


async def sign(service: Service, staff: str, signed_on: date = TODAY, ended_on: date | None = None) -> dict:
    return await service.command(RecordConfidentialityStatement(staff=staff, signed_on=signed_on, ended_on=ended_on,
                                                                actor="privacy.officer"))


def codes(reply: dict) -> list[str]:
    return [r["code"] for r in reply["reasons"]]


async def test_staff_with_a_statement_see_the_persons_data_and_the_read_is_logged_naming_them(offer):
    referral_id = await registered_case(offer, accept=False)
    assert (await sign(offer, "am.jansen"))["ok"]
    reply = await offer.command(GetReferral(referral_id=referral_id, with_person=True, actor="am.jansen"))
    assert reply["ok"], reply["reasons"]
    assert reply["result"]["person"]["bsn"] and reply["result"]["person"]["family_name"]
    [read] = [r for r in offer.store.processing_log if r.message_type == "query:get_referral"]
    assert read.actor == "am.jansen" and read.subject == reply["result"]["subject"]


@pytest.mark.parametrize(("actor", "statement", "code"), [
    (None, None, "actor_missing"),
    ("am.pietersen", None, "no_confidentiality_statement"),
    ("am.pietersen", (TODAY + timedelta(days=1), None), "no_confidentiality_statement"),  # not yet signed
    ("am.pietersen", (TODAY - timedelta(days=30), TODAY), "no_confidentiality_statement"),  # ended today
])
async def test_personal_data_is_refused_to_staff_without_a_statement_in_force(offer, actor, statement, code):
    referral_id = await registered_case(offer, accept=False)
    if statement:
        assert (await sign(offer, "am.pietersen", *statement))["ok"]
    reply = await offer.as_given(GetReferral(referral_id=referral_id, with_person=True, actor=actor))
    assert not reply["ok"] and codes(reply) == [code]
    # No read, but the attempt is logged: refused, marked as an attempted personal-data read, about the referral's
    # subject, naming the actor when the register knows them.
    [attempt] = [r for r in offer.store.processing_log if r.message_type == "query:get_referral"]
    assert (attempt.status, attempt.kind, attempt.reasons) == ("refused", "personal_data_read", [code])
    assert attempt.actor == (actor or "(unknown)") and attempt.subject and attempt.correlation_id == referral_id


async def test_a_view_without_personal_data_needs_no_statement_but_still_names_the_actor(offer):
    referral_id = await registered_case(offer, accept=False)
    reply = await offer.command(GetReferral(referral_id=referral_id, actor="am.pietersen"))
    assert reply["ok"] and "person" not in reply["result"]
    assert (await offer.command(ListReferrals(actor="am.pietersen")))["ok"]
    assert {r.actor for r in offer.store.processing_log if r.message_type.startswith("query:")} == {"am.pietersen"}


async def test_a_statement_is_recorded_only_by_a_named_actor_and_is_listed(offer):
    refused = await offer.as_given(RecordConfidentialityStatement(staff="am.jansen", signed_on=TODAY))
    assert codes(refused) == ["actor_missing"]
    await sign(offer, "am.jansen", TODAY - timedelta(days=3))
    [listed] = (await offer.command(ListConfidentialityStatements(actor="privacy.officer")))["result"]
    assert listed == {"staff": "am.jansen", "signed_on": (TODAY - timedelta(days=3)).isoformat(),
                      "recorded_by": "privacy.officer", "ended_on": None, "applies": True}
    await sign(offer, "am.jansen", TODAY - timedelta(days=3), ended_on=TODAY)  # left: it ends
    [listed] = (await offer.command(ListConfidentialityStatements(actor="privacy.officer")))["result"]
    assert listed["applies"] is False


def test_which_queries_reveal_personal_data():
    import uuid

    assert GetSubjectRequest(request_id=uuid.uuid4()).reveals_personal_data()
    assert GetReferral(referral_id=uuid.uuid4(), with_person=True).reveals_personal_data()
    assert not GetReferral(referral_id=uuid.uuid4()).reveals_personal_data()
    assert not ListReferrals().reveals_personal_data()
    assert ListReferrals(detail=True).reveals_personal_data()
    assert GetReferral(referral_id=uuid.uuid4(), detail=True).reveals_personal_data()
    assert ListInvoices(detail=True).reveals_personal_data() and not ListInvoices().reveals_personal_data()


async def test_without_detail_a_referral_view_shows_states_and_ids_only(offer):
    referral_id = await registered_case(offer, accept=False)
    [listed] = (await offer.command(ListReferrals(actor="am.pietersen")))["result"]
    one = (await offer.command(GetReferral(referral_id=referral_id, actor="am.pietersen")))["result"]
    for view in (listed, one):
        assert view["referral_id"] == str(referral_id) and view["status"] == "registered" and view["subject"]
        assert not {"municipality", "support_need", "decline_reason"} & set(view)


async def test_the_detail_of_a_referral_is_shown_only_under_a_statement(offer):
    referral_id = await registered_case(offer, accept=False)
    refused = await offer.command(ListReferrals(detail=True, actor="am.pietersen"))
    assert codes(refused) == ["no_confidentiality_statement"]
    assert (await sign(offer, "am.pietersen"))["ok"]
    [listed] = (await offer.command(ListReferrals(detail=True, actor="am.pietersen")))["result"]
    one = (await offer.command(GetReferral(referral_id=referral_id, detail=True, actor="am.pietersen")))["result"]
    assert listed["municipality"] and listed["support_need"] and one["municipality"] == listed["municipality"]


def test_the_status_view_keeps_only_its_keys_at_every_depth():
    view = {"referral_id": "r", "status": "s", "municipality": "hoorn", "approved_amount": "10.00",
            "quotes": [{"quote_id": "q", "sequence": 1, "amount": "10.00", "decision": "approved"}],
            "trajectory": {"trajectory_id": "t", "outcome": "paid_work"},
            "invoices": [{"number": "2027-0001", "moment": "advance", "total": "12.10", "invoice_date": "2027-01-04"}],
            "deliveries": [{"type": "quote.sent", "retour": {"status": "accepted", "reasons": [{"code": "c"}]}}]}
    assert status_view(view) == {
        "referral_id": "r", "status": "s", "quotes": [{"quote_id": "q", "sequence": 1, "decision": "approved"}],
        "invoices": [{"number": "2027-0001", "moment": "advance"}],
        "deliveries": [{"type": "quote.sent", "retour": {"status": "accepted", "reasons": [{"code": "c"}]}}]}


def test_a_statement_applies_from_its_signing_until_the_day_it_ends():
    s = ConfidentialityStatement("x1", date(2027, 1, 10), "po", datetime.now(UTC), ended_on=date(2027, 2, 1))
    assert [s.applies_on(d) for d in (date(2027, 1, 9), date(2027, 1, 10), date(2027, 1, 31), date(2027, 2, 1))] == [
        False, True, True, False]


def test_the_command_line_refuses_to_run_without_knowing_who_gives_the_command(monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.delenv("WERKBRUG_ACTOR", raising=False)
    result = CliRunner().invoke(app, ["referrals"])
    assert result.exit_code == 2 and "--as" in result.output
    assert CliRunner().invoke(app, ["--as", "Not Valid!", "referrals"]).exit_code == 2


async def test_reading_a_parked_body_is_refused_without_a_statement_and_logged_with_one(offer):
    import json
    import uuid

    from shared.contracts.commands import RecordDeadLetterRead
    from shared.messaging.pipeline import dead_letter_key
    from tests.unit.test_pipeline import _unknown_field_in_data

    raw = _unknown_field_in_data()
    await offer.pipeline.handle_event(raw)
    envelope = json.loads(raw.body)
    read = RecordDeadLetterRead(key=dead_letter_key(raw.message_id, raw.body), subject=envelope["subject"],
                                correlation_id=uuid.UUID(envelope["correlation_id"]), actor="ops.signed")
    refused = await offer.as_given(read)
    assert codes(refused) == ["no_confidentiality_statement"]
    # The refused attempt is logged too (a refused personal-data read naming the member), and reveals nothing.
    [attempt] = [r for r in offer.store.processing_log if r.message_type == "query:record_dead_letter_read"]
    assert (attempt.status, attempt.kind, attempt.actor) == ("refused", "personal_data_read", "ops.signed")
    assert codes(await offer.as_given(read.model_copy(update={"actor": "am.jansen"}))) == ["role_not_permitted"]

    assert (await sign(offer, "ops.signed"))["ok"]
    reply = await offer.as_given(read)
    assert reply["ok"] and reply["result"]["recorded"] is True, reply
    [record] = [r for r in offer.store.processing_log
                if r.message_type == "query:record_dead_letter_read" and r.status == "ok"]
    assert (record.actor, record.subject, record.message_id, str(record.correlation_id)) == (
        "ops.signed", envelope["subject"], f"dead-letter:{read.key}", envelope["correlation_id"])
