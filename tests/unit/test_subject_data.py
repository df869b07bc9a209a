"""How every service carries out a data-subject request (one mechanism for all), how the pipeline respects
a restriction, an objection and an erasure, and the retention job; driven with in-memory fakes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.intake.bootstrap import definition as intake_definition
from services.intake.domain import Referral, ReferralStatus
from services.offer.bootstrap import definition as offer_definition
from services.offer.domain import CaseStatus
from shared.config import Settings
from shared.contracts.commands import DecideReferral, GetReferral, ListReferrals
from shared.contracts.events import (
    QuoteApproved,
    Right,
    SubjectRequestAnswered,
    SubjectRequestIssued,
)
from shared.contracts.parties import Party
from shared.contracts.personal import PersonalData
from shared.contracts.reasons import ReasonCode
from shared.privacy.grounds import ARCHIEFWET_REINTEGRATION, FISCAL_ADMINISTRATION
from shared.privacy.pseudonym import mentions
from shared.privacy.register import load_register
from shared.privacy.retention import RetentionJob
from shared.privacy.subject_data import processing_information
from tests.unit.builders import (
    PSEUDONYM_KEY,
    a_referral_registered,
    a_submit_referral,
    an_envelope,
    pseudonymise,
    raw_of,
)
from tests.unit.test_pipeline import SUBJECT, Service, registration


@pytest.fixture
def offer() -> Service:
    return Service(offer_definition())


def request(right: Right, subject: str = SUBJECT, **fields):
    fields.setdefault("parties", [Party.WERKSAAM, Party.HELIOMARE])
    data = SubjectRequestIssued(request_id=uuid.uuid4(), right=right, due=date(2027, 2, 28), **fields)
    return an_envelope(data, Party.WERKSAAM, subject=subject)


async def ask(service: Service, right: Right, **fields) -> SubjectRequestAnswered:
    envelope = request(right, **fields)
    outcome = await service.pipeline.handle_event(raw_of(envelope))
    assert outcome.status == "accepted", outcome.reasons
    [answer] = [e for e in service.store.outbox_of("subject-request.answered") if e.correlation_id ==
                envelope.correlation_id]
    return SubjectRequestAnswered.model_validate(answer.data)


async def registered(offer: Service, referral_id: uuid.UUID | None = None, subject: str = SUBJECT) -> uuid.UUID:
    envelope = registration(referral_id or uuid.uuid4())
    if subject != SUBJECT:
        envelope = envelope.model_copy(update={"subject": subject})
    assert (await offer.pipeline.handle_event(raw_of(envelope))).status == "accepted"
    return envelope.correlation_id


async def test_access_answers_with_every_record_the_art_15_information_and_the_processing_log(offer):
    referral = await registered(offer)
    answer = await ask(offer, Right.ACCESS)
    assert answer.outcome == "done" and answer.service == "offer"
    [record] = answer.records
    assert record.record_id == str(referral) and record.status == "held"
    assert record.data["client"]["family_name"] == a_referral_registered().family_name
    activities = {i.activity for i in answer.information}
    assert "urn:werkbrug:activity:heliomare:referral-registration:v2" in activities
    assert all(i.purpose and i.legal_basis == "GDPR 6(1)(b)" and i.retention for i in answer.information)
    assert answer.processing_log and {r["subject"] for r in answer.processing_log} == {SUBJECT}
    assert "received from werksaam" in {i.source for i in answer.information}


async def test_a_request_about_someone_the_service_does_not_know_is_answered_nothing_held(offer):
    answer = await ask(offer, Right.ACCESS, subject=pseudonymise("111222333"))
    assert answer.outcome == "nothing_held" and answer.records == []


async def test_rectification_corrects_the_record_and_names_the_recipients_it_was_passed_on_to(offer):
    referral = await registered(offer)
    answer = await ask(offer, Right.RECTIFICATION, corrections={"family_name": "Jansen", "phone": "06 12345678"})
    assert [r.status for r in answer.records] == ["rectified"]
    assert answer.recipients_notified == ["werksaam"]
    case = offer.store.rows["cases"][referral]
    assert case.client.family_name == "Jansen" and case.client.phone == "06 12345678"


async def test_erasure_deletes_the_records_shreds_the_key_and_reports_nothing_left_readable(offer):
    referral = await registered(offer)
    answer = await ask(offer, Right.ERASURE)
    assert [(r.record_id, r.status) for r in answer.records] == [(str(referral), "erased")]
    assert answer.readable_after == [] and offer.store.rows["cases"] == {}
    assert SUBJECT in offer.store.shredded
    assert offer.store.subject_states[SUBJECT].erased_at is not None


@pytest.mark.parametrize("right", [Right.ERASURE, Right.OBJECTION, Right.RESTRICTION, Right.RECTIFICATION])
async def test_a_request_for_another_party_has_no_effect_and_gets_no_answer(offer, right):
    referral = await registered(offer)
    extra = {"corrections": {"family_name": "Anders"}} if right == Right.RECTIFICATION else {}
    envelope = request(right, parties=[Party.WERKSAAM], **extra)
    assert (await offer.pipeline.handle_event(raw_of(envelope))).status == "accepted"
    assert offer.store.outbox_of("subject-request.answered") == []
    assert referral in offer.store.rows["cases"] and SUBJECT not in offer.store.shredded
    state = offer.store.subject_states.get(SUBJECT)
    assert state is None or (state.erased_at, state.restricted_since, state.objected_since) == (None, None, None)
    accepted = await offer.command(DecideReferral(referral_id=referral, accept=True))
    assert accepted["ok"], accepted["reasons"]


async def test_a_record_a_legal_duty_keeps_is_withheld_with_its_ground_and_stays_the_only_readable_thing(
        monkeypatch):
    intake = Service(intake_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)))
    reply = await intake.command(a_submit_referral())
    referral = uuid.UUID(reply["result"]["referral_id"])
    intake.store.rows["referrals"][referral].status = ReferralStatus.TRAJECTORY_RUNNING
    # an approved quote makes the referral part of WerkSaam's re-integration file and its payments
    monkeypatch.setattr(Referral, "approved_amount", lambda self: Decimal("4800.00"))

    assert (await intake.pipeline.handle_event(raw_of(request(Right.ERASURE)))).status == "accepted"
    [sent] = intake.store.outbox_of("subject-request.answered")
    answer = SubjectRequestAnswered.model_validate(sent.data)
    [record] = answer.records
    assert record.status == "withheld" and "Archiefwet" in record.ground and "17(3)(b)" in record.ground
    assert record.keep_until >= date.today() + timedelta(days=365 * 7 - 2)
    assert answer.readable_after == [f"referrals/{referral}"]
    assert intake.store.withheld["referrals"][referral].ground == record.ground
    assert referral in intake.store.rows["referrals"]


async def test_restriction_makes_the_pipeline_refuse_further_processing_until_lifted(offer):
    referral = await registered(offer)
    await ask(offer, Right.RESTRICTION)
    refused = await offer.command(DecideReferral(referral_id=referral, accept=True))
    assert not refused["ok"] and [r["code"] for r in refused["reasons"]] == ["subject_restricted"]
    approval = an_envelope(QuoteApproved(referral_id=referral, quote_id=uuid.uuid4(), approved_amount="10.00"),
                           Party.WERKSAAM, subject=SUBJECT)
    outcome = await offer.pipeline.handle_event(raw_of(approval))
    assert outcome.status == "rejected" and outcome.reasons[0].code == ReasonCode.SUBJECT_RESTRICTED
    assert offer.retours()[-1].status == "rejected"  # the sender is told
    await ask(offer, Right.LIFT_RESTRICTION)
    accepted = await offer.command(DecideReferral(referral_id=referral, accept=True))
    assert accepted["ok"] and offer.store.rows["cases"][referral].status == CaseStatus.ACCEPTED


@pytest.mark.parametrize("right", [Right.RESTRICTION, Right.OBJECTION])
async def test_a_restricted_or_objecting_person_is_left_out_of_lists_and_views_which_go_on_for_everyone_else(
        offer, right):
    other_subject = "psn_" + "d" * 26
    restricted, other = await registered(offer), await registered(offer, subject=other_subject)
    offer.store.processing_log.clear()
    await ask(offer, right)

    listed = await offer.command(ListReferrals())
    assert listed["ok"] and [r["referral_id"] for r in listed["result"]] == [str(other)]
    one = await offer.command(GetReferral(referral_id=restricted))
    assert not one["ok"] and [r["code"] for r in one["reasons"]] == ["subject_restricted"]
    assert (await offer.command(GetReferral(referral_id=other)))["ok"]
    # the person's records were not processed by the list: no processing-log record names them for it
    reads = [r for r in offer.store.processing_log if r.message_type == "query:list_referrals"]
    assert {r.subject for r in reads} == {other_subject}


async def test_a_message_written_before_the_erasure_cannot_bring_the_data_back_but_a_new_referral_can(offer):
    await registered(offer)
    await ask(offer, Right.ERASURE)
    late = registration(uuid.uuid4())
    late = late.model_copy(update={"time": datetime.now(UTC) - timedelta(minutes=1)})
    outcome = await offer.pipeline.handle_event(raw_of(late))
    assert outcome.status == "rejected" and outcome.reasons[0].code == ReasonCode.SUBJECT_ERASED
    assert offer.store.rows["cases"] == {} and offer.dead_letters.letters == []  # not parked either
    new = registration(uuid.uuid4())
    new = new.model_copy(update={"time": datetime.now(UTC) + timedelta(seconds=1)})
    assert (await offer.pipeline.handle_event(raw_of(new))).status == "accepted"


async def test_the_retention_job_destroys_records_whose_period_passed_and_logs_each_destruction(offer):
    referral = await registered(offer)
    await offer.command(DecideReferral(referral_id=referral, accept=False, decline_reason="no_capacity"))
    open_one = await registered(offer, subject=pseudonymise("111222333"))
    job = RetentionJob("offer", Party.HELIOMARE, offer.definition.repositories, offer.store.unit_of_work)

    assert (await job.run(datetime.now(UTC) + timedelta(days=365 * 7 - 5))).total == 0  # not yet
    report = await job.run(datetime.now(UTC) + timedelta(days=365 * 7 + 2))
    assert report.destroyed == {"cases": 1} and report.subjects_shredded == 1
    assert set(offer.store.rows["cases"]) == {open_one}  # an open case is still needed
    assert SUBJECT in offer.store.shredded
    [logged] = [r for r in offer.store.processing_log if r.operation == "offer.retention"]
    assert logged.subject == SUBJECT and logged.activity_id == "urn:werkbrug:activity:heliomare:retention:v1"


def test_a_dead_letter_is_found_by_the_pseudonym_or_by_a_bsn_anywhere_in_it():
    bsn = "111222333"
    subject = pseudonymise(bsn)
    assert mentions(f'{{"subject": "{subject}"}}'.encode(), subject, pseudonymise)
    assert mentions(b'{"data": {"person": {"bsn": "111222333"}}}', subject, pseudonymise)
    assert mentions(b'[{"x": [{"bsn": "111222333"}]}]', subject, pseudonymise)
    assert not mentions(b'{"bsn": "123456782"}', subject, pseudonymise)
    assert not mentions(b"\xff not json", subject, pseudonymise)


def test_every_activity_with_personal_data_gives_its_art_15_information_and_its_source():
    info = processing_information(load_register().activity)
    assert info and all(i.purpose and i.retention_ground and i.source for i in info)
    sources = {i.activity: i.source for i in info}
    assert sources["urn:werkbrug:activity:werksaam:referral-intake:v2"].startswith("collected by werksaam")


async def _withheld_referral(monkeypatch) -> tuple[Service, uuid.UUID]:
    intake = Service(intake_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)))
    reply = await intake.command(a_submit_referral())
    referral = uuid.UUID(reply["result"]["referral_id"])
    intake.store.rows["referrals"][referral].status = ReferralStatus.TRAJECTORY_RUNNING
    monkeypatch.setattr(Referral, "approved_amount", lambda self: Decimal("4800.00"))
    assert (await intake.pipeline.handle_event(raw_of(request(Right.ERASURE)))).status == "accepted"
    return intake, referral


async def test_a_withheld_referral_keeps_only_the_personal_fields_the_archiefwet_needs(monkeypatch):
    intake, referral = await _withheld_referral(monkeypatch)
    person = intake.store.rows["referrals"][referral].person
    submitted = a_submit_referral()
    assert (person.bsn, person.family_name, person.date_of_birth) == (
        submitted.bsn, submitted.family_name, submitted.date_of_birth)
    assert (person.postal_code, person.phone, person.email) == (None, None, None)
    withholding = intake.store.withheld["referrals"][referral]
    assert set(withholding.keeps) == set(ARCHIEFWET_REINTEGRATION.keeps) and "Kept:" in withholding.ground


async def test_a_later_access_request_lists_the_withheld_record_and_its_ground_but_copies_none_of_its_values(
        monkeypatch):
    intake, referral = await _withheld_referral(monkeypatch)
    answer = await ask(intake, Right.ACCESS)
    [record] = answer.records
    assert (record.record_id, record.status, record.data) == (str(referral), "withheld", None)
    assert "Archiefwet" in record.ground and record.keep_until
    assert a_submit_referral().bsn not in answer.model_dump_json()


async def test_a_rectification_after_an_erasure_never_brings_back_a_field_the_ground_dropped(monkeypatch):
    intake, referral = await _withheld_referral(monkeypatch)
    await ask(intake, Right.RECTIFICATION, corrections={"phone": "0612345678", "family_name": "Jansen"})
    person = intake.store.rows["referrals"][referral].person
    assert (person.family_name, person.phone) == ("Jansen", None)


async def test_a_rectification_corrects_the_copies_waiting_in_the_outbox_so_they_go_with_the_new_values():
    intake = Service(intake_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)))
    await intake.command(a_submit_referral())
    [waiting] = intake.store.outbox_of("referral.registered")
    await ask(intake, Right.RECTIFICATION, subject=waiting.subject, corrections={"family_name": "Jansen"})
    [corrected] = intake.store.outbox_of("referral.registered")
    assert corrected.id == waiting.id and corrected.data["family_name"] == "Jansen"
    assert {k: v for k, v in corrected.data.items() if k != "family_name"} == {
        k: v for k, v in waiting.data.items() if k != "family_name"}


def test_a_ground_keeps_only_the_fields_it_names_and_says_so():
    held = PersonalData(bsn="111222333", given_name="Anna", family_name="Visser", date_of_birth=date(1990, 1, 2),
                        postal_code="1621AB", phone="0612345678", email="anna@example.org")
    referral = Referral(id=uuid.uuid4(), subject=SUBJECT, status=ReferralStatus.TRAJECTORY_ENDED,
                        submitted_at=datetime.now(UTC), person=held)
    withholding = ARCHIEFWET_REINTEGRATION.withholding(date(2027, 1, 31))
    referral.keep_only_for(withholding)
    assert referral.person.model_dump(exclude_none=True) == {
        "bsn": "111222333", "given_name": "Anna", "family_name": "Visser", "date_of_birth": date(1990, 1, 2)}
    assert withholding.keep_until == date(2034, 1, 31) and "postal code, phone and e-mail" in withholding.ground
    assert FISCAL_ADMINISTRATION.keeps == ()  # billing's account holds no name or contact data to keep
