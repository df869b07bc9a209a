"""Identity and least privilege on the real broker: each party connects as its own user, the broker
checks the AMQP user_id against it, and topic permissions decide which routing keys a party may publish
and bind. Every refusal here is the broker's (or, for a sender the broker vouched for, the pipeline's)."""

from __future__ import annotations

import json
import uuid

import aio_pika
import pytest
from aio_pika.exceptions import ChannelClosed

from shared.contracts.envelope import Envelope
from shared.contracts.parties import Party
from tests.harness import wait_for
from tests.integration.test_bad_input import Spy, recorded_reasons
from tests.unit.builders import a_referral_registered

pytestmark = pytest.mark.integration


async def connect_as(settings, party: str) -> aio_pika.abc.AbstractRobustConnection:
    return await aio_pika.connect_robust(settings.broker_url(party))


def registration_envelope() -> Envelope:
    return Envelope.wrap(a_referral_registered(), source=Party.WERKSAAM, recipient=Party.HELIOMARE,
                         subject="psn_" + "d" * 26,
                         correlation_id=uuid.uuid4())


async def publish(connection, settings, envelope: Envelope, routing_key: str, user_id: str | None) -> None:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        exchange = await channel.get_exchange(f"{settings.namespace}.events", ensure=False)
        await exchange.publish(aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.id),
                                                user_id=user_id, content_type="application/json"),
                               routing_key=routing_key, mandatory=True)
    finally:
        if not channel.is_closed:
            await channel.close()


async def test_a_party_publishing_as_another_party_is_refused_by_the_broker(services, settings):
    """Heliomare, on a routing key it may publish, claims to be WerkSaam in the user_id."""
    envelope = registration_envelope()
    connection = await connect_as(settings, "heliomare")
    async with connection:
        with pytest.raises(ChannelClosed) as refused:
            await publish(connection, settings, envelope, "heliomare.werksaam.referral.accepted.v2", user_id="werksaam")
    assert "PRECONDITION_FAILED" in str(refused.value) and "user_id" in str(refused.value)


async def test_a_party_may_not_publish_a_routing_key_it_is_no_source_of(services, settings):
    """Heliomare, as itself, tries WerkSaam's event: topic authorisation refuses the routing key."""
    envelope = registration_envelope()
    connection = await connect_as(settings, "heliomare")
    async with connection:
        with pytest.raises(ChannelClosed) as refused:
            await publish(connection, settings, envelope, envelope.routing_key, user_id="heliomare")
    assert "ACCESS_REFUSED" in str(refused.value)


async def test_a_party_may_not_bind_a_topic_its_services_do_not_consume(services, settings):
    connection = await connect_as(settings, "werksaam")
    async with connection:
        channel = await connection.channel()
        # A queue name WerkSaam may declare (its intake's prefix), bound to what WerkSaam itself sends.
        queue = await channel.declare_queue(f"{settings.namespace}.intake.eavesdrop-{uuid.uuid4().hex[:6]}",
                                            auto_delete=True)
        with pytest.raises(ChannelClosed) as refused:
            await queue.bind(f"{settings.namespace}.events", "werksaam.heliomare.referral.registered.v2")
        assert "ACCESS_REFUSED" in str(refused.value)
        channel = await connection.channel()
        with pytest.raises(ChannelClosed) as wildcard:
            await (await channel.declare_queue(f"{settings.namespace}.intake.everything-{uuid.uuid4().hex[:6]}",
                                               auto_delete=True)).bind(f"{settings.namespace}.events", "#")
        assert "ACCESS_REFUSED" in str(wildcard.value)


async def test_a_party_may_not_read_another_partys_queue(services, settings):
    offer_queue = services["offer"].topology.consumer_queue("offer", "werksaam.heliomare.referral.registered.v2").name
    connection = await connect_as(settings, "werksaam")
    async with connection:
        channel = await connection.channel()
        with pytest.raises(ChannelClosed) as refused:
            queue = await channel.get_queue(offer_queue, ensure=False)
            await queue.get(no_ack=False, fail=False)
    assert "ACCESS_REFUSED" in str(refused.value)


async def test_a_message_whose_broker_identity_is_not_its_source_is_refused_by_the_consumer(services, amqp,
                                                                                            settings, client):
    """The operator's user may impersonate (it replays dead letters); a valid WerkSaam event it publishes
    under Heliomare's identity still reaches offer, whose pipeline refuses it: the broker-validated sender
    is not the envelope's source."""
    envelope = registration_envelope()
    parking = await Spy.bind(amqp, f"{settings.namespace}.dlx", "offer")
    try:
        await publish(amqp, settings, envelope, envelope.routing_key, user_id="heliomare")

        async def parked():
            return [m for m in await parking.messages() if m.message_id == str(envelope.id)]

        [letter] = await wait_for(parked, what="the impersonated message in offer's parking queue")
    finally:
        await parking.close()
    assert [r["code"] for r in await recorded_reasons(client, "offer", letter)] == ["sender_not_authenticated"]
    assert letter.user_id == "heliomare", "parked by the broker under the identity it was published with"
    assert json.loads(letter.body)["id"] == str(envelope.id)


# -- every cross-party message is addressed (issue 18) -------------------------------------------------------


async def test_a_party_may_bind_only_what_is_addressed_to_it_or_to_all(services, settings):
    """Heliomare, with only its own credentials and its own connection, tries to listen in on what is addressed to
    WerkSaam: a subject request meant for WerkSaam's services, WerkSaam's retours, any recipient (a wildcard in the
    recipient's place). The broker refuses each bind; the one addressed to Heliomare itself it allows."""
    own = f"{settings.namespace}.offer"  # a queue name Heliomare may declare
    connection = await connect_as(settings, "heliomare")
    async with connection:
        for key in ("werksaam.werksaam.subject-request.issued.v2", "*.werksaam.retour.quote-approved.v2",
                    "werksaam.*.subject-request.issued.v2", "heliomare.werksaam.retour.referral-registered.v2"):
            channel = await connection.channel()
            queue = await channel.declare_queue(f"{own}.eavesdrop-{uuid.uuid4().hex[:6]}", auto_delete=True)
            with pytest.raises(ChannelClosed) as refused:
                await queue.bind(f"{settings.namespace}.events", key)
            assert "ACCESS_REFUSED" in str(refused.value), key
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{own}.mine-{uuid.uuid4().hex[:6]}", auto_delete=True)
        await queue.bind(f"{settings.namespace}.events", "werksaam.heliomare.subject-request.issued.v2")
        await queue.delete()


async def test_a_message_addressed_to_another_party_that_reaches_a_consumer_anyway_is_refused_by_it(
        services, amqp, settings, client):
    """A binding the broker should never hold (an operator's mistake: offer's request queue also bound to what is
    addressed to WerkSaam). WerkSaam sends a subject request addressed to itself, as its own subject_rights
    service would; it reaches offer, whose pipeline refuses it as not addressed to Heliomare: parked with the
    reason code, not carried out, not answered, and nothing of it repeated in the record."""
    from shared.contracts.events import Right, SubjectRequestIssued

    queue_name = services["offer"].topology.consumer_queue(
        "offer", "werksaam.heliomare.subject-request.issued.v2").name
    misaddressed = "werksaam.werksaam.subject-request.issued.v2"
    channel = await amqp.channel()  # the operator's
    queue = await channel.get_queue(queue_name, ensure=False)
    await queue.bind(f"{settings.namespace}.events", misaddressed)
    envelope = Envelope.wrap(SubjectRequestIssued(request_id=uuid.uuid4(), right=Right.ACCESS,
                                                  parties=[Party.WERKSAAM], due="2027-02-01"),
                             source=Party.WERKSAAM, recipient=Party.WERKSAAM, subject="psn_" + "c" * 26,
                             correlation_id=uuid.uuid4())
    assert envelope.routing_key == misaddressed
    parking = await Spy.bind(amqp, f"{settings.namespace}.dlx", "offer")
    answers = await Spy.bind(amqp, f"{settings.namespace}.events", "heliomare.*.retour.#")
    try:
        connection = await connect_as(settings, "werksaam")
        async with connection:
            await publish(connection, settings, envelope, misaddressed, user_id="werksaam")

        async def parked():
            return [m for m in await parking.messages() if m.message_id == str(envelope.id)]

        [letter] = await wait_for(parked, what="the misaddressed request in offer's parking queue")
        reasons = await recorded_reasons(client, "offer", letter)
        assert [r["code"] for r in reasons] == ["not_addressed_to_us"]
        assert "psn_" not in json.dumps(reasons) and str(envelope.id) not in json.dumps(reasons)
        assert [m for m in await answers.messages() if str(envelope.id) in m.body.decode()] == [], "not answered"
    finally:
        await queue.unbind(f"{settings.namespace}.events", misaddressed)
        await parking.close()
        await answers.close()
        await channel.close()
