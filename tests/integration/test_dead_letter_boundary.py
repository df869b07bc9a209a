"""Dead letters come only from the broker, and a replay sends a message again only as the broker-validated
sender it carried (issue 14, item 2). Each attack is made as the hostile party makes it: with only its own
broker credentials, on its own connection.

- No party may publish to the dead-letter exchange: its topic permission there writes nothing, so the
  broker refuses the publish (ACCESS_REFUSED) and no parking queue gets anything.
- No party may bind a queue to another party's parking key on the dead-letter exchange.
- A message a service refuses is rejected, and the broker dead-letters it to the service's parking queue
  with the sender's user_id and its own x-death; the reasons are the service's record, never a header.
- Replay publishes only under that user_id, and refuses (it stays parked) a message whose user_id is not
  its envelope's source: the forged quote.approved of the issue never reaches offer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import aio_pika
import pytest
from aio_pika.exceptions import ChannelClosed

from infra.dead_letters import ParkingQueues, ReplayRefused
from infra.declare import declare_all, delete_all
from infra.identities import provision
from infra.services import DEFINITIONS
from shared.config import Settings
from shared.contracts.commands import ListReferrals, ReadProcessingLog
from shared.contracts.envelope import Envelope
from shared.contracts.events import QuoteApproved, ReferralAccepted
from shared.contracts.parties import Party
from tests.harness import wait_for
from tests.integration.test_bad_input import Spy
from tests.integration.test_cli import werkbrug
from tests.staff import TEST_STAFF
from tests.unit.builders import a_referral_registered

pytestmark = pytest.mark.integration

FORGED = {"x-werkbrug-original-user-id": "werksaam", "x-werkbrug-reason": "none",
          "x-werkbrug-original-routing-key": "werksaam.heliomare.quote.approved.v2", "x-werkbrug-service": "offer"}
PARTIES = {"werksaam": ("intake", "offer"), "heliomare": ("offer", "intake")}  # party: (own service, other's)


def parking(settings) -> ParkingQueues:
    """The parking queues as the tests' operator sees them (the services' records asked as the test staff)."""
    return ParkingQueues(settings, actors=TEST_STAFF)


async def connect_as(settings, party: str) -> aio_pika.abc.AbstractRobustConnection:
    return await aio_pika.connect_robust(settings.broker_url(party))


async def parked_ids(settings, service: str) -> set[str | None]:
    return {d.message_id for d in await parking(settings).list(service)}


def forged_approval() -> Envelope:
    """WerkSaam's approval of a quote, written by Heliomare (the issue's forged quote.approved)."""
    referral_id = uuid.uuid4()
    data = QuoteApproved(referral_id=referral_id, quote_id=uuid.uuid4(), approved_amount=Decimal("4800.00"))
    return Envelope.wrap(data, source=Party.WERKSAAM, recipient=Party.HELIOMARE,
                         subject="psn_" + "f" * 26, correlation_id=referral_id)


@pytest.mark.parametrize("party", sorted(PARTIES))
async def test_no_party_may_publish_to_the_dead_letter_exchange(services, settings, amqp, party):
    dlx = f"{settings.namespace}.dlx"
    watch = await Spy.bind(amqp, dlx, "#")  # the operator's view of everything that reaches the dlx
    envelope = forged_approval()
    connection = await connect_as(settings, party)
    try:
        async with connection:
            for service in (*PARTIES[party], ""):  # its own, the other's, and the empty key
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                exchange = await channel.get_exchange(dlx, ensure=False)
                with pytest.raises(ChannelClosed) as refused:
                    await exchange.publish(aio_pika.Message(
                        envelope.model_dump_json().encode(), message_id=str(envelope.id), user_id=party,
                        headers=FORGED), routing_key=service, mandatory=True)
                assert "ACCESS_REFUSED" in str(refused.value), refused.value
        await asyncio.sleep(0.5)
        assert [m for m in await watch.messages() if m.message_id == str(envelope.id)] == []
        for service in DEFINITIONS:
            assert str(envelope.id) not in await parked_ids(settings, service), service
    finally:
        await watch.close()


@pytest.mark.parametrize("party", sorted(PARTIES))
async def test_a_party_may_not_bind_to_another_partys_parking_key(services, settings, party):
    own, other = PARTIES[party]
    dlx = f"{settings.namespace}.dlx"
    name = f"{settings.namespace}.{own}.spy-{uuid.uuid4().hex[:8]}"  # a queue name the party may declare
    connection = await connect_as(settings, party)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, auto_delete=True)
        await queue.bind(dlx, own)  # its own service's parking key: allowed (the test can tell)
        for key in (other, "#", "*"):
            channel = await connection.channel()
            queue = await channel.get_queue(name, ensure=False)
            with pytest.raises(ChannelClosed) as refused:
                await queue.bind(dlx, key)
            assert "ACCESS_REFUSED" in str(refused.value), (key, refused.value)
        channel = await connection.channel()
        await channel.queue_delete(name)


async def test_a_refused_message_is_parked_by_the_broker_under_its_senders_user_id(services, settings, client):
    """WerkSaam sends offer a registration with a field the contract does not have, and headers that claim
    another sender and reason. Offer refuses it; the broker parks it as WerkSaam's, and the listing shows
    offer's recorded reasons, never the headers'."""
    referral = a_referral_registered()
    envelope = Envelope.wrap(referral, source=Party.WERKSAAM, recipient=Party.HELIOMARE, subject="psn_" + "e" * 26,
                             correlation_id=referral.referral_id)
    document = envelope.model_dump(mode="json")
    document["data"]["diagnosis"] = "x"
    body = json.dumps(document).encode()
    connection = await connect_as(settings, "werksaam")
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(f"{settings.namespace}.events", ensure=False)
        await exchange.publish(aio_pika.Message(body, message_id=str(envelope.id), user_id="werksaam",
                                                headers={**FORGED, "x-werkbrug-original-user-id": "heliomare"},
                                                content_type="application/json"),
                               routing_key=envelope.routing_key, mandatory=True)

    async def parked():
        return [d for d in await parking(settings).list("offer") if d.message_id == str(envelope.id)]

    [letter] = await wait_for(parked, within=30, what="the refused registration in offer's parking queue")
    assert letter.user_id == "werksaam", "dead-lettering keeps the broker-validated sender"
    assert letter.recorded and letter.reason == "unknown_field"
    assert [r.get("field") for r in letter.reasons] == ["data"], "the object that had the unknown key, never the key"
    assert letter.routing_key == envelope.routing_key
    assert letter.death["reason"] == "rejected" and letter.death["routing-keys"] == [envelope.routing_key]
    assert letter.death["queue"].startswith(f"{settings.namespace}.offer."), letter.death
    assert not any(k.startswith("x-werkbrug-") for k in letter.broker_headers())
    cases = (await client.send("offer", ListReferrals(limit=1000))).result
    assert str(referral.referral_id) not in {c["referral_id"] for c in cases}, "nothing accepted"


async def test_a_forged_approval_parked_at_intake_is_never_replayed_as_werksaam(services, settings, client, amqp):
    """The issue's attack, now: Heliomare can no longer plant the approval in a parking queue; the nearest it
    gets is sending it on a key of its own, as itself. Intake refuses it and the broker parks it under
    Heliomare's user_id; the operator's replay refuses (its user_id is not its envelope's source), the
    header's claim is ignored, and the approval reaches neither offer nor anyone else."""
    envelope = forged_approval()
    offer_spy = await Spy.bind(amqp, f"{settings.namespace}.events", "#.quote.approved.#")
    connection = await connect_as(settings, "heliomare")
    try:
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.get_exchange(f"{settings.namespace}.events", ensure=False)
            await exchange.publish(aio_pika.Message(envelope.model_dump_json().encode(), message_id=str(envelope.id),
                                                    user_id="heliomare", headers=FORGED,
                                                    content_type="application/json"),
                                   routing_key="heliomare.werksaam.quote.sent.v2", mandatory=True)

        async def parked():
            return [d for d in await parking(settings).list("intake") if d.message_id == str(envelope.id)]

        [letter] = await wait_for(parked, within=30, what="the forged approval in intake's parking queue")
        assert letter.user_id == "heliomare" and letter.recorded

        with pytest.raises(ReplayRefused) as refused:
            await parking(settings).replay(str(envelope.id))
        assert "sender_not_authenticated" in str(refused.value)
        code, out, err = await werkbrug(settings, "dlq", "replay", str(envelope.id))
        assert code == 2 and "sender_not_authenticated" in err and "Traceback" not in out + err, (code, err)
        assert [d.message_id for d in await parked()] == [str(envelope.id)], "it stays parked"
        await asyncio.sleep(0.5)
        assert [m for m in await offer_spy.messages() if m.message_id == str(envelope.id)] == []
        for service in ("offer", "trajectory", "billing"):
            log = await client.send(service, ReadProcessingLog(correlation_id=envelope.correlation_id))
            assert log.ok and log.result == [], (service, log.result)
    finally:
        await offer_spy.close()


async def test_the_operators_declare_replaces_a_direct_dead_letter_exchange_and_rebinds_the_parking_queues(
        mongodb_url):
    """A vhost declared before this change has a direct `<ns>.dlx` that a party may write to. `python -m
    infra.declare` replaces it by the topic exchange and binds every parking queue again; a message a
    consumer queue dead-letters then still reaches its parking queue, and a party's publish is refused."""
    old = Settings(WERKBRUG_NAMESPACE=f"wbt-{uuid.uuid4().hex[:8]}", MONGODB_URL=mongodb_url)
    dlx, parking = f"{old.namespace}.dlx", f"{old.namespace}.offer.parking"
    provision(old)
    try:
        admin = await aio_pika.connect(old.broker_url())
        async with admin:
            channel = await admin.channel()
            await channel.exchange_delete(dlx)  # provisioning declares the topic one now: make the old kind
            await channel.declare_exchange(dlx, aio_pika.ExchangeType.DIRECT, durable=True)
            old_parking = await channel.declare_queue(parking, durable=True, arguments={"x-queue-type": "quorum"})
            await old_parking.bind(dlx, "offer")
        await declare_all(old)
        admin = await aio_pika.connect(old.broker_url())
        async with admin:
            channel = await admin.channel()
            with pytest.raises(ChannelClosed) as mismatch:  # it is a topic exchange now
                await channel.declare_exchange(dlx, aio_pika.ExchangeType.DIRECT, durable=True)
            assert "PRECONDITION_FAILED" in str(mismatch.value)
        admin = await aio_pika.connect(old.broker_url())
        async with admin:
            channel = await admin.channel(publisher_confirms=True, on_return_raises=True)
            # The broker's own route: a consumer queue of offer rejecting a message dead-letters it there.
            queue = await channel.get_queue(f"{old.namespace}.offer.werksaam.heliomare.referral.registered.v2")
            await (await channel.get_exchange(f"{old.namespace}.events")).publish(
                aio_pika.Message(b"{}", message_id="m1", user_id="werksaam"),
                routing_key="werksaam.heliomare.referral.registered.v2", mandatory=True)
            message = await queue.get(timeout=5)
            await message.reject(requeue=False)

            async def parked():
                return (await channel.declare_queue(parking, passive=True)).declaration_result.message_count

            assert await wait_for(parked, what="the rejected message in offer's parking queue") == 1
        heliomare = await connect_as(old, "heliomare")
        async with heliomare:
            channel = await heliomare.channel(publisher_confirms=True, on_return_raises=True)
            with pytest.raises(ChannelClosed) as refused:
                await (await channel.get_exchange(dlx, ensure=False)).publish(
                    aio_pika.Message(b"{}", user_id="heliomare"), routing_key="offer", mandatory=True)
            assert "ACCESS_REFUSED" in str(refused.value)
    finally:
        await delete_all(old)


@pytest.mark.parametrize("party", ["heliomare", "werksaam"])
async def test_no_party_may_publish_through_the_default_exchange_into_any_queue(services, settings, party):
    """The default exchange reaches every queue of the vhost by name; no party has write on it (answers to
    commands go over the replies exchange). Into the other party's parking, command or consumer queue, and
    into its own: ACCESS_REFUSED, and none of the messages is in a parking queue afterwards."""
    ns = settings.namespace
    targets = [f"{ns}.intake.parking", f"{ns}.offer.parking", f"{ns}.intake.commands", f"{ns}.offer.commands",
               f"{ns}.offer.werksaam.heliomare.referral.registered.v2", f"{ns}.intake.heliomare.werksaam.quote.sent.v2"]
    sent = []
    connection = await connect_as(settings, party)
    async with connection:
        for queue in targets:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            sent.append(str(uuid.uuid4()))
            with pytest.raises(ChannelClosed) as refused:
                await channel.default_exchange.publish(
                    aio_pika.Message(b"{}", message_id=sent[-1], user_id=party), routing_key=queue, mandatory=True)
            assert "ACCESS_REFUSED" in str(refused.value), (queue, refused.value)
    for service in DEFINITIONS:
        assert not set(sent) & set(await parked_ids(settings, service)), service


async def test_a_message_the_operator_puts_in_a_parking_queue_is_shown_unrecorded_and_never_replayed(
        services, settings, client):
    """Only the operator can still put a message straight into a parking queue (werkbrug-admin writes
    everywhere and may set any user_id). Dressed as a dead letter of intake under Heliomare's user_id (x-death
    headers of its own, an envelope whose source agrees): intake has no record of it, the listing says so and
    the replay refuses it, so it reaches nobody."""
    referral_id = uuid.uuid4()
    envelope = Envelope.wrap(ReferralAccepted(referral_id=referral_id), source=Party.HELIOMARE,
                             recipient=Party.WERKSAAM, subject="psn_" + "a" * 26, correlation_id=referral_id)
    death = [{"count": 1, "reason": "rejected",
              "queue": f"{settings.namespace}.intake.heliomare.werksaam.referral.accepted.v2",
              "exchange": f"{settings.namespace}.events", "routing-keys": [envelope.routing_key]}]
    connection = await aio_pika.connect(settings.broker_url())
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.default_exchange.publish(aio_pika.Message(
            envelope.model_dump_json().encode(), message_id=str(envelope.id), user_id="heliomare",
            headers={**FORGED, "x-death": death, "x-first-death-reason": "rejected"}),
            routing_key=f"{settings.namespace}.intake.parking", mandatory=True)

    async def parked():
        return [d for d in await parking(settings).list("intake") if d.message_id == str(envelope.id)]

    [letter] = await wait_for(parked, what="the planted message in intake's parking queue")
    assert letter.user_id == "heliomare" and not letter.recorded
    with pytest.raises(ReplayRefused) as refused:
        await parking(settings).replay(str(envelope.id), "intake")
    assert "not_recorded" in str(refused.value)
    assert [d.message_id for d in await parked()] == [str(envelope.id)], "it stays parked"
    log = await client.send("intake", ReadProcessingLog(correlation_id=referral_id))
    assert log.ok and log.result == []
