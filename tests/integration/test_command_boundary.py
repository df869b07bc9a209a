"""Commands are the owning party's alone, on the real broker: the commands exchange is a topic exchange keyed
`<party>.<service>`; topic permissions keep a party off another's command keys (publish and bind), and each
service runs a command only when the broker-validated sender (AMQP user_id) is its own party. The exchanges
are the operator's: no party may delete or redeclare them.

Each attack is made as the hostile party makes it: with ONLY its own broker credentials, its own connection."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika.exceptions import ChannelClosed

from infra.declare import declare_exchanges
from infra.identities import _rabbitmqctl as rabbitmqctl
from infra.identities import deprovision, provision
from shared.client import CommandClient, CommandRefused, answers_to
from shared.config import Settings
from shared.contracts.commands import (
    DecideQuote,
    DecideReferral,
    GetReferral,
    ListConfidentialityStatements,
    ListReferrals,
    ReadProcessingLog,
    RecordConfidentialityStatement,
)
from shared.messaging.topology import ExchangesMissing, Topology
from tests.harness import wait_for
from tests.integration.test_flow import a_quote, a_referral, status_at
from tests.staff import TEST_STAFF

pytestmark = pytest.mark.integration


async def raw_request(connection, settings, routing_key: str, body: bytes, user_id: str | None) -> dict:
    """Publish a command as this connection's user, with the user_id given, and wait for the answer."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        answered = asyncio.get_running_loop().create_future()

        async def on_reply(message):
            if not answered.done():
                answered.set_result(message.body)

        # Answers come on the replies exchange under a key of the service's party (the service's own rule).
        reply_to = await answers_to(channel, Topology(settings.namespace), routing_key.split(".")[0], on_reply)
        exchange = await channel.get_exchange(f"{settings.namespace}.commands", ensure=False)
        await exchange.publish(aio_pika.Message(body, user_id=user_id, reply_to=reply_to,
                                                message_id=str(uuid.uuid4()), content_type="application/json"),
                               routing_key=routing_key, mandatory=True)
        return json.loads(await asyncio.wait_for(answered, 20))
    finally:
        if not channel.is_closed:
            await channel.close()


async def a_referral_with_a_quote(client) -> tuple[str, str]:
    """A referral whose quote waits for WerkSaam's decision at intake: (referral id, quote id)."""
    submitted = await client.send("intake", a_referral(random.Random()))
    assert submitted.ok, submitted.reasons
    rid = submitted.result["referral_id"]
    await wait_for(lambda: status_at(client, "offer", rid), what="offer registers the referral")
    assert (await client.send("offer", DecideReferral(referral_id=rid, accept=True))).ok
    quoted = await client.send("offer", a_quote(rid))
    assert quoted.ok, quoted.reasons

    async def received():
        return await status_at(client, "intake", rid) == "quote_received"

    await wait_for(received, what="intake receives the quote")
    return rid, quoted.result["quotes"][0]["quote_id"]


async def views(client, rid) -> dict:
    """What intake and offer hold on a referral and its quotes (for 'nothing changed')."""
    out = {}
    for service in ("intake", "offer"):
        view = (await client.send(service, GetReferral(referral_id=rid))).result
        out[service] = (view["status"], json.dumps(view.get("quotes"), sort_keys=True))
    return out


async def test_heliomare_approving_its_own_quote_at_intake_is_refused_by_the_broker(services, client, settings):
    rid, quote_id = await a_referral_with_a_quote(client)
    before = await views(client, rid)
    approve = DecideQuote(referral_id=rid, quote_id=quote_id, approve=True, actor="am.jansen").model_dump_json()
    connection = await aio_pika.connect(settings.broker_url("heliomare"))
    async with connection:
        for user_id in ("heliomare", "werksaam"):
            with pytest.raises(ChannelClosed) as refused:
                await raw_request(connection, settings, "werksaam.intake", approve.encode(), user_id=user_id)
            assert "ACCESS_REFUSED" in str(refused.value) or "PRECONDITION_FAILED" in str(refused.value)
    await asyncio.sleep(0.5)
    assert await views(client, rid) == before
    assert before["intake"][0] == "quote_received"


async def test_heliomare_reading_a_person_at_intake_is_refused_at_once_by_the_broker(services, client, settings):
    rid, _ = await a_referral_with_a_quote(client)
    async with CommandClient(settings, party="heliomare", timeout=20, actors=TEST_STAFF) as heliomare:
        started = asyncio.get_running_loop().time()
        with pytest.raises(CommandRefused, match="ACCESS_REFUSED"):
            await heliomare.send("intake", GetReferral(referral_id=rid, with_person=True, actor="privacy.werksaam"))
        assert asyncio.get_running_loop().time() - started < 5, "a refusal, not a time-out"
        # Its own services it still reaches on the same client
        assert (await heliomare.send("offer", GetReferral(referral_id=rid))).ok


async def test_a_party_may_not_bind_another_partys_command_key(services, settings):
    connection = await aio_pika.connect(settings.broker_url("heliomare"))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{settings.namespace}.offer.eavesdrop-{uuid.uuid4().hex[:6]}",
                                            auto_delete=True)
        for key in ("werksaam.intake", "#", "*.intake"):
            with pytest.raises(ChannelClosed) as refused:
                await queue.bind(f"{settings.namespace}.commands", key)
            assert "ACCESS_REFUSED" in str(refused.value)
            channel = await connection.channel()
            queue = await channel.declare_queue(queue.name, passive=True)


@pytest.mark.parametrize("user_id", [None, "heliomare"])
async def test_the_service_refuses_a_command_whose_broker_user_is_not_its_party(services, client, settings, amqp,
                                                                                user_id):
    """The operator's connection may publish anywhere and set any user_id (it impersonates to replay): the
    broker lets it through, the service does not run it."""
    rid, quote_id = await a_referral_with_a_quote(client)
    before = await views(client, rid)
    approve = DecideQuote(referral_id=rid, quote_id=quote_id, approve=True, actor="cw.bakker").model_dump_json()
    reply = await raw_request(amqp, settings, "werksaam.intake", approve.encode(), user_id=user_id)
    assert reply["ok"] is False and [r["code"] for r in reply["reasons"]] == ["sender_not_authenticated"]
    assert "heliomare" not in json.dumps(reply)
    assert await views(client, rid) == before


async def test_a_party_cannot_delete_or_redeclare_the_exchanges(services, settings):
    topology = Topology(settings.namespace)
    for party in ("heliomare", "werksaam"):
        connection = await aio_pika.connect(settings.broker_url(party))
        async with connection:
            for exchange in topology.exchanges():
                channel = await connection.channel()
                with pytest.raises(ChannelClosed) as deleting:
                    await channel.exchange_delete(exchange.name)
                assert "ACCESS_REFUSED" in str(deleting.value)
                channel = await connection.channel()
                with pytest.raises(ChannelClosed) as redeclaring:
                    await channel.declare_exchange(exchange.name, aio_pika.ExchangeType.FANOUT, durable=True)
                assert "ACCESS_REFUSED" in str(redeclaring.value)
                channel = await connection.channel()
                with pytest.raises(ChannelClosed):
                    await channel.declare_exchange(exchange.name, aio_pika.ExchangeType(exchange.type.value),
                                                   durable=True)
                # It may still check that it exists (a passive declare), as its services do on start-up.
                channel = await connection.channel()
                await channel.get_exchange(exchange.name, ensure=True)
                await channel.close()
    # Still there, as the operator declared them, and still carrying commands.
    async with CommandClient(settings, actors=TEST_STAFF) as client:
        reply = await client.send("offer", GetReferral(referral_id=uuid.uuid4()))
    assert [r.code for r in reply.reasons] == ["unknown_referral"]


def _rabbitmqctl(*args: str, check: bool = True) -> str:
    return rabbitmqctl(*args, check=check).stdout


def _exchange_types(vhost: str) -> dict[str, str]:
    out = _rabbitmqctl("list_exchanges", "-p", vhost, "name", "type")
    return dict(line.split("\t") for line in out.splitlines() if "\t" in line)


async def test_the_operator_replaces_a_commands_exchange_of_the_old_direct_type(mongodb_url):
    """A developer's vhost from before commands became a topic exchange: `make broker` replaces it."""
    settings = Settings(WERKBRUG_NAMESPACE=f"wbt-{uuid.uuid4().hex[:8]}", MONGODB_URL=mongodb_url)
    provision(settings)
    try:
        commands = f"{settings.namespace}.commands"
        connection = await aio_pika.connect(settings.broker_url())
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(commands)
            await channel.declare_exchange(commands, aio_pika.ExchangeType.DIRECT, durable=True)
        assert _exchange_types(settings.amqp_vhost)[commands] == "direct"
        assert await declare_exchanges(settings) == [commands]
        assert _exchange_types(settings.amqp_vhost)[commands] == "topic"
        assert await declare_exchanges(settings) == [], "idempotent"
    finally:
        deprovision(settings)


async def test_a_service_on_a_vhost_without_exchanges_says_to_declare_them_first(mongodb_url):
    from faststream.rabbit import RabbitBroker

    settings = Settings(WERKBRUG_NAMESPACE=f"wbt-{uuid.uuid4().hex[:8]}", MONGODB_URL=mongodb_url)
    vhost = settings.amqp_vhost
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "werkbrug-admin", ".*", ".*", ".*")
        broker = RabbitBroker(settings.broker_url(), logger=None)
        await broker.connect()
        try:
            with pytest.raises(ExchangesMissing, match="make broker"):
                await Topology(settings.namespace).declare(broker, "intake", "werksaam", [])
        finally:
            await broker.stop()
    finally:
        _rabbitmqctl("delete_vhost", vhost, check=False)


# -- staff are a party's own ----------------------------------------------------------------------------------


async def statements_at(client, service: str) -> list[str]:
    reply = await client.send(service, ListConfidentialityStatements())
    assert reply.ok, reply.reasons
    return sorted(s["staff"] for s in reply.result)


async def test_heliomare_naming_a_werksaam_member_with_a_statement_gets_no_personal_data(services, client,
                                                                                         settings):
    submitted = await client.send("intake", a_referral(random.Random()))
    rid = submitted.result["referral_id"]
    await wait_for(lambda: status_at(client, "offer", rid), what="offer registers the referral")
    signed = await client.send("intake", RecordConfidentialityStatement(
        staff="cw.visser", signed_on=datetime.now(UTC).date(), actor="privacy.werksaam"))
    assert signed.ok, signed.reasons
    async with CommandClient(settings, party="heliomare", timeout=20) as heliomare:
        # at its own service the WerkSaam id means nobody; at intake the broker does not let it in
        reply = await heliomare.send("offer", GetReferral(referral_id=rid, with_person=True, actor="cw.visser"))
        assert [r.code for r in reply.reasons] == ["unknown_actor"] and reply.result is None
        assert "cw.visser" not in reply.model_dump_json()
        with pytest.raises(CommandRefused):
            await heliomare.send("intake", GetReferral(referral_id=rid, with_person=True, actor="cw.visser"))
    log = (await client.send("offer", ReadProcessingLog(correlation_id=uuid.UUID(rid)))).result
    assert not [r for r in log if r["actor"] == "cw.visser"], "nothing was read, and the claimed id is not written"
    attempts = [(r["status"], r["actor"], r["kind"], r["reasons"]) for r in log
                if r["message_type"] == "query:get_referral" and r["status"] == "refused"]
    assert attempts == [("refused", "(unknown)", "personal_data_read", ["unknown_actor"])], "the attempt is logged"


async def test_the_command_line_names_only_members_of_the_partys_register_with_a_role_that_may(
        services, client, settings):
    from tests.integration.test_cli import werkbrug

    rid = (await client.send("intake", a_referral(random.Random()))).result["referral_id"]
    before = await statements_at(client, "intake")
    today = datetime.now(UTC).date().isoformat()
    sign = ("confidentiality", "sign")
    for actor, staff, code in [
        ("nobody", "nobody", "unknown_actor"),  # issue 14: was accepted
        ("am.jansen", "cw.bakker", "unknown_actor"),  # Heliomare's account manager is nobody at WerkSaam
        ("privacy.werksaam", "privacy.werksaam", "not_for_oneself"),
        ("cw.bakker", "cw.visser", "role_not_permitted"),  # a caseworker does not record statements
        ("privacy.werksaam", "am.jansen", "unknown_actor"),  # nor for the other party's staff
    ]:
        exit_code, out, err = await werkbrug(settings, "--as", actor, *sign, staff, "--party", "werksaam",
                                             "--signed-on", today)
        assert exit_code == 2 and code in err, (actor, staff, err)
        assert "Traceback" not in out + err
    assert await statements_at(client, "intake") == before
    exit_code, out, err = await werkbrug(settings, "--as", "nobody", "person", rid)
    assert exit_code == 2 and "unknown_actor" in err and "de Boer" not in out + err


# -- a small fuzz of command messages ----------------------------------------------------------------------


def _fuzzed_body(rng: random.Random, actor: str | None) -> bytes:
    kind = rng.choice(["referral", "decide", "garbage", "nested", "unknown", "wrong_types"])
    if kind == "referral":
        return a_referral(rng).model_copy(update={"actor": actor}).model_dump_json().encode()
    if kind == "decide":
        return DecideQuote(referral_id=uuid.uuid4(), quote_id=uuid.uuid4(), approve=True,
                           actor=actor).model_dump_json().encode()
    if kind == "garbage":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == "nested":
        return ("[" * rng.randrange(50, 3000)).encode()
    if kind == "unknown":
        return json.dumps({"command": f"x{rng.randrange(10**6)}", "actor": actor}).encode()
    return json.dumps({"command": "submit_referral", "bsn": 123, "given_name": [], "actor": actor,
                       "labour_disability": "yes"}).encode()


async def test_fuzzed_commands_from_any_user_are_all_refused_and_change_nothing(services, client, settings, amqp):
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    keys = {"werksaam.intake": "werksaam", "werksaam.subject_rights": "werksaam", "heliomare.offer": "heliomare",
            "heliomare.trajectory": "heliomare", "heliomare.billing": "heliomare"}

    async def state():
        referrals = {s: sorted((r["referral_id"], r["status"]) for r in (await client.send(
            s, ListReferrals(limit=1000))).result) for s in ("intake", "offer")}
        return referrals, await statements_at(client, "intake"), await statements_at(client, "offer")

    before = await state()
    own = {p: await aio_pika.connect(settings.broker_url(p)) for p in ("werksaam", "heliomare")}
    try:
        for n in range(40):
            key, owner = rng.choice(sorted(keys.items()))
            actor = rng.choice([None, f"fz{rng.randrange(10**6)}", "privacy.werksaam", "am.jansen"])
            if (owner == "werksaam" and actor == "privacy.werksaam") or (owner == "heliomare" and actor == "am.jansen"):
                actor = f"fz{n}"  # a real member of the owner with a role could be right: not a fuzz case
            body = _fuzzed_body(rng, actor)
            if rng.random() < 0.5:  # the operator's connection, claiming anyone but the owner
                user = rng.choice([None, "werkbrug-admin", "heliomare" if owner == "werksaam" else "werksaam"])
                reply = await raw_request(amqp, settings, key, body, user_id=user)
                expected = {"sender_not_authenticated"}
            else:  # the owner itself, with a bad body or an actor that is not its staff
                reply = await raw_request(own[owner], settings, key, body, user_id=owner)
                expected = None
            codes = {r["code"] for r in reply["reasons"]}
            assert reply["ok"] is False and reply["result"] is None, (seed, n, key)
            assert expected is None or codes == expected, (seed, n, key, codes)
            assert codes, (seed, n)
    finally:
        for connection in own.values():
            await connection.close()
    assert await state() == before, f"seed {seed}: something changed"


async def test_a_partys_own_command_line_reaches_its_own_services_and_is_refused_the_others_at_once(
        services, client, settings):
    """In production a party's tooling holds only its own broker credentials (AMQP_URL names its user)."""
    import os
    import sys

    env = {**os.environ, "WERKBRUG_NAMESPACE": settings.namespace, "AMQP_URL": settings.broker_url("werksaam"),
           "WERKBRUG_ACTOR": "test.operator", "COLUMNS": "200"}

    async def werkbrug(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await werkbrug("health")
    assert code == 0 and "intake" in out and "subject_rights" in out and "offer" not in out, err
    started = asyncio.get_running_loop().time()
    code, out, err = await werkbrug("accept", str(uuid.uuid4()))  # offer is Heliomare's
    assert code == 2 and "ACCESS_REFUSED" in err and "Traceback" not in out + err
    assert asyncio.get_running_loop().time() - started < 15, "refused at once, not after the time-out"
