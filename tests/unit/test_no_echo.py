"""Echo nothing untrusted (issue 14 item 5): a refused message's own words never reach a reason, a retour, a
dead letter's headers, a log line or a span. Every refusal path is fed messages whose made-up keys and values
are a person's name; the name must appear nowhere werkbrug writes."""

from __future__ import annotations

import json
import logging
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.offer.bootstrap import definition as offer_definition
from shared.config import Settings
from shared.contracts.commands import DecideReferral
from shared.contracts.events import Retour
from shared.contracts.parties import Party
from shared.contracts.reasons import Reason, ReasonCode, reasons_from_validation_error
from shared.logs import own_id
from shared.messaging.pipeline import Pipeline, RawMessage
from shared.messaging.topology import Topology
from shared.runtime import _AttributesWithoutEcho, _log_repeat, _ParkingQueue
from shared.storage.memory import MemoryStore
from tests.staff import TEST_STAFF, given_by_staff
from tests.unit.builders import (
    PSEUDONYM_KEY,
    VALID_BSN,
    a_referral_registered,
    a_send_quote,
    an_envelope,
    pseudonymise,
    raw_of,
)

# A person's name, spelled so that it passes every pattern a hostile sender could aim at (event type words,
# service names, dict keys): lowercase letters only.
NAME = "femkevanderheijden"
SUBJECT = pseudonymise(VALID_BSN)
MAX_BYTES = 16 * 1024


class Offer:
    """Heliomare's offer service over a fake store, with the runtime's real parking queue and an in-memory
    span exporter: every place a refused message could leave words."""

    def __init__(self) -> None:
        self.definition = offer_definition()
        self.store = MemoryStore(self.definition.party, self.definition.repositories)
        settings = Settings(WERKBRUG_PSEUDONYM_KEY=PSEUDONYM_KEY)
        self.dead_letters = _ParkingQueue(Topology(settings.namespace, settings.delivery_limit), "offer",
                                          Party.HELIOMARE, settings)
        self.spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer = provider.get_tracer("t")
        self.staff = TEST_STAFF[Party.HELIOMARE]
        self.pipeline = Pipeline(self.definition, self.store.unit_of_work, self.dead_letters, self.tracer, MAX_BYTES,
                                 staff=self.staff)

    async def event(self, raw: RawMessage):
        with self.tracer.start_as_current_span("consume"):  # as FastStream's consumer span would be
            return await self.pipeline.handle_event(raw)

    async def command(self, body: bytes) -> dict[str, Any]:
        with self.tracer.start_as_current_span("command"):
            return await self.pipeline.handle_command(body, user_id="heliomare")

    def everything_written(self) -> str:
        """Every word werkbrug wrote: retours, outbox, the records of why a message was dead-lettered, spans.
        (The parked message itself, body, headers and AMQP properties, is the sender's, put in the parking
        queue by the broker as it came, for replay; it is shown only as the dead-letter tools allow.)"""
        parts = [e.model_dump_json() for e in self.store.outbox]
        parts += [repr(self.store.dead_letters)]
        parts += [repr(self.store.retours), repr(self.store.inbox)]
        parts += [r.model_dump_json() for r in self.store.processing_log]
        for span in self.spans.get_finished_spans():
            parts += [span.name, json.dumps(dict(span.attributes or {}), default=str)]
            parts += [json.dumps(dict(e.attributes or {}), default=str) for e in span.events]
        return "\n".join(parts)


@pytest.fixture
def offer() -> Offer:
    return Offer()


def _registration(**data) -> dict[str, Any]:
    document = an_envelope(a_referral_registered(), Party.WERKSAAM, subject=SUBJECT).model_dump(mode="json")
    document["data"].update(data)
    return document


def _unknown_key_in_data() -> RawMessage:
    return raw_of(_registration(**{NAME: NAME}))


def _unknown_keys_everywhere() -> RawMessage:
    document = _registration(**{NAME: {NAME: NAME}})
    document[NAME] = NAME
    return raw_of(document)


def _name_as_a_value() -> RawMessage:
    return raw_of(_registration(referral_id=NAME, date_of_birth=NAME, support_need=NAME, phone=[NAME]))


def _name_as_the_event_type() -> RawMessage:
    document = _registration()
    document["type"] = f"{NAME}.born"
    return raw_of(document, routing_key="werksaam.heliomare.referral.registered.v2")  # the only keys that reach a queue


def _name_as_an_unknown_version() -> RawMessage:
    document = _registration()
    document["version"] = 7
    return raw_of(document, routing_key="werksaam.heliomare.referral.registered.v2")


def _name_as_the_message_id() -> RawMessage:
    return raw_of(_registration(), message_id=NAME)


def _name_in_headers_and_correlation() -> RawMessage:
    raw = raw_of(_registration(**{NAME: 1}), headers={NAME: NAME, "traceparent": NAME})
    return RawMessage(raw.body, raw.headers, raw.routing_key, raw.message_id, correlation_id=NAME,
                      user_id=raw.user_id)


def _name_in_a_retours_nested_reason() -> RawMessage:
    retour = Retour(about_event_id=uuid.uuid4(), about_type="quote.sent", about_version=2, status="rejected",
                    reasons=[Reason(code=ReasonCode.INVALID_VALUE)])
    document = an_envelope(retour, Party.WERKSAAM).model_dump(mode="json")
    document["data"]["reasons"][0][NAME] = NAME
    return raw_of(document, routing_key="werksaam.heliomare.retour.quote-sent.v2")


def _not_json_naming_the_person() -> RawMessage:
    return RawMessage(f'{{"{NAME}": '.encode(), {}, "werksaam.heliomare.referral.registered.v2", str(uuid.uuid4()))


REFUSED_MESSAGES = [
    pytest.param(_unknown_key_in_data, id="unknown-key-in-data"),
    pytest.param(_unknown_keys_everywhere, id="unknown-keys-in-envelope-and-nested"),
    pytest.param(_name_as_a_value, id="name-as-wrongly-typed-values"),
    pytest.param(_name_as_the_event_type, id="name-as-event-type"),
    pytest.param(_name_as_an_unknown_version, id="unknown-version"),
    pytest.param(_name_as_the_message_id, id="name-as-message-id"),
    pytest.param(_name_in_headers_and_correlation, id="name-in-headers-and-correlation-id"),
    pytest.param(_name_in_a_retours_nested_reason, id="unknown-key-in-retour-reason"),
    pytest.param(_not_json_naming_the_person, id="malformed-json"),
]


@pytest.mark.parametrize("build", REFUSED_MESSAGES)
async def test_a_refused_message_echoes_none_of_its_own_words(offer, caplog, build):
    caplog.set_level(logging.DEBUG)
    outcome = await offer.event(build())
    assert outcome.status in {"dead_lettered", "rejected"}, outcome
    assert outcome.reasons
    assert NAME not in json.dumps([r.model_dump(mode="json") for r in outcome.reasons])
    assert NAME not in caplog.text
    assert all(NAME not in str(r.args) for r in caplog.records)
    assert offer.store.dead_letters, "why the message is parked was recorded"
    written = offer.everything_written()
    assert NAME not in written
    assert offer.store.aggregates("cases") == [], "nothing stored"


async def test_an_unknown_field_is_named_by_the_object_that_had_it(offer):
    outcome = await offer.event(_unknown_keys_everywhere())
    assert [(r.code, r.field) for r in outcome.reasons] == [(ReasonCode.UNKNOWN_FIELD, None)]
    nested = await offer.event(_name_in_a_retours_nested_reason())
    assert [(r.code, r.field) for r in nested.reasons] == [(ReasonCode.UNKNOWN_FIELD, "data.reasons.*")]
    [record] = [r for r in offer.store.dead_letters.values() if any("reasons" in (x.get("field") or "")
                                                                    for x in r.reasons)]
    assert record.reasons == [{"code": "unknown_field", "field": "data.reasons.*", "detail": "extra_forbidden"}]


async def test_an_unregistered_type_is_refused_without_naming_it(offer):
    outcome = await offer.event(_name_as_the_event_type())
    assert [(r.code, r.field, r.detail) for r in outcome.reasons] == [
        (ReasonCode.UNKNOWN_EVENT_TYPE, "type", "not a registered type")]
    version = await offer.event(_name_as_an_unknown_version())
    assert [(r.code, r.field) for r in version.reasons] == [(ReasonCode.UNSUPPORTED_VERSION, "version")]
    assert version.reasons[0].detail == "referral.registered supports v2"


COMMANDS = [
    pytest.param({"command": "decide_referral", "referral_id": str(uuid.uuid4()), "accept": True, NAME: NAME},
                 ReasonCode.UNKNOWN_FIELD, id="unknown-key"),
    pytest.param({"command": "decide_referral", "referral_id": NAME, "accept": NAME, "decline_reason": NAME},
                 ReasonCode.INVALID_VALUE, id="name-as-values"),
    pytest.param({"command": NAME, "referral_id": str(uuid.uuid4())}, ReasonCode.UNKNOWN_COMMAND, id="name-as-command"),
    pytest.param({"command": "send_quote", "referral_id": str(uuid.uuid4()), "amount": "100.00",
                  "planned_start": "2027-01-04", "duration_weeks": 4,
                  "invoicing": [{"moment": "afterwards", "amount": "100.00", NAME: NAME}]},
                 ReasonCode.UNKNOWN_FIELD, id="unknown-key-nested-in-a-list"),
    pytest.param({"command": "decide_referral", "referral_id": str(uuid.uuid4()), "accept": True, "actor": NAME},
                 ReasonCode.UNKNOWN_ACTOR, id="name-as-actor"),
]


@pytest.mark.parametrize("document,code", COMMANDS)
async def test_a_refused_command_is_answered_without_its_own_words(offer, caplog, document, code):
    caplog.set_level(logging.DEBUG)
    reply = await offer.command(json.dumps(document).encode())
    assert reply["ok"] is False and code in {r["code"] for r in reply["reasons"]}
    assert NAME not in json.dumps(reply)
    assert NAME not in caplog.text
    assert NAME not in offer.everything_written()
    if code == ReasonCode.UNKNOWN_ACTOR:  # a refused attempt is logged, naming a placeholder, not the claimed actor
        [attempt] = offer.store.processing_log
        assert (attempt.status, attempt.actor, attempt.reasons) == ("refused", "(unknown)", ["unknown_actor"])
    assert offer.store.commits == (1 if code == ReasonCode.UNKNOWN_ACTOR else 0), "nothing else written"


async def test_a_retours_reasons_are_kept_as_codes_and_contract_paths_only(offer):
    referral = a_referral_registered()
    assert (await offer.event(raw_of(an_envelope(referral, Party.WERKSAAM, subject=SUBJECT)))).status == "accepted"
    decide = given_by_staff(offer.staff, DecideReferral(referral_id=referral.referral_id, accept=True))
    assert (await offer.command(decide.model_dump_json().encode()))["ok"]
    quote = given_by_staff(offer.staff, a_send_quote(referral.referral_id))
    assert (await offer.command(quote.model_dump_json().encode()))["ok"]
    [quote_sent] = [e for e in offer.store.outbox if e.type == "quote.sent"]
    retour = Retour(about_event_id=quote_sent.id, about_type="quote.sent", about_version=2, status="rejected",
                    reasons=[Reason(code=ReasonCode.INVALID_VALUE, field=f"{NAME}.amount", detail=NAME)])
    outcome = await offer.event(raw_of(an_envelope(retour, Party.WERKSAAM, correlation_id=referral.referral_id)))
    assert outcome.status == "accepted"
    [kept] = [a for a in offer.store.retours.values() if a["status"] == "rejected"]
    assert kept["reasons"] == [{"code": "invalid_value", "field": "*.amount", "detail": None}]
    assert NAME not in offer.everything_written()


def test_reasons_name_only_contract_field_names():
    from pydantic import BaseModel, ConfigDict, ValidationError

    class Probe(BaseModel):  # a model of the tests: its names are not the contract's
        model_config = ConfigDict(extra="forbid")
        amounts: dict[str, int]
        items: list[int]

    with pytest.raises(ValidationError) as info:
        Probe.model_validate({"amounts": {NAME: NAME}, "items": [NAME], NAME: 1})
    reasons = reasons_from_validation_error(info.value, prefix="data")
    assert {r.field for r in reasons} == {"data", "data.*.*"}
    assert NAME not in repr(reasons)


def test_an_id_from_a_message_is_logged_only_when_it_is_an_id():
    an_id = uuid.uuid4()
    assert own_id(str(an_id)) == str(an_id)
    assert own_id(NAME) == "*" and own_id(None) == "-"


def test_repeat_deliveries_and_consumer_spans_show_no_made_up_ids(caplog):
    caplog.set_level(logging.INFO)
    pika = SimpleNamespace(redelivered=True, headers={"x-delivery-count": NAME}, message_id=NAME,
                           correlation_id=NAME, routing_key="werksaam.heliomare.referral.registered.v2", delivery_tag=1,
                           exchange="werkbrug.events")
    msg = SimpleNamespace(raw_message=pika, message_id=NAME, correlation_id=NAME, body=b"{}")
    _log_repeat("offer", msg, "duplicate")
    assert caplog.records and NAME not in caplog.text
    attributes = _AttributesWithoutEcho().get_consume_attrs_from_message(msg)
    assert NAME not in json.dumps(attributes, default=str)

