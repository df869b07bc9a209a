"""The register of processing activities (deny by default) and the processing log it feeds."""

from __future__ import annotations

import dataclasses
import json
import tomllib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError

from services.intake.bootstrap import definition as intake_definition
from services.offer.bootstrap import definition as offer_definition
from shared.config import Settings
from shared.contracts.commands import GetReferral, ReadProcessingLog
from shared.contracts.envelope import EventData, all_event_specs, event
from shared.contracts.events import QuoteSent, ReferralRegistered
from shared.contracts.parties import Party, Role
from shared.messaging.definition import ServiceDefinition
from shared.messaging.pipeline import Pipeline
from shared.privacy.register import REGISTER_PATH, Register, UnregisteredProcessing, load_register, performs
from shared.storage.memory import MemoryStore
from tests.staff import TEST_STAFF, given_by_staff
from tests.unit.builders import PSEUDONYM_KEY, VALID_BSN, a_referral_registered, an_envelope, pseudonymise, raw_of
from tests.unit.fakes import RecordingDeadLetters

SUBJECT = pseudonymise(VALID_BSN)
PROVIDER = TracerProvider()
TRACER = PROVIDER.get_tracer("t")
REGISTRATION = "urn:werkbrug:activity:heliomare:referral-registration:v2"
_ = PSEUDONYM_KEY


async def command(pipeline: Pipeline, query) -> dict:
    query = given_by_staff(TEST_STAFF[pipeline.d.party], query)
    return await pipeline.handle_command(query.model_dump_json().encode(), user_id=pipeline.d.party.value)


def pipeline_for(definition) -> tuple[Pipeline, MemoryStore]:
    store = MemoryStore(definition.party, definition.repositories)
    return Pipeline(definition, store.unit_of_work, RecordingDeadLetters(), TRACER, 64 * 1024,
                    staff=TEST_STAFF[definition.party]), store


def registration():
    return an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT)


# -- the register --------------------------------------------------------------------------------------


def test_the_register_loads_and_every_activity_names_its_partys_legal_basis():
    register = load_register()
    assert {a.party for a in register.activity} == set(Party)
    for activity in register.activity:
        assert activity.legal_basis.value == {"werksaam": "GDPR 6(1)(e)", "heliomare": "GDPR 6(1)(b)"}[activity.party]
        assert activity.version >= 1 and activity.retention.startswith("P")


def test_every_event_types_fields_are_exactly_its_allow_list_in_the_register():
    register = load_register()
    assert set(ReferralRegistered.model_fields) == set(register.allowed_fields(Party.WERKSAAM,
                                                                               "referral.registered.v2"))
    assert set(QuoteSent.model_fields) == set(register.allowed_fields(Party.HELIOMARE, "quote.sent.v2"))
    for spec in all_event_specs():  # what a service checks at start-up, for every event type there is
        register.check_fields(f"{spec.event_type}.v{spec.version}", spec.model.model_fields, spec.sources)


@pytest.fixture
def scratch_event_types(monkeypatch):
    """Event types a test defines are forgotten after it (the registry of event types is process-wide)."""
    import shared.contracts.envelope as envelope_module

    monkeypatch.setattr(envelope_module, "_REGISTRY", dict(envelope_module._REGISTRY))


def _sending(model) -> ServiceDefinition:
    """Intake's definition, also sending `model`."""
    intake = intake_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY))
    return dataclasses.replace(intake, emits=(*intake.emits, model))


def test_a_service_sending_an_event_type_the_register_does_not_grant_does_not_start(scratch_event_types):
    @event("person.gossiped", 1, sent_by={Role.COMMISSIONER}, sent_to={Role.PROVIDER})
    class PersonGossiped(EventData):
        rumour: str

    with pytest.raises(UnregisteredProcessing, match="no activity of werksaam may send"):
        _sending(PersonGossiped).activities()


def test_a_service_sending_an_event_type_with_a_field_beyond_its_allow_list_does_not_start(monkeypatch,
                                                                                           scratch_event_types):
    register = load_register()
    activity = register.sender_of(Party.WERKSAAM, "referral.registered.v2")
    grant = activity.grant("referral.registered.v2")
    # Pretend a second version of the event is registered with the same allow-list...
    v2 = grant.model_copy(update={"message": "referral.registered.v3"})
    widened = activity.model_copy(update={"sends": (*activity.sends, v2)})
    patched = register.model_copy(update={"activity": tuple(widened if a.id == activity.id else a
                                                             for a in register.activity)})
    import shared.messaging.definition as definition_module

    monkeypatch.setattr(definition_module, "load_register", lambda: patched)

    # ...and a model that adds a field the register does not allow.
    @event("referral.registered", 3, sent_by={Role.COMMISSIONER}, sent_to={Role.PROVIDER})
    class Wider(EventData):
        referral_id: uuid.UUID
        religion: str

    with pytest.raises(UnregisteredProcessing, match="register allows"):
        _sending(Wider).activities()


def test_a_register_entry_with_the_wrong_legal_basis_is_refused():
    data = tomllib.loads(REGISTER_PATH.read_text())
    data["activity"][0]["legal_basis"] = "GDPR 6(1)(b)"  # WerkSaam's basis is 6(1)(e) (art 9)
    with pytest.raises(ValidationError, match="art 9"):
        Register.model_validate(data)


def test_a_register_entry_whose_id_names_another_party_is_refused():
    data = tomllib.loads(REGISTER_PATH.read_text())
    data["activity"][0]["id"] = "urn:werkbrug:activity:heliomare:referral-intake:v1"
    with pytest.raises(ValidationError, match="another party"):
        Register.model_validate(data)


# -- deny by default at start-up -----------------------------------------------------------------------


def test_a_handler_that_declares_no_activity_is_refused_at_start_up():
    async def undeclared(event, uow):
        return None

    definition = offer_definition()
    broken = dataclasses.replace(definition, event_handlers={**definition.event_handlers,
                                                              ReferralRegistered: undeclared})
    with pytest.raises(UnregisteredProcessing, match="declares no processing activity"):
        pipeline_for(broken)


def test_a_handler_declaring_an_unregistered_activity_is_refused_at_start_up():
    @performs("urn:werkbrug:activity:heliomare:marketing:v1")
    async def marketing(event, uow):
        return None

    definition = offer_definition()
    broken = dataclasses.replace(definition, event_handlers={**definition.event_handlers,
                                                              ReferralRegistered: marketing})
    with pytest.raises(UnregisteredProcessing, match="not in the register"):
        pipeline_for(broken)


def test_a_handler_declaring_another_partys_activity_is_refused_at_start_up():
    @performs("urn:werkbrug:activity:werksaam:referral-intake:v2")
    async def borrowed(event, uow):
        return None

    definition = offer_definition()
    broken = dataclasses.replace(definition, event_handlers={**definition.event_handlers,
                                                              ReferralRegistered: borrowed})
    with pytest.raises(UnregisteredProcessing, match="activity of werksaam"):
        pipeline_for(broken)


def test_a_handler_for_a_message_its_activity_does_not_receive_is_refused_at_start_up():
    @performs("urn:werkbrug:activity:heliomare:quote:v3")  # registered, but it does not receive referrals
    async def wrong_activity(event, uow):
        return None

    definition = offer_definition()
    broken = dataclasses.replace(definition, event_handlers={**definition.event_handlers,
                                                              ReferralRegistered: wrong_activity})
    with pytest.raises(UnregisteredProcessing, match=r"does not receive referral\.registered\.v2"):
        pipeline_for(broken)


def test_a_service_emitting_an_event_its_party_may_not_send_is_refused_at_start_up():
    from shared.contracts.events import QuoteApproved  # WerkSaam's event

    definition = offer_definition()
    broken = dataclasses.replace(definition, emits=(*definition.emits, QuoteApproved))
    with pytest.raises(UnregisteredProcessing, match=r"no activity of heliomare may send quote\.approved\.v2"):
        pipeline_for(broken)


# -- the log --------------------------------------------------------------------------------------------


async def test_a_handled_event_writes_one_record_per_subject_in_its_transaction_linked_to_the_sender():
    pipeline, store = pipeline_for(offer_definition())
    env = registration()
    sender_span = "00f067aa0ba902b7"
    raw = raw_of(env, headers={"traceparent": f"00-4bf92f3577b34da6a3ce929d0e0e4736-{sender_span}-01"})
    with TRACER.start_as_current_span("consume"):
        outcome = await pipeline.handle_event(raw)
    assert outcome.status == "accepted"
    [record] = store.processing_log
    assert record.subject == SUBJECT and "bsn" not in json.dumps(record.model_dump(mode="json"))
    assert record.activity_id == REGISTRATION and record.activity_version == 2
    assert record.legal_basis == "GDPR 6(1)(b)" and record.party == Party.HELIOMARE
    assert record.operation == "offer.on_referral_registered" and record.status == "ok"
    assert record.message_id == str(env.id) and record.correlation_id == env.correlation_id
    assert record.foreign.party == Party.WERKSAAM and record.foreign.span_id == sender_span
    assert record.trace_id != "0" * 32 and len(record.span_id) == 16
    [retour] = store.retours_sent
    assert record.emitted == [retour.id], "the record names what the processing sent"
    assert store.commits == 1, "state, retour and log record in one commit"


async def test_a_refused_event_is_logged_as_refused_and_a_duplicate_is_not_logged_again():
    pipeline, store = pipeline_for(offer_definition())
    env = registration()
    await pipeline.handle_event(raw_of(env))
    again = an_envelope(a_referral_registered(uuid.UUID(env.data["referral_id"])), Party.WERKSAAM, subject=SUBJECT)
    assert (await pipeline.handle_event(raw_of(again))).status == "rejected"  # duplicate_referral
    assert (await pipeline.handle_event(raw_of(env))).status == "duplicate"
    assert [r.status for r in store.processing_log] == ["ok", "refused"]


async def test_a_message_refused_before_it_is_read_is_not_a_processing():
    pipeline, store = pipeline_for(offer_definition())
    await pipeline.handle_event(raw_of(registration(), message_id=str(uuid.uuid4())))  # message_id mismatch
    assert store.processing_log == []


async def test_reading_the_log_needs_a_filter_and_activity_alone_needs_a_range():
    pipeline, _ = pipeline_for(offer_definition())
    unfiltered = await command(pipeline, ReadProcessingLog())
    assert unfiltered["ok"] is False and unfiltered["reasons"][0]["code"] == "unfiltered_read"
    open_ended = await command(pipeline, ReadProcessingLog(activity_id=REGISTRATION))
    assert open_ended["reasons"][0]["code"] == "unfiltered_read"


async def test_the_log_is_read_by_subject_by_trace_and_by_activity_in_a_time_range_and_the_read_is_logged():
    pipeline, store = pipeline_for(offer_definition())
    with TRACER.start_as_current_span("flow"):
        await pipeline.handle_event(raw_of(registration()))
        trace_id = f"{trace.get_current_span().get_span_context().trace_id:032x}"
    now = datetime.now(UTC)

    async def read(**filters):
        reply = await command(pipeline, ReadProcessingLog(**filters))
        assert reply["ok"], reply["reasons"]
        return reply["result"]

    by_subject = await read(subject=SUBJECT)
    assert [r["operation"] for r in by_subject] == ["offer.on_referral_registered"]
    assert [r["trace_id"] for r in await read(trace_id=trace_id)] == [trace_id]
    minute = timedelta(minutes=1)
    in_range = await read(activity_id=REGISTRATION, since=now - minute, until=now + minute)
    assert len(in_range) == 1
    assert await read(activity_id=REGISTRATION, since=now + minute, until=now + 2 * minute) == []
    reads = [r for r in store.processing_log if r.operation == "offer.read_processing_log"]
    assert reads and {r.activity_id for r in reads} == {"urn:werkbrug:activity:heliomare:processing-log-access:v1"}


def test_an_activity_is_not_changed_under_its_version_and_every_version_is_recorded():
    """Art 14: a change to an activity is agreed by all parties and gets a new version id. The lock file
    records what each version said; `python -m shared.privacy.register` adds newly agreed versions."""
    from shared.privacy.register import LOCK_PATH, changed_without_new_version

    lock = json.loads(LOCK_PATH.read_text())
    register = load_register()
    assert changed_without_new_version(register, lock) == [], "change the activity's version (…:vN+1)"
    assert {a.id for a in register.activity} <= set(lock), "run `python -m shared.privacy.register`"


def test_changing_an_activity_under_the_same_id_is_detected():
    from shared.privacy.register import changed_without_new_version, fingerprint

    register = load_register()
    lock = {a.id: fingerprint(a) for a in register.activity}
    first = register.activity[0]
    quietly_widened = first.model_copy(update={"recipients": (*first.recipients, Party.WERKSAAM)})
    changed = register.model_copy(update={"activity": (quietly_widened, *register.activity[1:])})
    assert changed_without_new_version(changed, lock) == [first.id]


# -- reads of personal data and refused attempts (issue 15, item 6) -----------------------------------------


async def _a_case_and_a_statement(service) -> uuid.UUID:
    from tests.unit.test_confidentiality import sign
    from tests.unit.test_pipeline import registered_case
    referral_id = await registered_case(service, accept=False)
    assert (await sign(service, "am.jansen"))["ok"]
    return referral_id


def _records(service, message_type: str) -> list:
    return [r for r in service.store.processing_log if r.message_type == message_type]


async def test_a_read_of_personal_data_is_marked_apart_from_a_status_read_and_a_change():
    from tests.unit.test_pipeline import Service
    offer = Service(offer_definition())
    referral_id = await _a_case_and_a_statement(offer)
    assert (await offer.command(GetReferral(referral_id=referral_id, actor="am.pietersen")))["ok"]
    assert (await offer.command(GetReferral(referral_id=referral_id, with_person=True, actor="am.jansen")))["ok"]
    status_read, person_read = _records(offer, "query:get_referral")
    assert (status_read.kind, status_read.actor, status_read.status) == ("read", "am.pietersen", "ok")
    assert (person_read.kind, person_read.actor, person_read.status) == ("personal_data_read", "am.jansen", "ok")
    [registered] = [r for r in offer.store.processing_log if r.operation == "offer.on_referral_registered"]
    assert registered.kind == "change" and registered.actor is None
    # Reading the log is a read of personal data too (whose data was processed how), and the answer has the fields.
    read = await offer.command(ReadProcessingLog(correlation_id=referral_id, actor="privacy.officer"))
    assert {(r["kind"], r["actor"]) for r in read["result"] if r["message_type"] == "query:get_referral"} == {
        ("read", "am.pietersen"), ("personal_data_read", "am.jansen")}
    [log_read] = _records(offer, "query:read_processing_log")
    assert (log_read.kind, log_read.actor, log_read.subject) == ("personal_data_read", "privacy.officer", SUBJECT)


CLAIMED = "femke.vanderheijden"  # well-formed, but no member of Heliomare's staff register


@pytest.mark.parametrize(("actor", "with_person", "code", "logged_actor", "kind"), [
    pytest.param(CLAIMED, True, "unknown_actor", "(unknown)", "personal_data_read", id="unknown-actor"),
    pytest.param(None, True, "actor_missing", "(unknown)", "personal_data_read", id="no-actor"),
    pytest.param("am.pietersen", True, "no_confidentiality_statement", "am.pietersen", "personal_data_read",
                 id="no-statement"),
    pytest.param("privacy.officer", None, "role_not_permitted", "privacy.officer", "change",
                 id="role-not-permitted"),
])
async def test_a_refused_attempt_leaves_a_refused_record_naming_the_actor_or_a_placeholder(
        actor, with_person, code, logged_actor, kind):
    from shared.contracts.commands import DecideReferral
    from tests.unit.test_pipeline import Service
    offer = Service(offer_definition())
    referral_id = await _a_case_and_a_statement(offer)
    before = len(offer.store.processing_log)
    attempt = (GetReferral(referral_id=referral_id, with_person=True, actor=actor) if with_person
               else DecideReferral(referral_id=referral_id, accept=True, actor=actor))
    reply = await offer.as_given(attempt)
    assert not reply["ok"] and [r["code"] for r in reply["reasons"]] == [code]
    [record] = offer.store.processing_log[before:]
    assert (record.status, record.reasons, record.actor, record.kind) == ("refused", [code], logged_actor, kind)
    assert record.subject == SUBJECT and record.correlation_id == referral_id, "about the referral's subject"
    assert record.operation.startswith("offer.") and record.message_id == f"command:{attempt.command_id}"
    assert CLAIMED not in record.model_dump_json(), "the claimed actor is never written"
    assert [c.status for c in offer.store.aggregates("cases")] == ["registered"], "nothing else changed"


async def test_a_command_from_another_partys_connection_is_logged_refused_without_its_claimed_actor():
    from tests.unit.test_pipeline import Service
    offer = Service(offer_definition())
    referral_id = await _a_case_and_a_statement(offer)
    attempt = GetReferral(referral_id=referral_id, with_person=True, actor="am.jansen")  # in the register, signed
    reply = await offer.pipeline.handle_command(attempt.model_dump_json().encode(), user_id="werksaam")
    assert [r["code"] for r in reply["reasons"]] == ["sender_not_authenticated"]
    [record] = [r for r in _records(offer, "query:get_referral")]
    assert (record.status, record.actor, record.kind) == ("refused", "(unknown)", "personal_data_read")
    assert record.reasons == ["sender_not_authenticated"] and record.subject == SUBJECT


async def test_a_refused_attempt_about_no_known_referral_has_no_subject_and_is_found_by_referral_and_trace():
    from tests.unit.test_pipeline import Service
    offer = Service(offer_definition())
    unknown = uuid.uuid4()
    with TRACER.start_as_current_span("cli"):
        reply = await offer.as_given(GetReferral(referral_id=unknown, with_person=True, actor=CLAIMED))
        trace_id = f"{trace.get_current_span().get_span_context().trace_id:032x}"
    assert [r["code"] for r in reply["reasons"]] == ["unknown_actor"]
    [record] = offer.store.processing_log
    assert (record.subject, record.status, record.actor) == (None, "refused", "(unknown)")
    for query in (ReadProcessingLog(correlation_id=unknown), ReadProcessingLog(trace_id=trace_id)):
        found = await offer.command(query.model_copy(update={"actor": "privacy.officer"}))
        assert [(r["subject"], r["status"], r["reasons"]) for r in found["result"]
                if r["message_type"] == "query:get_referral"] == [(None, "refused", ["unknown_actor"])]
    assert offer.store.processing_log == [record], "reading records about no subject is about no subject"


async def test_a_read_of_records_with_and_without_a_subject_is_logged_about_the_subject_only():
    pipeline, store = pipeline_for(offer_definition())
    with TRACER.start_as_current_span("flow"):
        await pipeline.handle_event(raw_of(registration()))
        await pipeline.handle_command(GetReferral(referral_id=uuid.uuid4(), actor=CLAIMED).model_dump_json().encode(),
                                      user_id="heliomare")
        trace_id = f"{trace.get_current_span().get_span_context().trace_id:032x}"
    found = await command(pipeline, ReadProcessingLog(trace_id=trace_id))
    assert found["ok"] and sorted(str(r["subject"]) for r in found["result"]) == ["None", SUBJECT]
    [log_read] = [r for r in store.processing_log if r.operation == "offer.read_processing_log"]
    assert log_read.subject == SUBJECT and log_read.kind == "personal_data_read"


def test_a_record_written_before_kinds_reads_as_a_change_or_a_read():
    from shared.privacy.processing_log import ProcessingRecord
    old = {"id": str(uuid.uuid4()), "subject": SUBJECT, "trace_id": "a" * 32, "span_id": "b" * 16,
           "activity_id": REGISTRATION, "activity_version": 1, "legal_basis": "GDPR 6(1)(b)", "party": "heliomare",
           "service": "offer", "operation": "offer.get_referral", "status": "ok",
           "started_at": "2026-01-05T10:00:00+00:00", "time": "2026-01-05T10:00:00+00:00"}
    assert ProcessingRecord.model_validate({**old, "message_type": "query:get_referral"}).kind == "read"
    assert ProcessingRecord.model_validate({**old, "message_type": "referral.registered.v2"}).kind == "change"
    assert ProcessingRecord.model_validate(old).reasons == []
