"""A partner joins by addendum (art 13.1), consumes only the topics granted to it, and leaves (art 13.2):
against the real broker, with the services running."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date

import aio_pika
import pytest
from aio_pika.exceptions import ChannelClosed
from pydantic import SecretStr

from infra.partners import Addendum, PartnerRefused, PartnerRegister, add_partner, remove_partner
from shared.contracts.commands import PublishReport
from shared.contracts.envelope import envelope_model
from shared.contracts.events import DepartureKind, ReportPublished
from tests.harness import wait_for
from tests.integration.test_bad_input import Spy
from tests.integration.test_flow import a_referral

pytestmark = pytest.mark.integration

GRANTED = "heliomare.report.published.v2"  # aggregates only: what a regional labour-market monitor may read


def an_addendum(name: str, consenting=("werksaam", "heliomare")) -> Addendum:
    return Addendum(
        name=name, organisation="Arbeidsmarktmonitor West-Friesland", legal_basis="GDPR 6(1)(e)",
        purpose="Monitor the regional outcomes of reintegration (aggregates only).", topics=[GRANTED],
        contact={"name": "Functionaris", "email": "privacy@monitor.example.nl"}, effective_from=date(2027, 1, 1),
        consents=[{"party": p, "signed_by": "director", "signed_on": "2026-12-01", "reference": f"ADD-{p}"}
                  for p in consenting],
    )


async def take_all(queue) -> list[aio_pika.abc.AbstractIncomingMessage]:
    out = []
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        await message.ack()
        out.append(message)
    return out


async def test_a_partner_joins_with_every_consent_consumes_only_its_topics_and_leaves(
        services, client, amqp, settings, tmp_path):
    name = f"monitor{uuid.uuid4().hex[:6]}"
    register = PartnerRegister(settings, tmp_path / "partners.jsonl")
    announcements = await Spy.bind(amqp, f"{settings.namespace}.events", "werksaam.party.#")

    # Without Heliomare's consent: refused, and nothing exists for it on the broker.
    with pytest.raises(PartnerRefused) as refused:
        await add_partner(settings, an_addendum(name, consenting=("werksaam",)), register)
    assert refused.value.reasons == ("no consent of heliomare (art 13.1)",)
    assert register.records() == []

    joined = await add_partner(settings, an_addendum(name), register)
    assert [r["action"] for r in register.records()] == ["joined"]
    assert {c["party"] for c in register.records()[0]["addendum"]["consents"]} == {"werksaam", "heliomare"}
    as_partner = settings.model_copy(update={"amqp_passwords": {name: SecretStr(joined.password)}})

    # Its contract: exactly the granted topic and the announcements, nothing else.
    document = json.loads(joined.asyncapi.read_text())
    titles = {channel["title"] if "title" in channel else key for key, channel in document["channels"].items()}
    assert {t.split(":", 1)[1] for t in titles} == {GRANTED, "werksaam.party.joined.v1", "werksaam.party.left.v1"}

    connection = await aio_pika.connect_robust(as_partner.broker_url(name), reconnect_interval=60)
    channel = await connection.channel()
    report_queue = await channel.get_queue(f"{settings.namespace}.partner.{name}.{GRANTED}", ensure=False)
    joined_queue = await channel.get_queue(f"{settings.namespace}.partner.{name}.werksaam.party.joined.v1",
                                           ensure=False)

    # It reads what was granted: the yearly report, sent by Heliomare (validated by the broker's user_id).
    await client.send("intake", a_referral(random.Random(4713)))  # not granted: must not reach it
    assert (await client.send("trajectory", PublishReport(year=2031))).ok
    [report] = await wait_for(lambda: take_all(report_queue), what="the report in the partner's queue")
    assert report.user_id == "heliomare"
    envelope_model(ReportPublished).model_validate_json(report.body)
    [announcement] = await take_all(joined_queue)
    assert announcement.user_id == "werksaam" and json.loads(announcement.body)["data"]["partner"] == name

    # And nothing else: no other topic, no other party's queue, no publishing.
    other = await connection.channel()
    own = await other.declare_queue(f"{settings.namespace}.partner.{name}.extra", auto_delete=True)
    with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
        await own.bind(f"{settings.namespace}.events", "werksaam.referral.registered.v1")
    other = await connection.channel()
    with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
        queue = await other.get_queue(f"{settings.namespace}.offer.werksaam.referral.registered.v1", ensure=False)
        await queue.get(fail=False)
    other = await connection.channel(publisher_confirms=True)
    with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
        exchange = await other.get_exchange(f"{settings.namespace}.events", ensure=False)
        await exchange.publish(aio_pika.Message(b"{}", user_id=name), routing_key=f"{name}.anything.said.v1")

    # It leaves (art 13.2): its connection is closed at once, it cannot come back, its queues are gone.
    assert (await client.send("trajectory", PublishReport(year=2032))).ok
    await wait_for(lambda: _depth(amqp, report_queue.name), what="an undelivered report")
    destroyed = await remove_partner(settings, name, DepartureKind.LEFT, register)
    assert destroyed >= 1
    await wait_for(lambda: _closed(connection), what="the partner's connection closed by the broker")
    await connection.close()
    with pytest.raises(aio_pika.exceptions.ProbableAuthenticationError):
        await aio_pika.connect(as_partner.broker_url(name))
    check = await amqp.channel()
    with pytest.raises(ChannelClosed, match="NOT_FOUND"):
        await check.declare_queue(report_queue.name, passive=True)
    assert [r["action"] for r in register.records()] == ["joined", "left"]
    assert register.records()[-1]["destroyed_messages"] == destroyed
    assert register.in_force() == {}

    seen = [json.loads(m.body) for m in await announcements.messages()]
    await announcements.close()
    assert [(m["type"], m["data"]["partner"]) for m in seen] == [("party.joined", name), ("party.left", name)]


async def _depth(amqp, queue_name: str) -> int:
    channel = await amqp.channel()
    try:
        return (await channel.declare_queue(queue_name, passive=True)).declaration_result.message_count or 0
    finally:
        await channel.close()


async def _closed(connection) -> bool:
    return connection.is_closed or not connection.connected.is_set()
