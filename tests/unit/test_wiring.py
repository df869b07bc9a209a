"""The runtime's FastStream wiring, on FastStream's in-memory TestRabbitBroker: each event type and
retour reaches the consumer that handles it, and commands get their reply. The database is the
in-memory fake; the pipeline is the real one."""

from __future__ import annotations

import json
import uuid

import pytest
from faststream.rabbit import RabbitQueue, TestRabbitBroker

from services.billing.bootstrap import definition as billing_definition
from services.intake.bootstrap import definition as intake_definition
from services.offer.bootstrap import definition as offer_definition
from services.trajectory.bootstrap import definition as trajectory_definition
from shared.config import Settings
from shared.contracts.commands import DecideReferral
from shared.contracts.parties import Party
from shared.messaging.topology import reply_key
from shared.runtime import ServiceRuntime, _the_message
from shared.storage.memory import MemoryStore
from tests.unit.builders import a_referral_registered, an_envelope

SETTINGS = Settings(WERKBRUG_NAMESPACE="wbunit", MONGODB_URL=None, WERKBRUG_SPAN_FILE=None,
                    OTEL_EXPORTER_OTLP_ENDPOINT=None)


def runtime_on_fakes(make_definition) -> tuple[ServiceRuntime, MemoryStore]:
    runtime = ServiceRuntime(make_definition(SETTINGS), SETTINGS)
    store = MemoryStore(runtime.definition.party, runtime.definition.repositories)
    runtime.pipeline.uow_factory = store.unit_of_work
    return runtime, store


# Every service that holds records about subjects answers data-subject requests (one mechanism): it reads the
# requests addressed to its party, and the retours addressed to its party that answer its answers.
def subject_rights(party: str) -> set[str]:
    return {f"werksaam.{party}.subject-request.issued.v2", f"*.{party}.retour.subject-request-answered.v2"}


@pytest.mark.parametrize(("make", "bindings"), [
    (offer_definition, subject_rights("heliomare") | {
        "werksaam.heliomare.referral.registered.v2", "werksaam.heliomare.quote.approved.v2",
        "werksaam.heliomare.quote.rejected.v2", "*.heliomare.retour.referral-accepted.v2",
        "*.heliomare.retour.referral-declined.v2", "*.heliomare.retour.quote-sent.v2",
        "werksaam.all.breach.reported.v2", "werksaam.heliomare.retour.breach-reported.v2"}),  # Heliomare's breach desk
    (intake_definition, subject_rights("werksaam") | {
        "heliomare.werksaam.referral.accepted.v2", "heliomare.werksaam.referral.declined.v2",
        "heliomare.werksaam.quote.sent.v2", "heliomare.werksaam.trajectory.started.v2",
        "heliomare.werksaam.trajectory.progressed.v2", "heliomare.werksaam.trajectory.ended.v2",
        "heliomare.werksaam.invoice.issued.v2", "heliomare.all.report.published.v3",
        "*.werksaam.retour.referral-registered.v2", "*.werksaam.retour.quote-approved.v2",
        "*.werksaam.retour.quote-rejected.v2"}),
    # Heliomare's own services read its messages to the commissioner (addressed to werksaam) that they follow.
    (trajectory_definition, subject_rights("heliomare") | {
        "heliomare.heliomare.trajectory.commissioned.v2", "heliomare.werksaam.invoice.issued.v2",
        "*.heliomare.retour.trajectory-started.v2", "*.heliomare.retour.trajectory-progressed.v2",
        "*.heliomare.retour.trajectory-ended.v2", "*.heliomare.retour.report-published.v2"}),
    (billing_definition, subject_rights("heliomare") | {
        "heliomare.heliomare.trajectory.commissioned.v2", "heliomare.werksaam.trajectory.started.v2",
        "heliomare.werksaam.trajectory.ended.v2", "*.heliomare.retour.invoice-issued.v2"}),
])
def test_each_service_subscribes_to_exactly_what_it_handles_and_the_retours_of_what_it_sends(make, bindings):
    runtime, _ = runtime_on_fakes(make)
    assert {key for key, _ in runtime.bindings()} == bindings
    assert all(name.startswith("wbunit.") for name in runtime.queue_names())



class Asker:
    """A client of `party` on the test broker: its own answer queue on the replies exchange (the service
    answers there, never on the default exchange), and the answers it got."""

    def __init__(self, runtime: ServiceRuntime, party: str = "heliomare") -> None:
        self.runtime, self.key, self.answers = runtime, reply_key(party), []
        queue = RabbitQueue(runtime.topology.reply_queue(self.key), routing_key=self.key, auto_delete=True)

        async def answered(msg) -> None:
            self.answers.append(json.loads(msg.body))

        runtime.broker.subscriber(queue, exchange=runtime.topology.replies, decoder=_the_message)(answered)

    async def ask(self, broker, body: bytes, user_id: str | None) -> dict:
        before = len(self.answers)
        await broker.publish(body, exchange=self.runtime.topology.commands, routing_key="heliomare.offer",
                             user_id=user_id, reply_to=self.key, correlation_id=uuid.uuid4().hex)
        assert len(self.answers) == before + 1, "answered on the replies exchange"
        return self.answers[-1]

async def test_a_published_referral_reaches_offer_and_is_registered():
    runtime, store = runtime_on_fakes(offer_definition)
    envelope = an_envelope(a_referral_registered(), Party.WERKSAAM, subject="psn_" + "b" * 26)
    async with TestRabbitBroker(runtime.broker) as broker:
        await broker.publish(envelope.model_dump_json().encode(), exchange=runtime.topology.events,
                             routing_key=envelope.routing_key, message_id=str(envelope.id),
                             user_id=envelope.source.value)
    assert [str(c.id) for c in store.aggregates("cases")] == [envelope.data["referral_id"]]
    assert [json.loads(r.model_dump_json())["data"]["status"] for r in store.retours_sent] == ["accepted"]


async def test_a_command_is_answered_over_request_reply():
    runtime, _ = runtime_on_fakes(offer_definition)
    asker = Asker(runtime)
    command = DecideReferral(referral_id=uuid.uuid4(), accept=True, actor="am.jansen")
    async with TestRabbitBroker(runtime.broker) as broker:
        answer = await asker.ask(broker, command.model_dump_json().encode(), "heliomare")
    assert answer["ok"] is False and answer["reasons"][0]["code"] == "unknown_referral"


async def test_a_command_from_another_user_or_none_is_refused_by_the_service_and_changes_nothing():
    runtime, store = runtime_on_fakes(offer_definition)
    asker = Asker(runtime)
    command = DecideReferral(referral_id=uuid.uuid4(), accept=True, actor="am.jansen")
    async with TestRabbitBroker(runtime.broker) as broker:
        for user_id in ("werksaam", None, "werkbrug-admin"):
            answer = await asker.ask(broker, command.model_dump_json().encode(), user_id)
            assert answer["ok"] is False and [r["code"] for r in answer["reasons"]] == ["sender_not_authenticated"]
    assert store.inbox == {} and store.aggregates("cases") == []


def test_every_service_is_owned_by_the_party_its_definition_names():
    from infra.services import DEFINITIONS
    from shared.contracts.parties import SERVICE_PARTY

    assert SERVICE_PARTY == {name: make(SETTINGS).party for name, make in DEFINITIONS.items()}


def test_every_service_runs_as_a_party_holding_the_services_role_in_the_register_of_parties():
    from infra.services import DEFINITIONS
    from shared.contracts.parties import SERVICE_ROLE, load_parties

    assert set(SERVICE_ROLE) == set(DEFINITIONS)
    for name, make in DEFINITIONS.items():
        assert load_parties().has_role(make(SETTINGS).party, SERVICE_ROLE[name]), name


async def test_a_message_waits_out_a_database_outage_instead_of_being_dead_lettered():
    from pymongo.errors import AutoReconnect

    runtime, store = runtime_on_fakes(offer_definition)
    failures = {"left": 2}

    def flaky_unit_of_work():
        if failures["left"]:
            failures["left"] -= 1
            raise AutoReconnect("connection refused")
        return store.unit_of_work()

    runtime.pipeline.uow_factory = flaky_unit_of_work
    envelope = an_envelope(a_referral_registered(), Party.WERKSAAM, subject="psn_" + "c" * 26)
    async with TestRabbitBroker(runtime.broker) as broker:
        await broker.publish(envelope.model_dump_json().encode(), exchange=runtime.topology.events,
                             routing_key=envelope.routing_key, message_id=str(envelope.id),
                             user_id=envelope.source.value)
    assert failures["left"] == 0
    assert [str(c.id) for c in store.aggregates("cases")] == [envelope.data["referral_id"]]


async def test_an_answer_is_never_sent_to_a_reply_key_of_another_party():
    runtime, _ = runtime_on_fakes(offer_definition)
    theirs = Asker(runtime, party="werksaam")
    command = DecideReferral(referral_id=uuid.uuid4(), accept=True, actor="am.jansen")
    async with TestRabbitBroker(runtime.broker) as broker:
        await broker.publish(command.model_dump_json().encode(), exchange=runtime.topology.commands,
                             routing_key="heliomare.offer", user_id="heliomare", reply_to=theirs.key)
    assert theirs.answers == []


async def test_a_command_that_fails_inside_is_answered_with_a_code_and_no_data(caplog):
    runtime, _ = runtime_on_fakes(offer_definition)
    secret = "".join(["1234", "56782"])  # not written out, so the traceback's source lines cannot show it

    def broken_unit_of_work():
        raise ValueError(f"input_value={secret!r} would leak here")

    runtime.pipeline.uow_factory = broken_unit_of_work
    asker = Asker(runtime)
    command = DecideReferral(referral_id=uuid.uuid4(), accept=True, actor="am.jansen")
    async with TestRabbitBroker(runtime.broker) as broker:
        answer = await asker.ask(broker, command.model_dump_json().encode(), "heliomare")
    assert answer["ok"] is False and [r["code"] for r in answer["reasons"]] == ["service_unavailable"]
    assert secret not in json.dumps(answer)
    assert "ValueError" in caplog.text, "the log says what kind of failure, and where"
    assert secret not in caplog.text


def test_a_service_in_its_own_process_freezes_what_it_loaded_and_collects_young_objects_less_often():
    import gc

    from shared.runtime import GC_YOUNG_THRESHOLD, tune_garbage_collector

    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_freeze_count() > 0  # modules and wiring are out of the collector's sight
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_runtime_in_a_shared_process_leaves_the_collector_alone():
    runtime = ServiceRuntime(offer_definition(Settings()), Settings())
    assert runtime.owns_process is False  # tests and tools run several runtimes in one process
