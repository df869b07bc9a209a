"""Moving to another broker node, on the shared broker: a node listed first that does not answer is passed over,
and a connection the broker closes is replaced on the next node (shared/messaging/failover.py, shared/client.py).
The same against a real three-node cluster that loses nodes mid-stream: tests/integration/test_cluster.py."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit

import aio_pika
import pytest

from shared.client import CommandClient
from shared.contracts.commands import GetReferral
from shared.contracts.reasons import ReasonCode
from shared.messaging.failover import Failover, failover_connection
from shared.storage.embedded import free_port
from tests.staff import TEST_STAFF

pytestmark = pytest.mark.integration


def _on_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.netloc.rpartition(':')[0]}:{port}").geturl()


def _answered(result) -> bool:
    return ReasonCode.SERVICE_UNAVAILABLE not in {r.code for r in result.reasons}


async def test_a_client_whose_first_node_does_not_answer_sends_through_the_next(settings, services):
    nobody = free_port()  # nothing listens there
    admin = settings.broker_url()
    on_two_nodes = settings.model_copy(update={"amqp_url": _on_port(admin, nobody),
                                               "amqp_nodes": (f"127.0.0.1:{nobody}", "127.0.0.1:5672")})
    assert on_two_nodes.broker_nodes == [f"127.0.0.1:{nobody}", "127.0.0.1:5672"]
    async with CommandClient(on_two_nodes, timeout=20, actors=TEST_STAFF) as client:
        result = await client.send("intake", GetReferral(referral_id=uuid.uuid4()))
        assert _answered(result)
        assert client._lines["werksaam"].node.endswith(":5672/" + settings.namespace)


async def test_a_client_whose_connection_the_broker_closed_sends_the_next_command_on_a_new_one(client, services):
    first = await client.send("intake", GetReferral(referral_id=uuid.uuid4()))
    line = client._lines["werksaam"]
    lost = line.connection
    await lost.transport.connection.close(ConnectionResetError("the node went away"))  # not our close()
    assert not lost.is_closed  # what aio-pika says of a connection the other side closed
    second = await client.send("intake", GetReferral(referral_id=uuid.uuid4()))
    assert _answered(first) and _answered(second)
    assert line.connection is not lost


async def test_a_service_connection_moves_to_the_next_node_and_restores_its_queue_there(settings, amqp):
    nobody = free_port()
    live = settings.broker_url()
    nodes = Failover([_on_port(live, nobody), live])
    connect = failover_connection(nodes)
    # At start-up the first attempt fails on the node that does not answer (the runtime retries it) ...
    with pytest.raises(ConnectionError):
        await aio_pika.connect_robust(live, connection_class=connect, reconnect_interval=0.2)
    # ... and the next attempt goes to the next node.
    connection = await aio_pika.connect_robust(live, connection_class=connect, reconnect_interval=0.2)
    name = f"{settings.namespace}.failover-probe.{uuid.uuid4().hex[:8]}"
    try:
        assert connection.url.port == 5672
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        # The connection breaks: it moves on (wrapping to the dead node, then on to the live one) and restores
        # its channel and queue there; publishing with confirms goes on on the restored channel.
        await connection.transport.connection.close(ConnectionResetError("the node went away"))
        for _ in range(100):
            await asyncio.sleep(0.1)
            if connection.connected.is_set() and not channel.is_closed:
                break
        assert connection.connected.is_set() and nodes.current == live
        await channel.default_exchange.publish(aio_pika.Message(b"after"), routing_key=name)
        message = await queue.get(timeout=10, fail=False)
        assert message is not None and message.body == b"after"
        await message.ack()
    finally:
        await connection.close()
        cleanup = await amqp.channel()
        await cleanup.queue_delete(name)
        await cleanup.close()
