"""Laxness (issue 14 item 5): the envelope and event data are read strictly, as their JSON Schema says (no string
that happens to hold a number taken for the number), and dates no person or trajectory can have are refused,
at submit and on receipt. Each refusal shows its reason code and that nothing was stored or sent."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.intake.domain import ReferralStatus
from shared.contracts.events import ReferralRegistered
from shared.contracts.parties import Party
from shared.contracts.personal import OLDEST_AGE, date_of_birth_reasons
from shared.contracts.reasons import ReasonCode, Refusal
from tests.unit.builders import (
    a_quote_sent,
    a_referral_registered,
    a_send_quote,
    a_submit_referral,
    an_envelope,
    raw_of,
)
from tests.unit.test_intake_trajectory import approved, started
from tests.unit.test_pipeline import SUBJECT, Service, registration, registration_document

TODAY = datetime.now(UTC).date()


@pytest.fixture
def offer() -> Service:
    from services.offer.bootstrap import definition

    return Service(definition())


@pytest.fixture
def intake() -> Service:
    from services.intake.bootstrap import definition
    from shared.config import Settings
    from tests.unit.builders import PSEUDONYM_KEY

    return Service(definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)))


def _codes_and_fields(reasons) -> list[tuple[str, str | None]]:
    return [(str(r.code if hasattr(r, "code") else r["code"]), r.field if hasattr(r, "field") else r["field"])
            for r in reasons]


# -- strict envelope and data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [
    pytest.param("version", "1", id="version-as-string"),
    pytest.param("version", 1.0, id="version-as-float"),
    pytest.param("version", True, id="version-as-boolean"),
])
async def test_an_envelope_number_given_as_anything_else_is_refused(offer, field, value):
    document = registration().model_dump(mode="json")
    document[field] = value
    outcome = await offer.pipeline.handle_event(raw_of(document,
                                                       routing_key="werksaam.heliomare.referral.registered.v2"))
    assert outcome.status == "dead_lettered"
    assert _codes_and_fields(outcome.reasons) == [("invalid_value", "version")]
    assert offer.store.aggregates("cases") == []
    assert [(e.type, e.data["status"]) for e in offer.store.outbox] == [("retour.issued", "rejected")]


async def test_a_number_in_event_data_given_as_a_string_is_refused(intake):
    quote = a_quote_sent(uuid.uuid4()).model_dump(mode="json")
    quote["duration_weeks"] = "26"
    envelope = an_envelope(a_quote_sent(uuid.uuid4()), Party.HELIOMARE, subject=SUBJECT).model_dump(mode="json")
    envelope["data"] = quote
    envelope["correlation_id"] = quote["referral_id"]
    outcome = await intake.pipeline.handle_event(raw_of(envelope, routing_key="heliomare.werksaam.quote.sent.v2"))
    assert outcome.status == "dead_lettered"
    assert _codes_and_fields(outcome.reasons) == [("invalid_value", "data.duration_weeks")]
    assert intake.store.aggregates("referrals") == []
    assert [e.data["status"] for e in intake.store.outbox] == ["rejected"]  # only the answer: rejected


async def test_a_boolean_or_null_where_the_contract_has_none_is_refused(offer):
    outcome = await offer.pipeline.handle_event(raw_of(registration_document(referral_id=1, given_name=True)))
    assert sorted(_codes_and_fields(outcome.reasons)) == [("invalid_value", "data.given_name"),
                                                          ("invalid_value", "data.referral_id")]
    assert offer.store.aggregates("cases") == []


async def test_dates_ids_and_amounts_are_still_read_from_their_json_strings(offer):
    document = registration().model_dump(mode="json")
    assert isinstance(document["data"]["date_of_birth"], str) and isinstance(document["id"], str)
    outcome = await offer.pipeline.handle_event(raw_of(document))
    assert outcome.status == "accepted"
    [case] = offer.store.aggregates("cases")
    assert case.client.date_of_birth == date(1991, 4, 12)


def test_the_published_schema_says_the_version_is_a_number_not_a_string():
    from shared.contracts.envelope import envelope_model

    schema = envelope_model(ReferralRegistered).model_json_schema()
    version = schema["properties"]["version"]
    assert version.get("const") == 2 and version.get("type") == "integer"
    assert schema["$defs"]["ReferralRegistered"]["properties"]["date_of_birth"]["type"] == "string"


# -- dates of birth -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("born,detail", [
    pytest.param(TODAY + timedelta(days=1), "in the future", id="tomorrow"),
    pytest.param(date(TODAY.year + 30, 1, 1), "in the future", id="decades-ahead"),
    pytest.param(date(TODAY.year - OLDEST_AGE - 1, 1, 1), f"more than {OLDEST_AGE} years ago", id="too-old"),
    pytest.param(date(1, 1, 1), f"more than {OLDEST_AGE} years ago", id="year-one"),
])
async def test_a_referral_with_an_impossible_date_of_birth_is_refused_at_submit(intake, born, detail):
    reply = await intake.command(a_submit_referral(date_of_birth=born))
    assert reply["ok"] is False
    assert [(r["code"], r["field"], r["detail"]) for r in reply["reasons"]] == [
        ("date_implausible", "date_of_birth", detail)]
    assert born.isoformat() not in json.dumps(reply)
    assert not [e for e in intake.store.outbox if e.type == "referral.registered"], "nothing sent to Heliomare"
    [referral] = intake.store.aggregates("referrals")
    assert referral.status == ReferralStatus.REFUSED and referral.person is None, "no personal data kept"


def test_a_date_of_birth_today_or_within_the_oldest_age_is_plausible():
    assert date_of_birth_reasons(TODAY, TODAY) == []
    assert date_of_birth_reasons(date(TODAY.year - OLDEST_AGE + 1, 1, 1), TODAY) == []
    assert date_of_birth_reasons(date(2000, 2, 29), date(2100, 2, 28)) == []


async def test_a_registration_with_a_date_of_birth_in_the_future_is_refused_on_receipt(offer):
    env = an_envelope(a_referral_registered(date_of_birth=TODAY + timedelta(days=400)), Party.WERKSAAM,
                      subject=SUBJECT)
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert outcome.status == "rejected"
    assert _codes_and_fields(outcome.reasons) == [("date_implausible", "data.date_of_birth")]
    assert offer.store.aggregates("cases") == [], "nothing kept"
    [retour] = offer.retours()
    assert retour.status == "rejected" and [r.code for r in retour.reasons] == [ReasonCode.DATE_IMPLAUSIBLE]


# -- nothing starts before the referral -----------------------------------------------------------------------


async def test_a_quote_planned_to_start_before_the_referral_is_refused(offer):
    from tests.unit.test_pipeline import registered_case

    referral_id = await registered_case(offer)
    before = len(offer.store.outbox)
    reply = await offer.command(a_send_quote(referral_id, planned_start=TODAY - timedelta(days=1)))
    assert reply["ok"] is False
    assert [(r["code"], r["field"]) for r in reply["reasons"]] == [("date_before_referral", "planned_start")]
    [case] = offer.store.aggregates("cases")
    assert case.quotes == [] and len(offer.store.outbox) == before, "no quote kept, none sent"


def test_a_quote_received_that_starts_before_the_referral_is_refused():
    from tests.unit.test_intake_domain import registered

    referral = registered()
    quote = a_quote_sent(referral.id).model_copy(update={"planned_start": referral.submitted_at.date()
                                                         - timedelta(days=1)})
    with pytest.raises(Refusal) as refused:
        referral.quote_received(quote)
    assert _codes_and_fields(refused.value.reasons) == [("date_before_referral", "data.planned_start")]
    assert referral.quotes == [] and referral.status == ReferralStatus.REGISTERED


def test_a_trajectory_reported_to_start_before_its_referral_is_refused():
    referral, quote_id = approved()
    status = referral.status
    with pytest.raises(Refusal) as refused:
        referral.trajectory_started(started(referral, quote_id, on=referral.submitted_at.date() - timedelta(days=1)))
    assert _codes_and_fields(refused.value.reasons) == [("date_before_referral", "data.start_date")]
    assert referral.status == status
    assert referral.trajectory is None or referral.trajectory.start_date is None
