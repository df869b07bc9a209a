"""A partner joins by addendum (art 13.1), consumes only the topics granted to it, and leaves (art 13.2):
against the real broker, with the services running."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date
from urllib.parse import quote

import aio_pika
import pytest
from aio_pika.exceptions import ChannelClosed
from aiormq.exceptions import AMQPError
from jsonschema import Draft202012Validator, FormatChecker

from infra.identities import deprovision, provision
from infra.partners import Addendum, PartnerRefused, PartnerRegister, add_partner, remove_partner
from shared.contracts.commands import PublishReport
from shared.contracts.envelope import envelope_model
from shared.contracts.events import DepartureKind, ReportPublished
from tests.asyncapi_parser import complaints, parse
from tests.harness import wait_for
from tests.integration.test_bad_input import Spy
from tests.integration.test_flow import a_referral

pytestmark = pytest.mark.integration

GRANTED = "heliomare.all.report.published.v3"  # aggregates only: what a regional labour-market monitor may read


def an_addendum(name: str, consenting=("werksaam", "heliomare")) -> Addendum:
    return Addendum(
        name=name, organisation="Arbeidsmarktmonitor West-Friesland", legal_basis="GDPR 6(1)(e)",
        purpose="Monitor the regional outcomes of reintegration (aggregates only).", topics=[GRANTED],
        contact={"name": "Functionaris", "email": "privacy@monitor.example.nl"}, effective_from=date(2027, 1, 1),
        consents=[{"party": p, "signed_by": "director", "signed_on": "2026-12-01", "reference": f"ADD-{p}"}
                  for p in consenting],
    )


def url_from_contract(document: dict, password: str) -> str:
    """The AMQP URL a partner writes from its contract alone (and the password handed over)."""
    [server] = document["servers"].values()
    [scheme_ref] = server["security"]
    user = document["components"]["securitySchemes"][scheme_ref["$ref"].rsplit("/", 1)[1]]["x-username"]
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"{server['protocol']}://{credentials}@{server['host']}{server['pathname']}"


def queues_from_contract(document: dict) -> dict[str, str]:
    """Routing key -> the queue to consume, from the contract's channel bindings."""
    return {c["address"]: c["bindings"]["amqp"]["queue"]["name"] for c in document["channels"].values()}


def validator_from_contract(document: dict, address: str) -> Draft202012Validator:
    [channel] = [c for c in document["channels"].values() if c["address"] == address]
    [ref] = channel["messages"].values()
    message = document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
    return Draft202012Validator({"$ref": message["payload"]["$ref"], "components": document["components"]},
                                format_checker=FormatChecker())


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
    announcements = await Spy.bind(amqp, f"{settings.namespace}.events", "werksaam.all.party.#")

    # Without Heliomare's consent: refused, and nothing exists for it on the broker.
    with pytest.raises(PartnerRefused) as refused:
        await add_partner(settings, an_addendum(name, consenting=("werksaam",)), register)
    assert refused.value.reasons == ("no consent of heliomare (art 13.1)",)
    assert register.records() == []

    joined = await add_partner(settings, an_addendum(name), register)
    assert [r["action"] for r in register.records()] == ["joined"]
    assert {c["party"] for c in register.records()[0]["addendum"]["consents"]} == {"werksaam", "heliomare"}
    assert joined.user == f"{settings.namespace}.{name}" == register.broker_user(name)

    # Its contract: exactly the granted topic and the announcements, nothing else; it passes the AsyncAPI parser.
    document = json.loads(joined.asyncapi.read_text())
    titles = {channel["title"] if "title" in channel else key for key, channel in document["channels"].items()}
    assert {t.split(":", 1)[1] for t in titles} == {GRANTED, "werksaam.all.party.joined.v2",
                                                    "werksaam.all.party.left.v2"}
    assert complaints(parse([joined.asyncapi])) == {}

    # It connects with what the contract says (server, vhost, user) and the password handed over, nothing else.
    connection = await aio_pika.connect_robust(url_from_contract(document, joined.password), reconnect_interval=60)
    channel = await connection.channel()
    queues = queues_from_contract(document)
    report_queue = await channel.get_queue(queues[GRANTED], ensure=False)
    joined_queue = await channel.get_queue(queues["werksaam.all.party.joined.v2"], ensure=False)

    # It reads what was granted: the yearly report, sent by Heliomare (validated by the broker's user_id), and
    # valid by the contract's schema (the figures as they travel: integers, decimal strings, null).
    await client.send("intake", a_referral(random.Random(4713)))  # not granted: must not reach it
    assert (await client.send("trajectory", PublishReport(year=2031))).ok
    [report] = await wait_for(lambda: take_all(report_queue), what="the report in the partner's queue")
    assert report.user_id == "heliomare"
    envelope_model(ReportPublished).model_validate_json(report.body)
    assert list(validator_from_contract(document, GRANTED).iter_errors(json.loads(report.body))) == []
    assert report.correlation_id == json.loads(report.body)["correlation_id"], "where the contract says it is"
    [announcement] = await take_all(joined_queue)
    assert announcement.user_id == "werksaam" and json.loads(announcement.body)["data"]["partner"] == name

    # And nothing else: no other topic, no other party's queue, no publishing.
    other = await connection.channel()
    own = await other.declare_queue(f"{settings.namespace}.partner.{name}.extra", auto_delete=True)
    with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
        await own.bind(f"{settings.namespace}.events", "werksaam.heliomare.referral.registered.v2")
    other = await connection.channel()
    with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
        queue = await other.get_queue(f"{settings.namespace}.offer.werksaam.heliomare.referral.registered.v2",
                                      ensure=False)
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
        await aio_pika.connect(url_from_contract(document, joined.password))
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


class Closed:
    """Why the broker closed a connection (the reply text a partner's client sees)."""

    def __init__(self, connection) -> None:
        self.reasons: list[str] = []
        connection.close_callbacks.add(lambda _sender, exc: self.reasons.append(str(exc)))


async def test_the_same_partner_name_in_two_namespaces_is_two_broker_users_that_touch_each_other_in_nothing(
        broker_identities, settings, tmp_path):
    name = f"monitor{uuid.uuid4().hex[:6]}"
    other = settings.model_copy(update={"namespace": f"wbt-{uuid.uuid4().hex[:8]}"})
    assert other.amqp_vhost == other.namespace != settings.amqp_vhost
    provision(other)
    register_a = PartnerRegister(settings, tmp_path / "a.jsonl")
    register_b = PartnerRegister(other, tmp_path / "b.jsonl")
    try:
        a = await add_partner(settings, an_addendum(name), register_a)
        b = await add_partner(other, an_addendum(name), register_b)
        assert (a.user, b.user) == (f"{settings.namespace}.{name}", f"{other.namespace}.{name}")
        doc_a, doc_b = json.loads(a.asyncapi.read_text()), json.loads(b.asyncapi.read_text())
        as_a = await aio_pika.connect(url_from_contract(doc_a, a.password))
        as_b = await aio_pika.connect(url_from_contract(doc_b, b.password))
        closed_a, closed_b = Closed(as_a), Closed(as_b)

        # The second admission left the first's password alone, and neither password opens the other's vhost.
        with pytest.raises(aio_pika.exceptions.ProbableAuthenticationError):
            await aio_pika.connect(url_from_contract(doc_a, b.password))
        with pytest.raises(AMQPError):  # b's user, right password, a's vhost: ACCESS_REFUSED at connection.open
            await aio_pika.connect(url_from_contract(doc_a, b.password).replace(
                quote(a.user, safe=""), quote(b.user, safe="")))

        # A second admission of the name where it is taken, on a register that does not know it (lost, replaced):
        # refused, nothing recorded, and the partner's password still opens its connection.
        stray = PartnerRegister(other, tmp_path / "stray.jsonl")
        with pytest.raises(PartnerRefused) as refused:
            await add_partner(other, an_addendum(name), stray)
        assert refused.value.reasons == (
            f"broker user {b.user} exists already, but {name} is not in this namespace's partner register "
            f"({stray.path}): restore the register, or delete the user if it is a leftover (rabbitmqctl delete_user)",)
        assert stray.records() == []
        again = await aio_pika.connect(url_from_contract(doc_b, b.password))
        await again.close()

        # Removed in the second namespace (art 16.3): its connection is closed saying who removed whom; the first
        # namespace's partner of the same name keeps its connection, its queues and its password.
        await remove_partner(other, name, DepartureKind.REMOVED, register_b)
        await wait_for(lambda: _closed(as_b), what="the removed partner's connection closed by the broker")
        assert any(f"werkbrug {other.namespace}: the parties removed partner {name} from the cooperation "
                   "(art 16.3); its access has ended" in reason for reason in closed_b.reasons), closed_b.reasons
        assert not as_a.is_closed and closed_a.reasons == []
        channel = await as_a.channel()
        own = await channel.declare_queue(queues_from_contract(doc_a)[GRANTED], passive=True)
        assert own.name.startswith(f"{settings.namespace}.partner.{name}.")
        await as_a.close()
        await (await aio_pika.connect(url_from_contract(doc_a, a.password))).close()
    finally:
        if name in register_a.in_force():
            await remove_partner(settings, name, DepartureKind.LEFT, register_a)
        deprovision(other)


def passive_declare_is_checked(version: str) -> bool:
    """RabbitMQ checks a permission on passive declares from 4.2.6 and 4.3.0 (rabbitmq-server#16085: configure;
    4.2.7 and 4.3.1, #16272: any permission on the queue). Before, it checks none."""
    return tuple(int(part) for part in version.split(".")[:3]) >= (4, 2, 6)


async def test_what_a_partner_learns_by_passive_declares_of_other_parties_queues_is_what_the_broker_version_allows(
        broker_identities, settings, amqp, tmp_path):
    name = f"monitor{uuid.uuid4().hex[:6]}"
    register = PartnerRegister(settings, tmp_path / "partners.jsonl")
    joined = await add_partner(settings, an_addendum(name), register)
    document = json.loads(joined.asyncapi.read_text())
    # Another party's queue (Heliomare's offer service) with two messages in it and one consumer.
    heliomare = await aio_pika.connect(settings.broker_url("heliomare"))
    theirs = await (await heliomare.channel()).declare_queue(
        f"{settings.namespace}.offer.passive-probe-{uuid.uuid4().hex[:6]}", durable=True,
        arguments={"x-queue-type": "quorum"})
    publisher = await amqp.channel()
    for _ in range(2):
        await publisher.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=theirs.name)
    consumer_channel = await heliomare.channel()
    await consumer_channel.set_qos(prefetch_count=1)

    async def hold(_message) -> None:  # takes one and keeps it unacknowledged
        return None

    await (await consumer_channel.get_queue(theirs.name, ensure=False)).consume(hold)
    partner = await aio_pika.connect(url_from_contract(document, joined.password))
    try:
        version = partner.transport.connection.server_properties["version"]
        version = version.decode() if isinstance(version, bytes) else version

        # Its own queue: a passive declare answers (its client may check the queue is there).
        own = await (await partner.channel()).declare_queue(queues_from_contract(document)[GRANTED], passive=True)
        assert own.declaration_result.message_count == 0

        probe = await partner.channel()
        if passive_declare_is_checked(version):
            with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
                await probe.declare_queue(theirs.name, passive=True)
        else:
            # RabbitMQ before 4.2.6 checks no permission on a passive queue.declare: the partner learns that
            # the queue exists, how many messages wait in it and how many consumers it has (one is being
            # delivered, unacknowledged), though it may read, bind or delete nothing there.
            seen = await probe.declare_queue(theirs.name, passive=True)
            assert (seen.declaration_result.message_count, seen.declaration_result.consumer_count) == (1, 1)
            with pytest.raises(ChannelClosed, match="ACCESS_REFUSED"):
                await seen.get(fail=False)
        missing = await partner.channel()
        with pytest.raises(ChannelClosed, match="ACCESS_REFUSED" if passive_declare_is_checked(version)
                           else "NOT_FOUND"):
            await missing.declare_queue(f"{settings.namespace}.intake.no-such-queue", passive=True)
    finally:
        await partner.close()
        await (await amqp.channel()).queue_delete(theirs.name)
        await heliomare.close()
        await remove_partner(settings, name, DepartureKind.LEFT, register)
