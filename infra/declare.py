"""Declare werkbrug's exchanges and queues on the broker (idempotent): `python -m infra.declare`.

First the namespace's vhost and each party's broker user with its permissions (infra.identities, through
rabbitmqctl). Services declare their own exchanges and queues on start-up too; declaring up front means no
event published before a service first starts is unroutable.
"""

from __future__ import annotations

import asyncio

import aio_pika
from faststream.rabbit import RabbitBroker

from infra.identities import deprovision, provision
from infra.services import DEFINITIONS
from shared.config import Settings, get_settings
from shared.messaging.topology import Topology, service_bindings


async def declare_all(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    topology = Topology(settings.namespace, settings.delivery_limit)
    provision(settings)  # the vhost, the parties' users and their permissions first
    await replace_direct_dlx(settings, topology)
    broker = RabbitBroker(settings.broker_url(), logger=None)
    await broker.connect()
    try:
        for name, make in DEFINITIONS.items():
            definition = make(settings)
            keys = [key for key, _ in service_bindings(definition)]
            await topology.declare(broker, name, keys)
            print(f"{settings.namespace}: declared {name}: {len(keys)} consumer queues, commands, parking")
    finally:
        await broker.stop()


async def replace_direct_dlx(settings: Settings, topology: Topology) -> bool:
    """A vhost declared before dead letters came only from the broker has a direct `<ns>.dlx`: replace it
    by the topic exchange (whose topic permissions let no party write to it). The parking queues' bindings
    go with the old exchange; `topology.declare` binds them again. A message the broker dead-letters in
    the moment between is dropped (RabbitMQ's dead-lettering is at most once). True if it replaced one."""
    connection = await aio_pika.connect(settings.broker_url(), timeout=10)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_exchange(topology.dlx.name, aio_pika.ExchangeType.TOPIC, durable=True)
            return False
        except aio_pika.exceptions.ChannelPreconditionFailed:
            channel = await connection.channel()
            await channel.exchange_delete(topology.dlx.name)
            await channel.declare_exchange(topology.dlx.name, aio_pika.ExchangeType.TOPIC, durable=True)
            print(f"{settings.namespace}: replaced the direct {topology.dlx.name} by a topic exchange")
            return True


async def delete_all(settings: Settings) -> None:
    """Remove the settings' namespace from the broker: its vhost, and with it every exchange, queue and
    permission in it (the demo cleans up so; the tests' teardown does the same)."""
    deprovision(settings)


if __name__ == "__main__":
    asyncio.run(declare_all())
