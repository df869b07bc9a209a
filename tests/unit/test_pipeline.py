"""The consumer pipeline, driven with in-memory fakes: contract, deduplication, handler, retour, dead letters."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.intake.bootstrap import definition as intake_definition
from services.offer.bootstrap import definition as offer_definition
from services.offer.domain import CaseStatus
from shared.config import Settings
from shared.contracts.commands import DecideQuote, DecideReferral, GetReferral, ListDeadLetters, ListReferrals
from shared.contracts.envelope import Envelope
from shared.contracts.events import (
    ContractType,
    HoursBand,
    QuoteApproved,
    QuoteRejected,
    QuoteRejectReason,
    ReferralAccepted,
    ReferralRegistered,
    Retour,
    TrajectoryEnded,
    TrajectoryStarted,
)
from shared.contracts.events import Outcome as TrajectoryOutcome
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode
from shared.messaging.pipeline import Pipeline, RawMessage, dead_letter_key
from shared.storage.memory import MemoryStore
from tests.staff import TEST_STAFF, given_by_staff
from tests.unit.builders import (
    PSEUDONYM_KEY,
    VALID_BSN,
    a_quote_sent,
    a_referral_registered,
    a_send_quote,
    a_submit_referral,
    an_envelope,
    pseudonymise,
    raw_of,
)
from tests.unit.fakes import RecordingDeadLetters

SUBJECT = pseudonymise(VALID_BSN)

MAX_BYTES = 16 * 1024
TRACER = TracerProvider().get_tracer("t")


class Service:
    """A pipeline over a fake store, with what a test wants to look at."""

    def __init__(self, definition) -> None:
        self.definition = definition
        self.store = MemoryStore(definition.party, definition.repositories)
        self.dead_letters = RecordingDeadLetters(self.store)
        self.staff = TEST_STAFF[definition.party]
        self.pipeline = Pipeline(definition, self.store.unit_of_work, self.dead_letters, TRACER, MAX_BYTES,
                                 staff=self.staff)

    async def command(self, command) -> dict[str, Any]:
        """As the party's own tools send it: from its broker user, given by a member whose role may (unless the
        command names its actor)."""
        return await self.as_given(given_by_staff(self.staff, command))

    async def as_given(self, command) -> dict[str, Any]:
        """From the party's broker user, with the actor the command names (or none)."""
        return await self.pipeline.handle_command(command.model_dump_json().encode(),
                                                  user_id=self.definition.party.value)

    def retours(self) -> list[Retour]:
        return [Retour.model_validate(e.data) for e in self.store.retours_sent]


@pytest.fixture
def offer() -> Service:
    return Service(offer_definition())


@pytest.fixture
def intake() -> Service:
    return Service(intake_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)))


def registration(referral_id: uuid.UUID | None = None, **overrides) -> Envelope:
    return an_envelope(a_referral_registered(referral_id, **overrides), Party.WERKSAAM, subject=SUBJECT)


def registration_document(**data_overrides) -> dict[str, Any]:
    document = registration().model_dump(mode="json")
    document["data"] = {**document["data"], **data_overrides}
    return document


async def registered_case(offer: Service, *, accept: bool = True, quote: str | None = None) -> uuid.UUID:
    env = registration()
    assert (await offer.pipeline.handle_event(raw_of(env))).status == "accepted"
    referral_id = env.data["referral_id"]
    if accept:
        assert (await offer.command(DecideReferral(referral_id=referral_id, accept=True)))["ok"]
    if quote is not None:
        assert (await offer.command(a_send_quote(uuid.UUID(referral_id), amount=quote)))["ok"]
    return uuid.UUID(referral_id)


# -- a valid event ----------------------------------------------------------------------------------


async def test_a_valid_referral_registration_creates_the_case_and_answers_accepted(offer):
    env = registration()
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert outcome.status == "accepted" and outcome.reasons == []
    [case] = offer.store.aggregates("cases")
    assert case.id == uuid.UUID(env.data["referral_id"])
    assert case.status == CaseStatus.REGISTERED and case.subject == SUBJECT
    [retour_env] = offer.store.retours_sent
    assert retour_env.source == Party.HELIOMARE
    assert retour_env.routing_key == "heliomare.werksaam.retour.referral-registered.v2"
    assert retour_env.causation_id == env.id and retour_env.correlation_id == env.correlation_id
    assert retour_env.subject == SUBJECT
    retour = Retour.model_validate(retour_env.data)
    assert (retour.about_event_id, retour.about_type, retour.about_version) == (env.id, "referral.registered", 2)
    assert retour.status == "accepted" and retour.reasons == []
    assert offer.dead_letters.letters == []
    assert offer.store.inbox[str(env.id)].kind == "event"


async def test_the_accepted_retour_carries_no_personal_data(offer):
    await offer.pipeline.handle_event(raw_of(registration()))
    [retour_env] = offer.store.retours_sent
    text = retour_env.model_dump_json()
    for value in (VALID_BSN, "Fenna", "de Boer", "1621AB", "fenna@example.nl"):
        assert value not in text


async def test_the_same_message_twice_has_one_effect(offer):
    raw = raw_of(registration())
    first = await offer.pipeline.handle_event(raw)
    second = await offer.pipeline.handle_event(raw)
    assert (first.status, second.status) == ("accepted", "duplicate")
    assert len(offer.store.aggregates("cases")) == 1
    assert len(offer.store.retours_sent) == 1
    assert len(offer.store.outbox) == 1


async def test_a_second_registration_of_the_same_referral_is_refused_as_duplicate(offer):
    env = registration()
    await offer.pipeline.handle_event(raw_of(env))
    again = registration(uuid.UUID(env.data["referral_id"]))  # same referral, new event id
    outcome = await offer.pipeline.handle_event(raw_of(again))
    assert outcome.status == "rejected"
    assert [r.code for r in outcome.reasons] == [ReasonCode.DUPLICATE_REFERRAL]
    assert len(offer.store.aggregates("cases")) == 1
    assert [r.status for r in offer.retours()] == ["accepted", "rejected"]


# -- contract refusals: dead-lettered, nothing changes ------------------------------------------------


def _malformed_json() -> RawMessage:
    return RawMessage(b'{"id": "x", "type": ', {}, "werksaam.heliomare.referral.registered.v2", str(uuid.uuid4()))


def _not_utf8() -> RawMessage:
    return RawMessage(b"\xff\xfe{}", {}, "werksaam.heliomare.referral.registered.v2", str(uuid.uuid4()))


def _not_an_object() -> RawMessage:
    return RawMessage(b"[1, 2, 3]", {}, "werksaam.heliomare.referral.registered.v2", str(uuid.uuid4()))


def _oversized() -> RawMessage:
    env = registration()
    body = env.model_dump_json().encode()
    return raw_of(env, body=body[:-1] + b" " * MAX_BYTES + b"}")


def _unknown_field_in_data() -> RawMessage:
    return raw_of(registration_document(diagnosis="confidential"))


def _missing_field_in_data() -> RawMessage:
    document = registration_document()
    del document["data"]["bsn"]
    return raw_of(document)


def _wrong_value_type_in_data() -> RawMessage:
    return raw_of(registration_document(referral_id="not-a-uuid"))


def _unknown_field_in_envelope() -> RawMessage:
    return raw_of({**registration().model_dump(mode="json"), "remarks": "x"})


def _naive_time() -> RawMessage:
    return raw_of({**registration().model_dump(mode="json"), "time": "2026-01-01T10:00:00"})


def _unknown_event_type() -> RawMessage:
    document = {**registration().model_dump(mode="json"), "type": "referral.exploded"}
    return raw_of(document)


def _type_not_consumed_here() -> RawMessage:
    """A known type that offer does not consume (referral.accepted is intake's)."""
    env = an_envelope(ReferralAccepted(referral_id=uuid.uuid4()), Party.HELIOMARE, subject=SUBJECT)
    return raw_of(env, routing_key="werksaam.heliomare.referral.accepted.v2")


def _unsupported_version() -> RawMessage:
    document = {**registration().model_dump(mode="json"), "version": 1}  # before messages were addressed
    return raw_of(document, routing_key="werksaam.heliomare.referral.registered.v1")


def _source_not_permitted() -> RawMessage:
    document = {**registration().model_dump(mode="json"), "source": "heliomare"}
    return raw_of(document, routing_key="werksaam.heliomare.referral.registered.v2")


def _message_id_mismatch() -> RawMessage:
    return raw_of(registration(), message_id=str(uuid.uuid4()))


def _message_id_missing() -> RawMessage:
    return raw_of(registration(), message_id=None)


def _published_by_another_party() -> RawMessage:
    """Heliomare's connection (the broker vouches for its AMQP user_id) publishes WerkSaam's event."""
    return raw_of(registration(), user_id="heliomare")


def _publisher_unidentified() -> RawMessage:
    return raw_of(registration(), user_id=None)


def _routing_key_mismatch() -> RawMessage:
    return raw_of(registration(), routing_key="werksaam.heliomare.quote.approved.v2")


CONTRACT_CASES = [
    # (builder, expected code, expected reason field)
    pytest.param(_malformed_json, ReasonCode.MALFORMED_JSON, None, id="malformed-json"),
    pytest.param(_not_utf8, ReasonCode.MALFORMED_JSON, None, id="not-utf8"),
    pytest.param(_not_an_object, ReasonCode.INVALID_ENVELOPE, None, id="not-an-object"),
    pytest.param(_oversized, ReasonCode.OVERSIZED, None, id="oversized"),
    pytest.param(_unknown_field_in_data, ReasonCode.UNKNOWN_FIELD, "data", id="unknown-data-field"),
    pytest.param(_missing_field_in_data, ReasonCode.MISSING_FIELD, "data.bsn", id="missing-data-field"),
    pytest.param(_wrong_value_type_in_data, ReasonCode.INVALID_VALUE, "data.referral_id", id="wrong-value"),
    pytest.param(_unknown_field_in_envelope, ReasonCode.UNKNOWN_FIELD, None, id="unknown-envelope-field"),
    pytest.param(_naive_time, ReasonCode.INVALID_VALUE, "time", id="naive-time"),
    pytest.param(_unknown_event_type, ReasonCode.UNKNOWN_EVENT_TYPE, "type", id="unknown-type"),
    pytest.param(_type_not_consumed_here, ReasonCode.UNKNOWN_EVENT_TYPE, "type", id="type-not-consumed"),
    pytest.param(_unsupported_version, ReasonCode.UNSUPPORTED_VERSION, "version", id="unsupported-version"),
    pytest.param(_source_not_permitted, ReasonCode.SOURCE_NOT_PERMITTED, "source", id="source-not-permitted"),
    pytest.param(_message_id_mismatch, ReasonCode.MESSAGE_ID_MISMATCH, "id", id="message-id-mismatch"),
    pytest.param(_message_id_missing, ReasonCode.MESSAGE_ID_MISMATCH, "id", id="message-id-missing"),
    pytest.param(_routing_key_mismatch, ReasonCode.ROUTING_MISMATCH, None, id="routing-key-mismatch"),
    pytest.param(_published_by_another_party, ReasonCode.SENDER_NOT_AUTHENTICATED, "source", id="sent-as-another"),
    pytest.param(_publisher_unidentified, ReasonCode.SENDER_NOT_AUTHENTICATED, "source", id="sender-unidentified"),
]


@pytest.mark.parametrize("build,code,field", CONTRACT_CASES)
async def test_a_message_breaking_the_contract_is_dead_lettered_with_its_reason(offer, build, code, field):
    raw = build()
    outcome = await offer.pipeline.handle_event(raw)
    assert outcome.status == "dead_lettered"
    assert [r.code for r in outcome.reasons] == [code]
    assert outcome.reasons[0].field == field
    [(record, reasons)] = offer.dead_letters.letters
    assert record.key == dead_letter_key(raw.message_id, raw.body)
    assert record.service == "offer" and record.routing_key == raw.routing_key
    assert reasons == outcome.reasons


@pytest.mark.parametrize("build,code,field", CONTRACT_CASES)
async def test_a_refused_message_is_recorded_with_its_rejection_retour_in_one_commit(offer, build, code, field):
    """The service never publishes a dead letter: it records why, with the answer, and the runtime rejects
    the message so that the broker parks it."""
    await offer.pipeline.handle_event(build())
    assert offer.store.commits == 1
    assert len(offer.store.dead_letters) == 1 and len(offer.store.retours_sent) == 1


@pytest.mark.parametrize("build,code,field", CONTRACT_CASES)
async def test_a_message_breaking_the_contract_changes_nothing_but_the_answer(offer, build, code, field):
    await offer.pipeline.handle_event(build())
    assert offer.store.aggregates("cases") == []
    assert all(key.startswith("refused:") for key in offer.store.inbox)
    assert [e.type for e in offer.store.outbox] == ["retour.issued"]


@pytest.mark.parametrize("build,code,field", CONTRACT_CASES)
async def test_the_claimed_sender_of_a_broken_message_gets_a_rejected_retour(offer, build, code, field):
    raw = build()
    await offer.pipeline.handle_event(raw)
    [retour_env] = offer.store.retours_sent
    retour = Retour.model_validate(retour_env.data)
    assert retour.status == "rejected"
    assert [r.code for r in retour.reasons] == [code]
    sender, _recipient, subject, event, version = raw.routing_key.split(".")
    assert (retour.about_type, retour.about_version) == (f"{subject}.{event}", int(version[1:]))
    assert retour_env.routing_key == f"heliomare.{sender}.retour.{subject}-{event}.v2"
    assert retour_env.subject is None
    expected_about = uuid.UUID(raw.message_id) if raw.message_id else None
    assert retour.about_event_id == expected_about


async def test_a_broken_message_redelivered_is_dead_lettered_again_but_answered_once(offer):
    raw = _unknown_field_in_data()
    assert (await offer.pipeline.handle_event(raw)).status == "dead_lettered"
    assert (await offer.pipeline.handle_event(raw)).status == "dead_lettered"
    assert len(offer.dead_letters.letters) == 1, "one record per message, however often it is refused"
    assert len(offer.store.retours_sent) == 1


async def test_the_rejected_retour_keeps_the_lifecycle_the_message_claimed(offer):
    raw = _unknown_field_in_data()
    await offer.pipeline.handle_event(raw)
    [retour_env] = offer.store.retours_sent
    assert str(retour_env.correlation_id) == raw.correlation_id


async def test_a_broken_message_on_a_routing_key_naming_no_party_gets_no_retour(offer):
    raw = RawMessage(b"not json", {}, "nobody.referral.registered.v1", str(uuid.uuid4()))
    outcome = await offer.pipeline.handle_event(raw)
    assert outcome.status == "dead_lettered"
    assert offer.store.outbox == [] and offer.store.inbox == {}


async def test_a_broken_retour_is_dead_lettered_but_never_answered(offer):
    raw = RawMessage(b"{", {}, "werksaam.heliomare.retour.referral-accepted.v2", str(uuid.uuid4()))
    outcome = await offer.pipeline.handle_event(raw)
    assert [r.code for r in outcome.reasons] == [ReasonCode.MALFORMED_JSON]
    assert offer.store.outbox == []


async def test_a_broken_message_claiming_to_come_from_ourselves_is_not_answered(offer):
    env = an_envelope(a_quote_sent(uuid.uuid4()), Party.HELIOMARE, subject=SUBJECT)
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert [r.code for r in outcome.reasons] == [ReasonCode.UNKNOWN_EVENT_TYPE]
    assert offer.store.outbox == []


async def test_the_dead_letter_reasons_never_quote_the_message(offer):
    raw = raw_of(registration_document(referral_id=VALID_BSN, postal_code=VALID_BSN, bsn=VALID_BSN + "x"))
    outcome = await offer.pipeline.handle_event(raw)
    assert outcome.status == "dead_lettered"
    for record, reasons in offer.dead_letters.letters:
        assert VALID_BSN not in repr(record)
        for reason in reasons:
            assert VALID_BSN not in reason.model_dump_json()
    assert VALID_BSN not in offer.store.retours_sent[0].model_dump_json()


@pytest.mark.parametrize("body", [b"[" * 15000, b'{"id": ' + b"1" * 5000 + b"}"], ids=["deep-nesting", "huge-int"])
async def test_pathological_json_is_dead_lettered_as_malformed(offer, body):
    raw = RawMessage(body, {}, "werksaam.heliomare.referral.registered.v2", str(uuid.uuid4()))
    outcome = await offer.pipeline.handle_event(raw)
    assert [r.code for r in outcome.reasons] == [ReasonCode.MALFORMED_JSON]


async def test_a_registration_without_a_subject_is_refused_not_crashed(offer):
    env = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=None)
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert outcome.status in {"dead_lettered", "rejected"}
    assert offer.store.aggregates("cases") == []
    assert [r.status for r in offer.retours()] == ["rejected"]


# -- business refusals: answered with a rejected retour, not dead-lettered ----------------------------


async def test_an_approval_for_an_unknown_referral_is_rejected_with_unknown_referral(offer):
    env = an_envelope(QuoteApproved(referral_id=uuid.uuid4(), quote_id=uuid.uuid4(),
                                    approved_amount=Decimal("100.00")), Party.WERKSAAM, subject=SUBJECT)
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert outcome.status == "rejected"
    assert [r.code for r in outcome.reasons] == [ReasonCode.UNKNOWN_REFERRAL]
    assert offer.dead_letters.letters == []
    [retour] = offer.retours()
    assert retour.status == "rejected" and retour.about_event_id == env.id
    assert [r.code for r in retour.reasons] == [ReasonCode.UNKNOWN_REFERRAL]
    assert offer.store.inbox[str(env.id)].result == {"refused": [ReasonCode.UNKNOWN_REFERRAL]}


async def test_a_refused_message_redelivered_is_answered_once(offer):
    env = an_envelope(QuoteRejected(referral_id=uuid.uuid4(), quote_id=uuid.uuid4(),
                                    reason=QuoteRejectReason.OTHER), Party.WERKSAAM, subject=SUBJECT)
    first = await offer.pipeline.handle_event(raw_of(env))
    second = await offer.pipeline.handle_event(raw_of(env))
    assert (first.status, second.status) == ("rejected", "duplicate")
    assert len(offer.retours()) == 1


async def test_a_refused_approval_leaves_the_case_unchanged(offer):
    referral_id = await registered_case(offer, quote="4800.00")
    [case] = offer.store.aggregates("cases")
    quote_id = case.quotes[-1].quote_id
    before = case.model_dump()
    env = an_envelope(QuoteApproved(referral_id=referral_id, quote_id=quote_id, approved_amount=Decimal("9999.00")),
                      Party.WERKSAAM, subject=SUBJECT)
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert [r.code for r in outcome.reasons] == [ReasonCode.INVALID_VALUE]
    assert offer.store.aggregates("cases")[0].model_dump() == before


async def test_an_event_about_another_subjects_referral_is_refused(offer):
    referral_id = await registered_case(offer, quote="4800.00")
    quote_id = offer.store.aggregates("cases")[0].quotes[-1].quote_id
    other = pseudonymise("111222333")
    env = an_envelope(QuoteApproved(referral_id=referral_id, quote_id=quote_id, approved_amount=Decimal("4800.00")),
                      Party.WERKSAAM, subject=other)
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert [(r.code, r.field) for r in outcome.reasons] == [(ReasonCode.INVALID_VALUE, "subject")]
    assert offer.store.aggregates("cases")[0].status == CaseStatus.QUOTE_SENT


async def test_an_approval_of_the_quoted_amount_is_applied(offer):
    referral_id = await registered_case(offer, quote="4800.00")
    quote_id = offer.store.aggregates("cases")[0].quotes[-1].quote_id
    env = an_envelope(QuoteApproved(referral_id=referral_id, quote_id=quote_id, approved_amount=Decimal("4800")),
                      Party.WERKSAAM, subject=SUBJECT)
    assert (await offer.pipeline.handle_event(raw_of(env))).status == "accepted"
    assert offer.store.aggregates("cases")[0].status == CaseStatus.QUOTE_APPROVED


async def test_a_rejection_allows_a_second_quote_with_sequence_two(offer):
    referral_id = await registered_case(offer, quote="4800.00")
    quote_id = offer.store.aggregates("cases")[0].quotes[-1].quote_id
    env = an_envelope(QuoteRejected(referral_id=referral_id, quote_id=quote_id,
                                    reason=QuoteRejectReason.AMOUNT_TOO_HIGH), Party.WERKSAAM, subject=SUBJECT)
    assert (await offer.pipeline.handle_event(raw_of(env))).status == "accepted"
    reply = await offer.command(a_send_quote(referral_id, amount="4200.00"))
    assert reply["ok"], reply["reasons"]
    assert [e.data["sequence"] for e in offer.store.outbox_of("quote.sent")] == [1, 2]


# -- retours addressed to us ------------------------------------------------------------------------


async def test_a_retour_to_our_event_is_recorded_and_not_answered(offer):
    referral_id = await registered_case(offer)
    [accepted_env] = offer.store.outbox_of("referral.accepted")
    retour = Retour(about_event_id=accepted_env.id, about_type="referral.accepted", about_version=2,
                    status="accepted")
    env = an_envelope(retour, Party.WERKSAAM, subject=SUBJECT, correlation_id=referral_id)
    outbox_before = len(offer.store.outbox)
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert outcome.status == "accepted"
    assert len(offer.store.outbox) == outbox_before  # a retour is never answered
    assert offer.store.retours[accepted_env.id]["status"] == "accepted"
    assert offer.store.inbox[str(env.id)].kind == "retour"
    reply = await offer.command(GetReferral(referral_id=referral_id))
    [delivery] = reply["result"]["deliveries"]
    assert delivery["type"] == "referral.accepted" and delivery["retour"]["status"] == "accepted"


async def _answered(offer: Service, status: str = "accepted", **reason) -> tuple[uuid.UUID, Envelope]:
    """A case whose referral.accepted WerkSaam answered with `status`; returns the referral and the event."""
    referral_id = await registered_case(offer)
    [accepted_env] = offer.store.outbox_of("referral.accepted")
    first = a_retour_about(accepted_env, status, **reason)
    assert (await offer.pipeline.handle_event(raw_of(first))).status == "accepted"
    return referral_id, accepted_env


def a_retour_about(sent: Envelope, status: str, source: Party = Party.WERKSAAM, **overrides) -> Envelope:
    reasons = [Reason(code=ReasonCode.INVALID_TRANSITION)] if status == "rejected" else []
    fields = {"about_event_id": sent.id, "about_type": sent.type, "about_version": sent.version,
              "status": status, "reasons": reasons, **overrides}
    return an_envelope(Retour(**fields), source, subject=sent.subject, correlation_id=sent.correlation_id)


async def test_a_retour_contradicting_the_recorded_answer_is_parked_and_never_applied(offer):
    referral_id, sent = await _answered(offer, "accepted")
    before = dict(offer.store.retours[sent.id])
    outbox_before = len(offer.store.outbox)
    contradicting = a_retour_about(sent, "rejected")
    outcome = await offer.pipeline.handle_event(raw_of(contradicting))
    assert outcome.status == "dead_lettered"
    assert [r.code for r in outcome.reasons] == [ReasonCode.RETOUR_CONTRADICTS_ANSWER]
    assert offer.dead_letters.codes == [[ReasonCode.RETOUR_CONTRADICTS_ANSWER]]
    assert offer.store.retours[sent.id] == before, "the sender's delivery record is unchanged"
    assert len(offer.store.outbox) == outbox_before, "a retour is never answered"
    [refused] = [r for r in offer.store.processing_log if r.message_id == str(contradicting.id)]
    assert refused.status == "refused" and refused.subject == SUBJECT
    reply = await offer.command(GetReferral(referral_id=referral_id))
    [delivery] = reply["result"]["deliveries"]
    assert delivery["retour"]["status"] == "accepted"


async def test_the_same_retour_again_under_a_new_id_is_a_duplicate_without_effect(offer):
    _, sent = await _answered(offer, "rejected")
    before = dict(offer.store.retours[sent.id])
    commits = offer.store.commits
    outcome = await offer.pipeline.handle_event(raw_of(a_retour_about(sent, "rejected")))
    assert outcome.status == "duplicate"
    assert offer.store.retours[sent.id] == before and offer.store.commits == commits
    assert offer.dead_letters.letters == []


async def test_a_rejection_with_other_reasons_after_a_rejection_is_refused(offer):
    _, sent = await _answered(offer, "rejected")
    other = a_retour_about(sent, "rejected", reasons=[Reason(code=ReasonCode.UNKNOWN_REFERRAL)])
    assert (await offer.pipeline.handle_event(raw_of(other))).status == "dead_lettered"
    assert [r["code"] for r in offer.store.retours[sent.id]["reasons"]] == [ReasonCode.INVALID_TRANSITION]


async def test_a_retour_about_something_we_never_sent_is_parked(offer):
    retour = Retour(about_event_id=uuid.uuid4(), about_type="referral.accepted", about_version=2,
                    status="rejected", reasons=[])
    env = an_envelope(retour, Party.WERKSAAM)
    outcome = await offer.pipeline.handle_event(raw_of(env))
    assert outcome.status == "dead_lettered"
    assert offer.dead_letters.codes == [[ReasonCode.RETOUR_ABOUT_UNSENT_EVENT]]
    assert offer.store.retours == {} and offer.store.outbox == []
    again = await offer.pipeline.handle_event(raw_of(env))
    assert again.status == "duplicate" and len(offer.dead_letters.letters) == 1, "the same message parked once"


async def test_a_retour_naming_another_type_than_the_event_it_answers_is_parked(offer):
    await registered_case(offer)
    [sent] = offer.store.outbox_of("referral.accepted")
    outcome = await offer.pipeline.handle_event(raw_of(a_retour_about(sent, "accepted", about_type="quote.sent")))
    assert [r.code for r in outcome.reasons] == [ReasonCode.RETOUR_ABOUT_UNSENT_EVENT]
    assert sent.id not in offer.store.retours


async def test_a_party_answering_its_own_event_is_parked(offer):
    await registered_case(offer)
    [sent] = offer.store.outbox_of("referral.accepted")
    outcome = await offer.pipeline.handle_event(raw_of(a_retour_about(sent, "rejected", source=Party.HELIOMARE)))
    assert outcome.status == "dead_lettered"
    assert [r.code for r in outcome.reasons] == [ReasonCode.RETOUR_NOT_FROM_RECIPIENT]
    assert sent.id not in offer.store.retours


async def test_a_refused_retour_logs_codes_and_ids_only(offer, caplog):
    _, sent = await _answered(offer, "accepted")
    contradicting = a_retour_about(sent, "rejected")
    await offer.pipeline.handle_event(raw_of(contradicting))
    [line] = [r.getMessage() for r in caplog.records if "refused a retour" in r.getMessage()]
    assert str(contradicting.id) in line and str(sent.id) in line and "retour_contradicts_answer" in line
    assert SUBJECT not in line


# -- commands ---------------------------------------------------------------------------------------


async def test_an_unknown_command_is_refused_as_unknown_command(offer):
    reply = await offer.pipeline.handle_command(json.dumps({"command": "launch_rocket"}).encode(), user_id="heliomare")
    assert reply["ok"] is False
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.UNKNOWN_COMMAND]


async def test_a_command_without_a_name_is_refused_as_unknown_command(offer):
    body = json.dumps({"referral_id": str(uuid.uuid4())}).encode()
    reply = await offer.pipeline.handle_command(body, user_id="heliomare")
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.UNKNOWN_COMMAND]


async def test_another_services_command_is_refused_as_unknown_command(offer):
    cmd = DecideQuote(referral_id=uuid.uuid4(), quote_id=uuid.uuid4(), approve=True)
    reply = await offer.command(cmd)
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.UNKNOWN_COMMAND]


async def test_an_oversized_command_is_refused(offer):
    reply = await offer.pipeline.handle_command(b" " * (MAX_BYTES + 1), user_id="heliomare")
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.OVERSIZED]


async def test_an_invalid_command_is_refused_with_reasons_but_without_its_values(offer):
    body = json.dumps({"command": "decide_referral", "referral_id": VALID_BSN, "accept": True,
                       "note": VALID_BSN}).encode()
    reply = await offer.pipeline.handle_command(body, user_id="heliomare")
    assert reply["ok"] is False
    assert sorted(r["code"] for r in reply["reasons"]) == [ReasonCode.INVALID_VALUE, ReasonCode.UNKNOWN_FIELD]
    assert sorted(str(r["field"]) for r in reply["reasons"]) == ["None", "referral_id"], "fields named without the tag"
    assert VALID_BSN not in json.dumps(reply)
    assert offer.store.commits == 0


async def test_deciding_an_unknown_referral_is_refused_with_unknown_referral(offer):
    cmd = DecideReferral(referral_id=uuid.uuid4(), accept=True)
    reply = await offer.command(cmd)
    assert reply["ok"] is False
    assert reply["command_id"] == str(cmd.command_id)
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.UNKNOWN_REFERRAL]
    assert offer.store.outbox == [] and offer.store.aggregates("cases") == []
    # Only the refused attempt is written: its processing-log record, about no subject the service knows.
    [attempt] = offer.store.processing_log
    assert (attempt.status, attempt.subject, attempt.correlation_id) == ("refused", None, cmd.referral_id)
    assert attempt.reasons == ["unknown_referral"] and attempt.actor and attempt.kind == "change"
    assert offer.store.commits == 1


async def test_the_same_command_twice_returns_the_same_result_and_has_one_effect(offer):
    referral_id = await registered_case(offer, accept=False)
    cmd = DecideReferral(referral_id=referral_id, accept=True)
    first = await offer.command(cmd)
    second = await offer.command(cmd)
    assert first["ok"] is True
    assert second == first
    assert len(offer.store.outbox_of("referral.accepted")) == 1
    assert offer.store.aggregates("cases")[0].status == CaseStatus.ACCEPTED


async def test_a_refused_command_is_not_recorded_so_its_retry_may_succeed_later(offer):
    """Only commands that ran are kept under their command id; a refusal leaves no inbox record."""
    referral_id = uuid.uuid4()
    cmd = DecideReferral(referral_id=referral_id, accept=True)
    assert (await offer.command(cmd))["ok"] is False
    assert f"command:{cmd.command_id}" not in offer.store.inbox
    await offer.pipeline.handle_event(raw_of(registration(referral_id)))
    assert (await offer.command(cmd))["ok"] is True


async def test_the_same_decision_with_a_new_command_id_is_refused_as_a_transition(offer):
    referral_id = await registered_case(offer, accept=False)
    assert (await offer.command(DecideReferral(referral_id=referral_id, accept=True)))["ok"]
    reply = await offer.command(DecideReferral(referral_id=referral_id, accept=True))
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.INVALID_TRANSITION]
    assert len(offer.store.outbox_of("referral.accepted")) == 1


async def test_an_accepted_referral_emits_referral_accepted_in_its_lifecycle(offer):
    referral_id = await registered_case(offer, accept=False)
    reply = await offer.command(DecideReferral(referral_id=referral_id, accept=True))
    assert reply["result"]["status"] == "accepted"
    [env] = offer.store.outbox_of("referral.accepted")
    assert env.routing_key == "heliomare.werksaam.referral.accepted.v2"
    assert env.correlation_id == referral_id and env.subject == SUBJECT
    assert ReferralAccepted.model_validate(env.data).referral_id == referral_id


async def test_later_commands_join_the_trace_where_the_lifecycle_began():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    offer = Service(offer_definition())
    offer.pipeline.tracer = provider.get_tracer("t")
    referral_id = await registered_case(offer, quote="4800.00")
    assert "traceparent" in offer.store.lifecycles[referral_id]
    spans = {span.name: span for span in exporter.get_finished_spans()}
    began = spans["offer handle referral.registered"].context.trace_id
    assert spans["offer command decide_referral"].context.trace_id == began
    assert spans["offer command send_quote"].context.trace_id == began
    for span in exporter.get_finished_spans():
        assert VALID_BSN not in json.dumps(dict(span.attributes or {}))


async def test_a_quote_with_a_wrong_schedule_is_refused_and_changes_nothing(offer):
    referral_id = await registered_case(offer)
    cmd = a_send_quote(referral_id, amount="4800.00", invoicing=a_send_quote(referral_id, amount="100.00").invoicing)
    reply = await offer.command(cmd)
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.INVOICING_SCHEDULE_INVALID]
    assert offer.store.aggregates("cases")[0].quotes == []
    assert offer.store.outbox_of("quote.sent") == []


async def test_queries_change_nothing_but_are_logged_as_processing(offer):
    referral_id = await registered_case(offer)
    cases_before = [c.model_dump() for c in offer.store.aggregates("cases")]
    outbox_before, log_before = len(offer.store.outbox), len(offer.store.processing_log)
    listed = await offer.command(ListReferrals(status="accepted"))
    got = await offer.command(GetReferral(referral_id=referral_id))
    assert listed["ok"] and [c["referral_id"] for c in listed["result"]] == [str(referral_id)]
    assert got["ok"] and got["result"]["status"] == "accepted"
    assert [c.model_dump() for c in offer.store.aggregates("cases")] == cases_before
    assert len(offer.store.outbox) == outbox_before
    reads = offer.store.processing_log[log_before:]
    assert [r.operation for r in reads] == ["offer.list_referrals", "offer.get_referral"]
    assert {r.activity_id for r in reads} == {"urn:werkbrug:activity:heliomare:case-overview:v1"}
    assert {r.subject for r in reads} == {SUBJECT}
    missing = await offer.command(GetReferral(referral_id=uuid.uuid4()))
    assert [r["code"] for r in missing["reasons"]] == [ReasonCode.UNKNOWN_REFERRAL]


# -- intake through the same pipeline -----------------------------------------------------------------


async def test_a_submitted_referral_is_registered_and_emitted(intake):
    reply = await intake.command(a_submit_referral())
    assert reply["ok"] is True, reply["reasons"]
    [env] = intake.store.outbox
    assert env.routing_key == "werksaam.heliomare.referral.registered.v2"
    assert env.subject == SUBJECT
    assert ReferralRegistered.model_validate(env.data).referral_id == uuid.UUID(reply["result"]["referral_id"])


async def test_a_refused_referral_is_recorded_but_nothing_is_sent(intake):
    reply = await intake.command(a_submit_referral(municipality="Amsterdam", labour_disability=False))
    assert reply["ok"] is False
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.NOT_RESIDENT_WEST_FRIESLAND,
                                                     ReasonCode.NO_LABOUR_DISABILITY]
    assert intake.store.outbox == []
    [referral] = intake.store.aggregates("referrals")
    assert referral.person is None
    cmd_key = [k for k in intake.store.inbox if k.startswith("command:")]
    assert len(cmd_key) == 1


async def test_a_quote_reaching_intake_is_recorded_and_can_be_approved(intake):
    reply = await intake.command(a_submit_referral())
    referral_id = uuid.UUID(reply["result"]["referral_id"])
    quote = a_quote_sent(referral_id, amount="4800.00")
    outcome = await intake.pipeline.handle_event(raw_of(an_envelope(quote, Party.HELIOMARE, subject=SUBJECT)))
    assert outcome.status == "accepted"
    decided = await intake.command(DecideQuote(referral_id=referral_id, quote_id=quote.quote_id, approve=True))
    assert decided["ok"] and decided["result"]["status"] == "quote_approved"
    [approved] = intake.store.outbox_of("quote.approved")
    assert approved.data["approved_amount"] == "4800.00"
    assert approved.routing_key == "werksaam.heliomare.quote.approved.v2"


async def test_a_quote_for_an_unknown_referral_reaching_intake_is_rejected(intake):
    quote = a_quote_sent(uuid.uuid4())
    outcome = await intake.pipeline.handle_event(raw_of(an_envelope(quote, Party.HELIOMARE, subject=SUBJECT)))
    assert [r.code for r in outcome.reasons] == [ReasonCode.UNKNOWN_REFERRAL]
    [retour_env] = intake.store.retours_sent
    assert retour_env.routing_key == "werksaam.heliomare.retour.quote-sent.v2"


async def test_a_duplicate_submission_through_the_pipeline_emits_nothing(intake):
    assert (await intake.command(a_submit_referral()))["ok"]
    duplicate = await intake.command(a_submit_referral())
    assert [r["code"] for r in duplicate["reasons"]] == [ReasonCode.DUPLICATE_REFERRAL]
    assert len(intake.store.outbox_of("referral.registered")) == 1


async def test_a_submission_with_a_non_ascii_postal_code_gets_a_reply(intake):
    reply = await intake.command(a_submit_referral(postal_code="1621ÄB"))
    assert reply["ok"] is False
    assert [r["code"] for r in reply["reasons"]] == [ReasonCode.INVALID_VALUE]


async def test_an_event_between_services_of_one_party_is_handled_without_a_retour(monkeypatch):
    """Retours answer what crosses from one party to another; a party's own services do not answer each other
    (later: Heliomare's billing consuming Heliomare's trajectory events)."""
    import dataclasses

    from shared.messaging import definition as definition_module
    from shared.messaging import pipeline as pipeline_module
    from shared.privacy.register import load_register, performs

    # A register in which a WerkSaam activity receives a WerkSaam event (as a later service will).
    register = load_register()
    intake_activity = register.get("urn:werkbrug:activity:werksaam:referral-intake:v2")
    widened = intake_activity.model_copy(update={"receives": (*intake_activity.receives, "referral.registered.v2")})
    widened_register = register.model_copy(update={"activity": tuple(
        widened if a.id == widened.id else a for a in register.activity)})
    for module in (definition_module, pipeline_module):
        monkeypatch.setattr(module, "load_register", lambda: widened_register)
    seen = []

    @performs(widened.id)
    async def on_registered(event, uow):
        seen.append(event.envelope.id)

    own = dataclasses.replace(intake_definition(Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)),
                              event_handlers={ReferralRegistered: on_registered})
    service = Service(own)
    env = registration()
    assert (await service.pipeline.handle_event(raw_of(env))).status == "accepted"
    assert seen == [env.id]
    assert service.store.retours_sent == []


# -- events must follow from the receiver's records: NotYet waits, then is refused ---------------------


async def approved_at_intake(intake: Service) -> tuple[uuid.UUID, uuid.UUID]:
    reply = await intake.command(a_submit_referral())
    referral_id = uuid.UUID(reply["result"]["referral_id"])
    quote = a_quote_sent(referral_id, amount="4800.00")
    assert (await intake.pipeline.handle_event(raw_of(an_envelope(quote, Party.HELIOMARE, subject=SUBJECT)))
            ).status == "accepted"
    assert (await intake.command(DecideQuote(referral_id=referral_id, quote_id=quote.quote_id, approve=True)))["ok"]
    return referral_id, quote.quote_id


def an_end(referral_id: uuid.UUID, trajectory_id: uuid.UUID) -> Envelope:
    end = TrajectoryEnded(referral_id=referral_id, trajectory_id=trajectory_id, end_date=date(2027, 7, 1),
                          outcome=TrajectoryOutcome.PAID_WORK, contract_type=ContractType.PERMANENT,
                          hours_band=HoursBand.FROM_24_TO_32)
    return an_envelope(end, Party.HELIOMARE, subject=SUBJECT)


async def test_an_end_before_its_start_is_held_back_without_effect_then_refused_on_the_last_delivery(intake):
    referral_id, _ = await approved_at_intake(intake)
    before = intake.store.aggregates("referrals")[0].model_dump()
    outbox_before, commits = len(intake.store.outbox), intake.store.commits
    env = an_end(referral_id, uuid.uuid4())
    for count in (None, 1, 2, 3):
        raw = raw_of(env, headers={} if count is None else {"x-delivery-count": count})
        outcome = await intake.pipeline.handle_event(raw)
        assert outcome.status == "deferred"
        assert [r.code for r in outcome.reasons] == [ReasonCode.TRAJECTORY_NOT_STARTED]
    assert (len(intake.store.outbox), intake.store.commits) == (outbox_before, commits), "nothing written yet"
    last = await intake.pipeline.handle_event(raw_of(env, headers={"x-delivery-count": 4}))
    assert last.status == "rejected"
    [retour] = [Retour.model_validate(e.data) for e in intake.store.retours_sent
                if e.data["about_type"] == "trajectory.ended"]
    assert retour.status == "rejected" and retour.about_event_id == env.id
    assert [r.code for r in retour.reasons] == [ReasonCode.TRAJECTORY_NOT_STARTED]
    assert intake.store.aggregates("referrals")[0].model_dump() == before
    assert str(env.id) in intake.store.inbox


async def test_an_end_that_overtook_its_start_is_accepted_once_the_start_arrived(intake):
    referral_id, quote_id = await approved_at_intake(intake)
    trajectory_id = uuid.uuid4()
    end = an_end(referral_id, trajectory_id)
    assert (await intake.pipeline.handle_event(raw_of(end))).status == "deferred"
    start = TrajectoryStarted(referral_id=referral_id, trajectory_id=trajectory_id, quote_id=quote_id,
                              start_date=date(2027, 2, 1), planned_end=date(2027, 8, 1))
    assert (await intake.pipeline.handle_event(raw_of(an_envelope(start, Party.HELIOMARE, subject=SUBJECT)))
            ).status == "accepted"
    again = await intake.pipeline.handle_event(raw_of(end, headers={"x-delivery-count": 1}))
    assert again.status == "accepted"
    [referral] = intake.store.aggregates("referrals")
    assert referral.status == "trajectory_ended" and referral.trajectory.trajectory_id == trajectory_id


async def test_an_end_of_another_trajectory_than_the_recorded_one_is_refused_at_first_delivery(intake):
    referral_id, quote_id = await approved_at_intake(intake)
    start = TrajectoryStarted(referral_id=referral_id, trajectory_id=uuid.uuid4(), quote_id=quote_id,
                              start_date=date(2027, 2, 1), planned_end=date(2027, 8, 1))
    await intake.pipeline.handle_event(raw_of(an_envelope(start, Party.HELIOMARE, subject=SUBJECT)))
    outcome = await intake.pipeline.handle_event(raw_of(an_end(referral_id, uuid.uuid4())))
    assert outcome.status == "rejected"
    assert [r.code for r in outcome.reasons] == [ReasonCode.UNKNOWN_TRAJECTORY]


async def test_a_forged_delivery_count_header_only_makes_the_senders_own_message_refused_sooner(intake):
    referral_id, _ = await approved_at_intake(intake)
    outcome = await intake.pipeline.handle_event(raw_of(an_end(referral_id, uuid.uuid4()),
                                                        headers={"x-delivery-count": 99}))
    assert outcome.status == "rejected"
    assert intake.store.aggregates("referrals")[0].trajectory is None
async def test_every_service_answers_why_it_refused_the_messages_named_by_their_keys(offer):
    raw = _unknown_field_in_data()
    await offer.pipeline.handle_event(raw)
    other = dead_letter_key(str(uuid.uuid4()), b"never refused")
    reply = await offer.command(ListDeadLetters(keys=[dead_letter_key(raw.message_id, raw.body), other]))
    assert reply["ok"], reply
    [record] = reply["result"]
    assert record["key"] == dead_letter_key(raw.message_id, raw.body) and record["service"] == "offer"
    assert [r["code"] for r in record["reasons"]] == [ReasonCode.UNKNOWN_FIELD.value]
    assert record["routing_key"] == raw.routing_key


async def test_a_dead_letter_key_names_message_id_and_body_together():
    assert dead_letter_key("a", b"body") != dead_letter_key("a", b"body!")
    assert dead_letter_key("a", b"body") != dead_letter_key("b", b"body")
    assert dead_letter_key(None, b"x") == dead_letter_key("", b"x")


async def test_our_own_partys_retour_to_an_answer_another_service_of_each_party_sends_is_no_concern_of_ours(offer):
    """Retours to subject-request.answered reach every service that sends one, whoever answered whom."""
    retour = Retour(about_event_id=uuid.uuid4(), about_type="subject-request.answered", about_version=2,
                    status="accepted")
    outcome = await offer.pipeline.handle_event(raw_of(an_envelope(retour, Party.HELIOMARE)))
    assert outcome.status == "accepted"
    assert offer.store.dead_letters == {} and offer.store.retours == {}
