"""Bad input over the real broker: each kind is refused with a clear reason, dead-lettered with the
reason in its headers, answered with a rejection retour where a sender can be named; the service keeps
running and nothing already accepted is lost. Plus: a duplicate delivery has no second effect."""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from datetime import UTC, datetime

import aio_pika
import pytest

from shared.contracts.commands import GetReferral, ListDeadLetters, ListReferrals
from shared.contracts.envelope import Envelope
from shared.contracts.events import QuoteApproved, ReferralRegistered, Retour, SupportNeed
from shared.contracts.parties import Municipality, Party
from shared.messaging.pipeline import dead_letter_key
from shared.privacy.bsn import synthetic_bsn
from shared.privacy.pseudonym import Pseudonymiser
from tests.harness import wait_for
from tests.integration.test_flow import a_referral

pytestmark = pytest.mark.integration


def registered_envelope(settings, rng: random.Random, **data_overrides) -> Envelope:
    bsn = synthetic_bsn(rng)
    referral_id = uuid.uuid4()
    data = ReferralRegistered(
        referral_id=referral_id, bsn=bsn, given_name="Jesse", family_name="Kok",
        date_of_birth="1988-02-29", municipality=Municipality.OPMEER, postal_code="1718AB",
        support_need=SupportNeed.JOB_SEARCH,
    )
    envelope = Envelope.wrap(data, source=Party.WERKSAAM, recipient=Party.HELIOMARE,
                             subject=Pseudonymiser(settings.pseudonym_key.get_secret_value())(bsn),
                             correlation_id=referral_id)
    if data_overrides:
        envelope = envelope.model_copy(update={"data": {**envelope.data, **data_overrides}})
    return envelope


class Spy:
    """A queue of our own bound to the exchanges, to see what the services send."""

    def __init__(self, channel, queue) -> None:
        self.channel, self.queue = channel, queue

    @classmethod
    async def bind(cls, amqp, exchange: str, key: str) -> Spy:
        channel = await amqp.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, key)
        return cls(channel, queue)

    async def messages(self) -> list[aio_pika.abc.AbstractIncomingMessage]:
        out = []
        while (m := await self.queue.get(no_ack=True, fail=False)) is not None:
            out.append(m)
        return out

    async def close(self) -> None:
        await self.channel.close()


async def publish(amqp, settings, body: bytes, routing_key: str, message_id: str | None, correlation_id=None,
                  headers: dict | None = None):
    channel = await amqp.channel(publisher_confirms=True, on_return_raises=True)
    exchange = await channel.get_exchange(f"{settings.namespace}.events")
    await exchange.publish(
        aio_pika.Message(body, message_id=message_id, correlation_id=correlation_id, content_type="application/json",
                         delivery_mode=aio_pika.DeliveryMode.PERSISTENT, user_id=routing_key.split(".")[0],
                         headers=headers),
        routing_key=routing_key, mandatory=True,
    )
    await channel.close()


async def recorded_reasons(client, service: str, message) -> list[dict]:
    """Why a service refused a parked message: its own record (never a header of the message)."""
    reply = await client.send(service, ListDeadLetters(keys=[dead_letter_key(message.message_id, message.body)]))
    assert reply.ok, reply.reasons
    return [reason for record in reply.result for reason in record["reasons"]]


async def offer_cases(client) -> list[dict]:
    return (await client.send("offer", ListReferrals(limit=1000))).result


@contextlib.asynccontextmanager
async def spying_on(amqp, settings, service: str, party: str):
    """What a service parks, and the retours its party sends."""
    parking = await Spy.bind(amqp, f"{settings.namespace}.dlx", service)
    retours = await Spy.bind(amqp, f"{settings.namespace}.events", f"{party}.*.retour.#")
    try:
        yield parking, retours
    finally:
        await parking.close()
        await retours.close()


@pytest.fixture
async def spies(services, amqp, settings):
    async with spying_on(amqp, settings, "offer", "heliomare") as both:
        yield both


def _big_referral(settings, rng) -> tuple[bytes, str, str]:
    env = registered_envelope(settings, rng)
    body = env.model_dump_json().encode()
    padded = body[:-1] + b',"padding":"' + b"x" * (settings.max_message_bytes + 10) + b'"}'
    return padded, env.routing_key, str(env.id)


BAD_INPUTS = {
    # name: (builder returning body, routing key, message id) , expected reason code, retour expected
    "malformed_json": (lambda s, r: (b'{"id": "', "werksaam.heliomare.referral.registered.v2", str(uuid.uuid4())),
                       "malformed_json", True),
    "oversized": (_big_referral, "oversized", True),
    "wrong_type": (lambda s, r: _with(registered_envelope(s, r, date_of_birth="last tuesday")),
                   "invalid_value", True),
    "extra_field": (lambda s, r: _with(registered_envelope(s, r, shoe_size=44)), "unknown_field", True),
    "unknown_event_type": (lambda s, r: _with(registered_envelope(s, r), type="referral.teleported"),
                           "unknown_event_type", True),
    "unsupported_version": (lambda s, r: _with(registered_envelope(s, r), version=7), "unsupported_version", True),
    "forged_source": (lambda s, r: _with(registered_envelope(s, r), source="heliomare"), "source_not_permitted",
                      True),
    "message_id_mismatch": (lambda s, r: _with(registered_envelope(s, r), message_id=str(uuid.uuid4())),
                            "message_id_mismatch", True),
    "not_an_object": (lambda s, r: (b"[1, 2, 3]", "werksaam.heliomare.referral.registered.v2", str(uuid.uuid4())),
                      "invalid_envelope", True),
}


def _with(envelope: Envelope, message_id: str | None = None, **envelope_overrides):
    doc = json.loads(envelope.model_dump_json())
    doc.update(envelope_overrides)
    return json.dumps(doc).encode(), envelope.routing_key, message_id or str(envelope.id)


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
async def test_bad_input_is_dead_lettered_with_its_reason_and_answered(kind, services, client, amqp, settings,
                                                                      spies):
    parking, retours = spies
    rng = random.Random(kind)
    # Something accepted before the bad input arrives...
    accepted = await client.send("intake", a_referral(rng))
    rid = accepted.result["referral_id"]

    async def offer_has_it():
        return any(c["referral_id"] == rid for c in await offer_cases(client))

    await wait_for(offer_has_it, what="the good referral to reach offer")
    before = await offer_cases(client)

    build, expected_code, expect_retour = BAD_INPUTS[kind]
    body, routing_key, message_id = build(settings, rng)
    await publish(amqp, settings, body, routing_key, message_id)

    async def parked():
        return [m for m in await parking.messages() if m.message_id == message_id]

    dead = (await wait_for(parked, what=f"{kind} in offer's parking queue"))[0]
    # Parked by the broker (offer rejected it), as it was sent: its routing key, body and sender...
    assert dead.headers["x-first-death-reason"] == "rejected"
    assert dead.headers["x-death"][0]["routing-keys"] == [routing_key]
    assert dead.user_id == routing_key.split(".")[0], "the broker-validated sender is kept"
    assert dead.body == body, "the dead letter keeps the original message for inspection and replay"
    assert not any(k.startswith("x-werkbrug-") for k in dead.headers), "the service adds no header"
    # ...and why is offer's own record, asked of offer.
    reasons = await recorded_reasons(client, "offer", dead)
    assert expected_code in [r["code"] for r in reasons]
    assert all("value" not in r for r in reasons)

    if expect_retour:
        async def rejection():
            for m in await retours.messages():
                retour = Retour.model_validate(json.loads(m.body)["data"])
                if retour.status == "rejected" and str(retour.about_event_id) == message_id:
                    return retour
            return None

        retour = await wait_for(rejection, what="a rejection retour to the sender")
        assert expected_code in {r.code.value for r in retour.reasons}

    # The service keeps running and nothing accepted was lost or changed.
    after = await offer_cases(client)
    assert after == before
    again = await client.send("intake", a_referral(rng))
    assert again.ok


async def test_unroutable_message_is_returned_to_the_publisher_not_lost(services, amqp, settings):
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await publish(amqp, settings, b"{}", "nobody.listens.here.v1", str(uuid.uuid4()))


async def test_a_duplicate_delivery_has_no_second_effect(services, client, amqp, settings):
    rng = random.Random("dup")
    envelope = registered_envelope(settings, rng)
    spy = await Spy.bind(amqp, f"{settings.namespace}.events", "heliomare.werksaam.retour.referral-registered.v2")
    body = envelope.model_dump_json().encode()
    for _ in range(3):
        await publish(amqp, settings, body, envelope.routing_key, str(envelope.id), str(envelope.correlation_id))

    async def registered():
        view = await client.send("offer", GetReferral(referral_id=envelope.correlation_id))
        return view.result if view.ok else None

    await wait_for(registered, what="the referral to be registered once")

    async def answers():
        return [m for m in await spy.messages()]

    seen = []
    for _ in range(10):  # give any second effect time to show itself
        seen += await answers()
        await __import__("asyncio").sleep(0.1)
    await spy.close()
    about = [json.loads(m.body)["data"]["about_event_id"] for m in seen]
    assert about.count(str(envelope.id)) == 1, "one retour for three deliveries"
    cases = [c for c in await offer_cases(client) if c["referral_id"] == str(envelope.correlation_id)]
    assert len(cases) == 1


async def test_business_refusal_is_answered_not_dead_lettered(services, client, amqp, settings, spies):
    parking, retours = spies
    referral_id = uuid.uuid4()
    env = Envelope.wrap(
        QuoteApproved(referral_id=referral_id, quote_id=uuid.uuid4(), approved_amount="100.00"),
        source=Party.WERKSAAM, recipient=Party.HELIOMARE, subject="psn_" + "a" * 26, correlation_id=referral_id,
    )
    await publish(amqp, settings, env.model_dump_json().encode(), env.routing_key, str(env.id))

    async def rejection():
        for m in await retours.messages():
            data = json.loads(m.body)["data"]
            if data["about_event_id"] == str(env.id):
                return data
        return None

    retour = await wait_for(rejection, what="the rejection retour")
    assert retour["status"] == "rejected"
    assert [r["code"] for r in retour["reasons"]] == ["unknown_referral"]
    assert not [m for m in await parking.messages() if m.message_id == str(env.id)]


async def test_bad_command_is_refused_with_a_reason(services, client):
    result = await client.send_raw("intake", b'{"command": "launch_rocket"}')
    assert not result.ok and result.reasons[0].code.value == "unknown_command"
    result = await client.send_raw("intake", b"not json at all")
    assert not result.ok
    result = await client.send_raw("intake", json.dumps({
        "command": "submit_referral", "bsn": "123456782", "given_name": "A", "family_name": "B",
        "date_of_birth": "1990-01-01", "municipality": "Hoorn", "postal_code": "1621AB",
        "labour_disability": True, "participatiewet_entitlement": True, "support_need": "job_search",
        "favourite_colour": "blue"}).encode())
    assert not result.ok and {r.code.value for r in result.reasons} == {"unknown_field"}
    assert "123456782" not in result.model_dump_json()


def test_time_is_utc_in_envelopes():
    env = registered_envelope(type("S", (), {"pseudonym_key": type("K", (), {
        "get_secret_value": lambda self: "00" * 32})()})(), random.Random(1))
    assert env.time.tzinfo is not None and env.time.utcoffset() == datetime.now(UTC).utcoffset()


async def test_a_message_that_keeps_failing_is_dead_lettered_by_the_broker_after_the_delivery_limit(
        services, client, amqp, settings, spies, monkeypatch):
    """Not a refusal but a failure (here: a handler bug). It is retried, then parked, never dropped."""
    parking, _ = spies
    accepted = await client.send("intake", a_referral(random.Random("poison")))
    rid = uuid.UUID(accepted.result["referral_id"])

    async def offer_has_it():
        return (await client.send("offer", GetReferral(referral_id=rid))).ok

    await wait_for(offer_has_it, what="the referral at offer")
    handlers = services["offer"].pipeline.event_handlers
    attempts = []

    async def broken_handler(event, uow):
        attempts.append(event.envelope.id)
        raise RuntimeError("a bug")

    monkeypatch.setitem(handlers, QuoteApproved, broken_handler)
    subject = (await client.send("offer", GetReferral(referral_id=rid))).result["subject"]
    env = Envelope.wrap(QuoteApproved(referral_id=rid, quote_id=uuid.uuid4(), approved_amount="10.00"),
                        source=Party.WERKSAAM, recipient=Party.HELIOMARE, subject=subject, correlation_id=rid)
    await publish(amqp, settings, env.model_dump_json().encode(), env.routing_key, str(env.id))

    async def parked():
        return [m for m in await parking.messages() if m.message_id == str(env.id)]

    dead = (await wait_for(parked, within=30, what="the failing message in the parking queue"))[0]
    # The first delivery and `delivery_limit` redeliveries, then the broker gives up on it.
    assert len(attempts) == settings.delivery_limit + 1
    assert json.loads(dead.body)["id"] == str(env.id), "parked intact, ready for a replay after the fix"
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert dead.headers["x-death"][0]["routing-keys"] == [env.routing_key]
